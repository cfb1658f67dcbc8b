"""The ``blitz`` application and its commands, each imported only when it runs.

A command module imports what its command needs (the engine, the store, the daemon's server);
importing them all cost every command, ``blitz --help`` included, about a second before it did
anything. :data:`COMMANDS` names each command's module and says in one line what it does, which
is all ``blitz --help`` shows: :class:`LazyCommands` lists the commands from it and imports a
command's module when that command is run or its own help is asked for. The one line is the
first paragraph of the command's docstring; ``tests/cli/test_startup.py`` checks they agree and
that every command of every module is listed here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import typer
from typer import _click as click  # typer vendors click (0.29): its groups speak its own copy
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam
from typer.core import TyperCommand, TyperGroup, _TyperParameter


class Listed(NamedTuple):
    """A command as ``blitz --help`` lists it: the module that defines it, what it does."""

    module: str
    help: str


COMMANDS: dict[str, Listed] = {
    "run": Listed(
        "run",
        "Plan GOAL on a repository, run it through agents, validate, commit, and open a PR "
        "(with --follows: add to an earlier goal's branch and pull request).",
    ),
    "resume": Listed(
        "run",
        "Continue every unfinished goal whose process is gone (after a crash or a kill), as it "
        "was started; the options given here override how it was started, for good.",
    ),
    "status": Listed("status", "Show goals, or one goal's tasks, attempts, recoveries and cost."),
    "events": Listed("events", "Print the event log (every state change blitz made)."),
    "cancel": Listed("run", "Cancel a goal: queued tasks are dropped, running agents are stopped."),
    "plan": Listed("plan", "Plan GOAL and show the tasks; nothing runs and nothing is stored."),
    "approve": Listed(
        "serve", "Approve the plan of a goal that waits for approval, so its tasks run."
    ),
    "publish": Listed(
        "publish",
        "Push a succeeded goal's branch and open its pull request again (after it failed).",
    ),
    "init": Listed(
        "init",
        "Detect the project's build/test/typecheck/lint commands and its set-up (the command "
        "that installs its dependencies in a worktree), and write blitz.toml.",
    ),
    "demo": Listed(
        "demo",
        "Run a goal on a sample repository with the scripted planner and agent (no model).",
    ),
    "projects": Listed("projects", "Manage the repositories blitz works on."),
    "workspaces": Listed(
        "workspaces", "The warm worktrees blitz keeps per project (reset before every attempt)."
    ),
    "backends": Listed("backends", "Agent backends: which can run, and installing their CLIs."),
    "worker": Listed(
        "worker",
        "Join this machine to a Ray cluster as a worker node (the `ray start --address ... "
        "--block` you would otherwise type), advertising its attempt slots, the backends usable "
        "here (CLI and key present) and its labels; Ctrl-C stops the node. Arguments after `--` "
        "go to `ray start`.",
    ),
    "workers": Listed(
        "worker",
        "List the cluster's worker nodes: slots (free/total), backends, labels, running attempts "
        "and when the daemon last saw each (with --server; else read from the cluster itself).",
    ),
    "doctor": Listed(
        "doctor",
        "Check git, the sandbox (bubblewrap, user namespaces), keys, agent CLIs and disk space, "
        "and try the configured local or OpenAI-compatible models once: do they answer, call "
        "tools, accept JSON schemas, and how fast. Exits with 1 when something blitz needs is "
        "missing.",
    ),
    "serve": Listed(
        "serve", "Run the daemon: the engine and its HTTP API (docs/api.md) with the dashboard."
    ),
    "slack": Listed(
        "slack",
        "Slack: map channels to projects (the daemon takes goals from Slack; see the README).",
    ),
    "mcp": Listed(
        "mcp",
        "Serve blitz's MCP tools over stdio (for an agent's MCP configuration), talking to the "
        "running daemon (`blitz serve`) with its URL and token.",
    ),
    "speech": Listed("speech", "Speech services for talking to blitz."),
    "notify": Listed("notify", "Notifications: try every sink, and see how delivery goes."),
    "token": Listed(
        "serve",
        "Make a new token for the daemon (the old one stops working at once) and print it.",
    ),
}
"""Every command, in the order ``blitz --help`` lists them."""


class LazyCommands(TyperGroup):
    """The ``blitz`` group: lists :data:`COMMANDS` without importing them, and imports a
    command's module when it is resolved to run (its own ``--help`` included)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(dict.fromkeys([*COMMANDS, *self.commands]))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = self.commands.get(cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        # Listed, not loaded: enough for the list of commands in the help.
        return TyperCommand(cmd_name, help=COMMANDS[cmd_name].help)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in COMMANDS and args[0] not in self.commands:
            self.commands[args[0]] = _load(args[0])
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            _convert_scalars(command.get_params(ctx))  # its --help is made here, once
        return name, command, rest

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _convert_scalars(self.get_params(ctx))
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=LazyCommands,
    name="blitz",
    help="Run AI coding agents to completion: goal -> tasks -> validated commits -> PR.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: Rich's help formatting imports Markdown, Syntax...
)
"""The command line; the command modules add their commands to it (``blitz.cli.common.app``)."""


@app.callback()
def _root() -> None:
    """Always a group, however few command modules are imported (only the one that runs)."""


def _load(name: str) -> click.Command:
    """The click command ``name``, its module imported (it adds its commands to the app)."""
    importlib.import_module(f"blitz.cli.{COMMANDS[name].module}")
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


SCALARS = (str, int, float, bool)

_WORDS = {"1": True, "true": True, "yes": True, "y": True, "on": True, "t": True}
_WORDS |= {"0": False, "false": False, "no": False, "n": False, "off": False, "f": False}


@dataclass(frozen=True)
class ScalarValue(RuntimeParam):
    """A ``str``, ``int``, ``float`` or ``bool`` parameter's value, converted by its type.

    Typer (0.29) converts every parameter's value through a pydantic ``TypeAdapter`` it builds
    when the command runs (``--help`` included); importing pydantic for it costs a third of a
    second, more than ``blitz status`` may take in all. A plain value needs none of that."""

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: click.Context) -> Any:
        kind = self.annotation
        assert kind in SCALARS
        if type(value) is kind:
            return value
        try:
            if kind is bool:
                return _WORDS[str(value).strip().lower()]
            return kind(value)
        except (KeyError, TypeError, ValueError):
            what = {str: "text", int: "integer", float: "number", bool: "boolean"}[kind]
            raise BadParameter(f"{value!r} is not a valid {what}.", ctx=ctx, param=param) from None


def _convert_scalars(params: list[click.Parameter]) -> None:
    """Give the plain ``str``, ``int``, ``float`` and ``bool`` parameters :class:`ScalarValue`;
    the others (choices, ranges, paths, lists...) keep Typer's conversion."""
    for param in params:
        if not isinstance(param, _TyperParameter) or param._runtime_param is not None:
            continue
        found = param.type_descriptor
        info = found.parameter_info
        if (
            found.annotation in SCALARS
            and not (found.is_choice or found.is_ranged or found.is_path or found.is_file)
            and info.parser is None
        ):
            param._runtime_param = ScalarValue(info, found.annotation)
