"""The Claude Code backend: the ``claude`` CLI (bundled with claude-agent-sdk) does the task in
its worktree, driven through the SDK's stream-json protocol.

One run is one CLI process: the task goes in as the prompt, blitz's rules are appended to Claude
Code's own system prompt, and every message it streams back is shown live. The CLI is isolated
from the user's own Claude Code: a temporary ``CLAUDE_CONFIG_DIR`` (no ``~/.claude`` settings,
login, memory or session history) and only the project's settings files, so it authenticates
with the key blitz passes in (``ANTHROPIC_API_KEY`` or ``CLAUDE_CODE_OAUTH_TOKEN``).

Invariants:

* every tool call passes :class:`WorktreeGuard` (a ``PreToolUse`` hook, so it holds in every
  permission mode): file paths must resolve inside the worktree, and Bash commands that visibly
  ``cd``, redirect or write outside it, or commit and rewrite git history, are refused. It guards
  against mistakes; it is no sandbox.
* ``bypassPermissions`` is used only when blitz.toml sets it; the default is ``acceptEdits``
  with a fixed set of allowed tools.
* the CLI's version is checked once per executable (:data:`MINIMUM_CLI_VERSION`).
* a run that outlives ``request.timeout`` (or is cancelled) is stopped with its whole process
  tree (SIGTERM, then SIGKILL); processes the agent left behind are stopped when the run ends.
* :meth:`ClaudeCodeBackend.run` never raises except ``CancelledError``: provider outages are
  ``crashed`` and fed to the ``provider:anthropic`` breaker, rejected keys and unusable CLIs are
  ``config_error``, turn and budget limits are failures, and nothing returned holds a secret.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

import claude_agent_sdk
from claude_agent_sdk import (
    ClaudeAgentOptions,
    HookMatcher,
    PermissionMode,
)

from blitz import process, proctree
from blitz.backends.base import (
    AgentBackend,
    AgentRequest,
    AgentResult,
    MessageSink,
    lowest,
    task_prompt,
)
from blitz.backends.circuit import behind_breaker
from blitz.backends.claude_session import Session, describe_error, one_line, outcome
from blitz.backends.confine import WorktreeGuard
from blitz.backends.options import BackendOptions, ClaudeCodeConfig
from blitz.backends.proxied import model_access
from blitz.errors import ConfigError
from blitz.llm.breakers import breaker_key
from blitz.redact import redact, register_secret
from blitz.sandbox import UNCONFINED, Jail, Policy, installation

if TYPE_CHECKING:
    from blitz.proxy import ModelProxy

MINIMUM_CLI_VERSION = (2, 0, 0)
"""The oldest Claude Code blitz drives: stream-json input, hooks over the control protocol,
``--setting-sources`` and ``--max-budget-usd`` (the SDK's own minimum is the same)."""

DEFAULT_ALLOWED_TOOLS = (
    "Read", "Write", "Edit", "MultiEdit", "NotebookEdit", "Glob", "Grep", "LS", "Bash", "TodoWrite",
)  # fmt: skip
"""Tools allowed without asking when blitz.toml lists none: reading, editing, the shell."""

ALWAYS_DISALLOWED = (
    "AskUserQuestion", "EnterWorktree", "ExitWorktree", "CronCreate", "CronDelete",
    "ScheduleWakeup", "RemoteTrigger",
)  # fmt: skip
"""Tools an unattended run must not have: questions nobody answers, other worktrees, wake-ups."""

PERMISSION_MODES = ("acceptEdits", "default", "plan", "dontAsk", "bypassPermissions")

PROVIDER = "anthropic"
PROVIDER_BREAKER = breaker_key(PROVIDER)
"""The breaker of the Anthropic API (the key :func:`blitz.llm.breakers.breaker_key` gives it)."""

CLI_RETRIES = "3"
"""Retries of one API request inside the CLI (``CLAUDE_CODE_MAX_RETRIES``; the provider
environment may set its own). A failure after them crashes the attempt, which blitz retries."""

VERSION_TIMEOUT = 30.0
RUN_MARKER = proctree.MARKER_VARIABLE
"""Environment variable carrying one run's id to the CLI and everything it starts: how the CLI's
process tree is found (the SDK's public API does not give the CLI's process id)."""

SYSTEM_PROMPT = """\
You are working unattended for blitz, which runs coding agents: no person is watching or can \
answer questions, so work until the task is done.

- Your working directory is a git worktree made for this task: {worktree}. Read and change files \
only under it, and do not cd out of it; calls that reach outside it are refused.
- Make the change the task asks for and keep it minimal, in the style of the surrounding code.
- Run the project's checks (tests, type checker, linter) when that helps you verify the change.
- Do not commit, push, switch branches or rewrite git history: blitz checks your changes and \
commits them.
- When you are done, end with a short summary of what you changed and why. If you cannot do the \
task, say why instead."""

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_MINIMUM = ".".join(map(str, MINIMUM_CLI_VERSION))
_versions: dict[tuple[str, int, int], str] = {}  # (path, mtime, size) -> "" or the problem


def create(options: BackendOptions) -> AgentBackend:
    """The backend from blitz.toml's ``[claude_code]`` and the provider environment."""
    config = options.claude_code or ClaudeCodeConfig()
    for name, value in options.env.items():
        if process.secret_name(name):
            register_secret(value)
    backend = ClaudeCodeBackend(
        cli_path=config.cli_path,
        model=config.model,
        default_model=options.model,
        permission_mode=config.permission_mode,
        allowed_tools=tuple(config.allowed_tools) or DEFAULT_ALLOWED_TOOLS,
        disallowed_tools=tuple(config.disallowed_tools),
        max_turns=config.max_turns if options.claude_code else options.max_turns,
        max_budget_usd=lowest(config.max_budget_usd or None, options.max_cost_usd),
        env=options.env,
        sandbox=options.sandbox,
        proxy=options.proxy,
    )
    return behind_breaker(backend, options.breakers, PROVIDER)


class ClaudeCodeBackend:
    """An agent backend that runs the ``claude`` CLI in the task's worktree."""

    name = "claude-code"

    def __init__(
        self,
        *,
        cli_path: str = "",
        model: str = "",
        default_model: str = "",
        permission_mode: str = "acceptEdits",
        allowed_tools: Sequence[str] = DEFAULT_ALLOWED_TOOLS,
        disallowed_tools: Sequence[str] = (),
        max_turns: int = 60,
        max_budget_usd: float | None = None,
        env: Mapping[str, str] | None = None,
        sandbox: Policy = UNCONFINED,
        proxy: ModelProxy | None = None,
    ) -> None:
        if permission_mode not in PERMISSION_MODES:
            raise ConfigError(
                f"[claude_code] permission_mode {permission_mode!r} is not one of "
                f"{', '.join(PERMISSION_MODES)}"
            )
        if max_turns < 1:
            raise ConfigError("[claude_code] max_turns must be at least 1")
        self.cli_path = cli_path
        self.model = model
        self.default_model = default_model
        self.permission_mode = permission_mode
        self.allowed_tools = tuple(allowed_tools)
        self.disallowed_tools = tuple(dict.fromkeys((*disallowed_tools, *ALWAYS_DISALLOWED)))
        self.max_turns = max_turns
        self.max_budget_usd = max_budget_usd
        self.env = dict(env or {})
        self.sandbox = sandbox
        self.proxy = proxy

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        session = Session(request.worktree, on_message)
        try:
            result = await self._run(request, session)
        except Exception as exc:  # a bug here or in the SDK: still an outcome, never a raise
            result = AgentResult(
                ok=False, crashed=True, error=f"claude-code backend error: {describe_error(exc)}"
            )
        return replace(
            result,
            error=one_line(result.error),
            summary=redact(result.summary),
            config_error=one_line(result.config_error),
            messages=tuple(session.transcript),
        )

    async def _run(self, request: AgentRequest, session: Session) -> AgentResult:
        cli = _cli_path(self.cli_path)
        problem = await check_cli(cli)
        if problem:
            return AgentResult(ok=False, error=problem, config_error=problem)
        budget = lowest(self.max_budget_usd, request.budget_usd)
        if budget is not None and budget <= 0:
            return AgentResult(ok=False, error="no budget is left for this attempt")
        jail = self.sandbox.jail(request.worktree, network="proxy" if self.proxy else "none")
        access = model_access(
            self.proxy, self.sandbox, [PROVIDER], request, direct=self.env, budget_usd=budget
        )
        if self.proxy is not None:
            budget = None  # the proxy enforces it, live, from what each response cost
        with (
            tempfile.TemporaryDirectory(
                prefix="blitz-claude-", ignore_cleanup_errors=True
            ) as config_dir,
            # The launcher runs outside the jail: it must not be where the agent can write.
            tempfile.TemporaryDirectory(prefix="blitz-launch-") as launch_dir,
        ):
            jail = replace(jail, binds=(Path(config_dir),), shown=(installation(cli),))
            async with access as models:
                options = self._options(request, cli, budget, session, config_dir, models.env)
                if jail.confined:
                    options = _jailed(options, jail, Path(launch_dir), session.marker)
                error = await session.converse(task_prompt(request), options, request.timeout)
        result, reached = outcome(session, error, request.timeout, budget, self.max_turns)
        # What the run says of Anthropic: an outage when the API was reached and the run crashed.
        verdict = None if reached is None else not (reached and result.crashed)
        return models.settle(replace(result, usage=session.usage(), reached=verdict))

    def _options(
        self,
        request: AgentRequest,
        cli: Path,
        budget: float | None,
        session: Session,
        config_dir: str,
        models: Mapping[str, str],
    ) -> ClaudeAgentOptions:
        env = {
            "CLAUDE_CODE_MAX_RETRIES": CLI_RETRIES,
            **models,  # the proxy's URL and token (without a proxy, the real provider env)
            "CLAUDE_CONFIG_DIR": config_dir,
            "CLAUDE_CODE_TMPDIR": config_dir,  # its scratch files (Bash output) go with it
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
            "DISABLE_AUTOUPDATER": "1",
            RUN_MARKER: session.marker,
        }
        guard = WorktreeGuard(request.worktree)
        return ClaudeAgentOptions(
            cli_path=cli,
            cwd=request.worktree,
            model=_model(self.model, request.model, self.default_model),
            permission_mode=cast("PermissionMode", self.permission_mode),  # checked in __init__
            allowed_tools=list(self.allowed_tools),
            disallowed_tools=list(self.disallowed_tools),
            max_turns=self.max_turns,
            max_budget_usd=budget,
            system_prompt={
                "type": "preset",
                "preset": "claude_code",
                "append": SYSTEM_PROMPT.format(worktree=guard.root),
            },
            # The project's own settings and CLAUDE.md, never the user's (~/.claude).
            setting_sources=["project"],
            hooks={"PreToolUse": [HookMatcher(matcher=None, hooks=[guard.hook])]},
            env=env,
            stderr=session.stderr.append,
        )


# -- the CLI ------------------------------------------------------------------------------------

SDK_ENV = (
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDE_AGENT_SDK_VERSION",
    "CLAUDE_CODE_SDK_READS_SESSION_STATE",
)
"""Variables the SDK sets for the CLI that the jail passes on (the rest of the SDK's environment,
which is blitz's own, stays outside)."""


def _jailed(
    options: ClaudeAgentOptions, jail: Jail, launch_dir: Path, marker: str
) -> ClaudeAgentOptions:
    """``options`` with the CLI started through a launcher that puts it in ``jail``: the SDK
    starts the launcher with blitz's whole environment; the launcher starts bubblewrap with only
    the jail's (and the run's marker, by which its processes are found)."""
    assert options.cli_path is not None
    env = jail.environment({**options.env, RUN_MARKER: marker})
    pairs = [shlex.quote(f"{name}={value}") for name, value in env.items()]
    passed = [f'"{name}=${{{name}:-}}"' for name in SDK_ENV]
    argv = " ".join(shlex.quote(arg) for arg in jail.command([str(options.cli_path)]))
    launcher = launch_dir / "claude-in-sandbox"
    launcher.write_text(
        f'#!/bin/sh\nexec env -i {" ".join(pairs)} {" ".join(passed)} {argv} "$@"\n',
        encoding="utf-8",
    )
    launcher.chmod(0o700)
    return replace(options, cli_path=launcher)


def _cli_path(configured: str) -> Path:
    """The CLI to run: blitz.toml's ``cli_path`` (a path, or a name on PATH), else the bundled
    one, else ``claude`` on PATH."""
    if configured:
        expanded = os.path.expanduser(configured)
        if os.sep not in expanded and (found := shutil.which(expanded)):
            return Path(found)
        return Path(expanded)
    bundled = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if not bundled.is_file() and (found := shutil.which("claude")):
        return Path(found)
    return bundled


async def check_cli(path: Path) -> str:
    """Why the CLI at ``path`` cannot be used ("" if it can); the answer of ``--version`` is
    kept per executable (path, modification time and size)."""
    fix = (
        f"set [claude_code] cli_path in blitz.toml to Claude Code {_MINIMUM} or later, or leave "
        "it empty for the one bundled with claude-agent-sdk"
    )
    try:
        stat = path.stat()
    except OSError:
        return f"the claude CLI was not found at {path}: {fix}"
    if not path.is_file() or not os.access(path, os.X_OK):
        return f"the claude CLI at {path} is not an executable file: {fix}"
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _versions:
        _versions[key] = await _version_problem(path, fix)
    return _versions[key]


async def _version_problem(path: Path, fix: str) -> str:
    try:
        done = await process.run([str(path), "--version"], cwd=path.parent, timeout=VERSION_TIMEOUT)
    except OSError as exc:
        return f"the claude CLI at {path} cannot be run ({exc}): {fix}"
    found = _VERSION.search(done.output) if done.ok else None
    if found is None:
        said = " ".join(done.output.split())[:200] or "nothing"
        return f"{path} did not report a Claude Code version (`--version` said: {said}): {fix}"
    version = tuple(int(part) for part in found.groups())
    if version < MINIMUM_CLI_VERSION:
        return f"the claude CLI at {path} is version {found.group(0)}, older than {_MINIMUM}: {fix}"
    return ""


# -- text ---------------------------------------------------------------------------------------


def _model(configured: str, requested: str, default: str) -> str | None:
    """The model for the CLI: ``[claude_code] model``, else the attempt's or blitz's agent model
    when it is an Anthropic one (``anthropic:`` dropped), else the CLI's default (None)."""
    if configured:
        return configured.removeprefix("anthropic:")
    for name in (requested, default):
        if name.startswith("anthropic:"):
            return name.removeprefix("anthropic:")
        if ":" not in name and (name.startswith("claude") or name in _ALIASES):
            return name
    return None


_ALIASES = frozenset({"sonnet", "opus", "haiku", "default", "opusplan"})
