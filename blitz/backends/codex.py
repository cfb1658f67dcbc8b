"""The Codex backend: OpenAI's Codex CLI (``codex exec --json``) doing one task in its worktree.

Each run is hermetic. ``CODEX_HOME`` is a fresh temporary directory holding a ``config.toml``
that blitz writes: one model provider (``blitz``) pointing at ``OPENAI_BASE_URL`` from the
provider settings (else OpenAI) with the key passed in the ``OPENAI_API_KEY`` environment
variable, no approvals (``approval_policy = "never"``), the ``[codex] sandbox`` (default
``workspace-write``: the worktree and a private ``TMPDIR`` are writable, ``/tmp`` and everything
else is not, no network for commands), no retries of its own (blitz and the provider's circuit
breaker decide), no analytics, no update check, and secrets kept out of the environment of the
commands it runs. ``--strict-config`` makes a codex that no longer knows one of those settings
fail loudly instead of silently ignoring it. The prompt goes in on stdin.

The JSONL events codex prints become the live messages: its messages, the commands it runs and
their output, the files it changes. ``turn.completed`` carries the tokens used; cost comes from the
price table when the model is known. ``turn.failed`` says why a turn failed, in codex's words,
which :func:`classify_failure` sorts: rate limits, server errors and dropped streams are
``crashed`` (and a failure of the ``provider:openai`` breaker); a rejected key, no access, an
exhausted quota or an unknown model are configuration errors; anything else is failed work.

On Linux the sandbox is codex's bundled bubblewrap plus seccomp, which needs unprivileged user
namespaces. Where they are missing, codex would run every command as failed (the sandbox fails
closed) and the agent would flounder; so before the first run of each binary blitz starts
``true`` in the sandbox (``codex sandbox -- true``), and if that fails the run is a
configuration error saying how to fix it. ``sandbox = "danger-full-access"`` skips the sandbox
(and the check): only for where blitz itself runs in a sandbox.

Processes: codex runs in its own process group, killed with it at ``request.timeout`` (or on
cancellation); every process it starts carries :data:`MARKER_VARIABLE` in its environment, and
any still alive when the run ends is killed too, even one that left the group.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import process, proctree
from blitz.backends.base import (
    AgentBackend,
    AgentRequest,
    AgentResult,
    MessageSink,
    task_prompt,
)
from blitz.backends.circuit import behind_breaker
from blitz.backends.codex_events import (
    KEY_VARIABLE,
    PROVIDER,
    Failure,
    MalformedOutput,
    Session,
    classify_failure,
)
from blitz.backends.install import (
    INSTALL_HINT,
    check_sandbox,
    check_version,
    find_codex,
)
from blitz.backends.options import BackendOptions, CodexConfig
from blitz.backends.proxied import model_access
from blitz.llm.breakers import breaker_key
from blitz.sandbox import UNCONFINED, Jail, Policy, as_shown, installation

if TYPE_CHECKING:
    from blitz.llm.usage import PriceTable
    from blitz.proxy import ModelProxy

__all__ = [
    "BREAKER_KEY",
    "MARKER_VARIABLE",
    "CodexBackend",
    "Failure",
    "classify_failure",
    "create",
]

BREAKER_KEY = breaker_key(PROVIDER)
"""The circuit breaker codex's provider failures are recorded on (as the embedded agent's are)."""

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SANDBOXES = ("read-only", "workspace-write", "danger-full-access")

MARKER_VARIABLE = proctree.MARKER_VARIABLE
"""Set to a fresh id in codex's environment, which the commands it runs inherit, so every process
of a run can be found (and killed) when the run ends, even one that left its process group."""

SECRET_PATTERNS = (
    *(f"*{suffix}" for suffix in process.SECRET_ENV_SUFFIXES),
    *(f"*{word}*" for word in process.SECRET_ENV_WORDS),
    "CODEX_*",
)
"""Environment variables codex keeps from the commands it runs (its key above all)."""

INSTRUCTIONS = """\
You are working unattended in a git worktree of a software project: no person is watching and \
nobody will answer questions, so work until the task is done.

- Make the change the task asks for, and keep it minimal, in the style of the surrounding code.
- Run the project's checks (tests, type checker, linter) when that helps you verify the change.
- Do not commit, push or rewrite git history: your changes are checked and committed for you.
- When the task is done, end with a short summary of what you changed and why.
- If you cannot do the task, say why in your last message."""
"""What blitz tells codex before the task (codex keeps its own system prompt)."""


# -- the backend ----------------------------------------------------------------------------------


def create(options: BackendOptions) -> AgentBackend:
    """The codex backend from the registry's options (``[codex]``, provider env, tools dir)."""
    backend = CodexBackend(
        config=options.codex or CodexConfig(),
        env=options.env,
        tools_dir=options.tools_dir,
        prices=options.prices,
        default_model=options.model,
        sandbox=options.sandbox,
        proxy=options.proxy,
    )
    return behind_breaker(backend, options.breakers, PROVIDER)


class CodexBackend:
    """An agent backend that runs the Codex CLI as a subprocess, one ``codex exec`` per task."""

    name = "codex"

    def __init__(
        self,
        *,
        config: CodexConfig,
        env: Mapping[str, str] | None = None,
        tools_dir: Path | None = None,
        prices: PriceTable | None = None,
        default_model: str = "",
        sandbox: Policy = UNCONFINED,
        proxy: ModelProxy | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.proxy = proxy
        self.config = config
        self.env = dict(env or {})
        self.tools_dir = tools_dir
        self.prices = prices
        self.default_model = default_model

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        session = Session(on_message, request.worktree)
        try:
            result = await self._run(request, session)
        except Exception as exc:  # a bug, or the OS refusing: never out of run()
            result = AgentResult(
                ok=False, crashed=True, error=f"codex backend error: {type(exc).__name__}: {exc}"
            )
        return replace(
            result.redacted(),
            messages=tuple(session.transcript),
            usage=session.usage,
        )

    async def _run(self, request: AgentRequest, session: Session) -> AgentResult:
        sandbox = self.config.sandbox
        jail = self.sandbox.jail(request.worktree, network="proxy" if self.proxy else "none")
        if jail.confined:
            # Codex's own bubblewrap cannot start inside blitz's: blitz's jail confines it.
            sandbox = "danger-full-access"
        if sandbox not in SANDBOXES:
            return _config_error(
                f"[codex] sandbox = {sandbox!r} is not one of {', '.join(SANDBOXES)}"
            )
        model, problem = self._model(request)
        if problem:
            return _config_error(problem)
        binary = find_codex(self.config, self.tools_dir)
        if binary is None:
            return _config_error(self._missing())
        problem = await check_version(binary)
        if problem:
            return _config_error(problem)
        base_url = self.env.get("OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL
        key = self.env.get(KEY_VARIABLE, "")
        if not key and base_url == DEFAULT_BASE_URL:
            return _config_error(f"the codex backend needs an OpenAI API key: set {KEY_VARIABLE}")
        if not request.worktree.is_dir():
            return AgentResult(
                ok=False, crashed=True, error=f"the worktree {request.worktree} does not exist"
            )
        session.model = model
        session.prices = self.prices
        async with model_access(self.proxy, self.sandbox, [PROVIDER], request) as models:
            if models.proxied:
                base_url, key = models.env["OPENAI_BASE_URL"], models.env[KEY_VARIABLE]
            result = await self._in(jail, request, session, binary, sandbox, base_url, key)
            return models.settle(result)

    async def _in(
        self,
        jail: Jail,
        request: AgentRequest,
        session: Session,
        binary: Path,
        sandbox: str,
        base_url: str,
        key: str,
    ) -> AgentResult:
        model = session.model
        with tempfile.TemporaryDirectory(prefix="blitz-codex-") as scratch:
            jail = replace(jail, binds=(Path(scratch),), shown=(installation(binary),))
            binary = as_shown(binary)
            home = Path(scratch) / "home"
            tmp = Path(scratch) / "tmp"
            home.mkdir()
            tmp.mkdir()
            config = config_toml(
                base_url=base_url, key_variable=KEY_VARIABLE if key else "", sandbox=sandbox
            )
            (home / "config.toml").write_text(config, encoding="utf-8")
            env = _environment(home=home, tmp=tmp, key=key, confined=jail.confined)
            if sandbox != "danger-full-access":
                problem = await check_sandbox(binary, cwd=request.worktree, env=env)
                if problem:
                    return _config_error(problem)
            args = [
                str(binary),
                "exec",
                "--json",
                "--strict-config",
                "--ephemeral",
                "--skip-git-repo-check",
                "--color",
                "never",
                "--sandbox",
                sandbox,
                "--cd",
                str(request.worktree),
            ]
            if model:
                args += ["--model", model]
            args.append("-")  # the prompt comes on stdin
            result, answered = await _exec(jail, args, env, request, session)
            return replace(result, reached=answered)

    def _model(self, request: AgentRequest) -> tuple[str, str]:
        """The model to pass codex ("" for its default), or a problem to report: the attempt's
        own model (a task's or a portfolio's), else ``[codex] model``, else the agent model."""
        if request.model:
            provider, sep, _ = request.model.partition(":")
            if sep and provider != PROVIDER:
                return "", (
                    f"the codex backend runs OpenAI models; {request.model!r} is not one "
                    "(name an openai: model, or set [codex] model)"
                )
            return _strip(request.model), ""
        if self.config.model:
            return _strip(self.config.model), ""
        provider, sep, _ = self.default_model.partition(":")
        # The general agent model may name another provider's model (for the embedded agent):
        # codex then uses its own default.
        if self.default_model and (not sep or provider == PROVIDER):
            return _strip(self.default_model), ""
        return "", ""

    def _missing(self) -> str:
        if self.config.binary:
            return (
                f"the codex CLI set as [codex] binary = {self.config.binary!r} was not found "
                "or is not executable"
            )
        return f"the codex CLI is not installed: run `{INSTALL_HINT}` (it needs npm)"


async def _exec(
    jail: Jail, args: list[str], env: dict[str, str], request: AgentRequest, session: Session
) -> tuple[AgentResult, bool | None]:
    """Run codex once: its result, and what it says of the provider (True: it answered, False:
    it failed transiently, None: codex never got to ask it)."""
    marker = proctree.new_marker()
    try:
        completed = await jail.stream(
            args,
            timeout=request.timeout,
            env=env,
            marker=marker,
            on_line=session.line,
            stdin=prompt(request).encode(),
        )
    except MalformedOutput as exc:
        return AgentResult(ok=False, crashed=True, error=str(exc)), None
    finally:
        # process.stream ends codex's tree when stopped; this also ends what a finished codex
        # left behind (a command it ran in a session of its own).
        await asyncio.shield(proctree.kill_tree(None, marker=marker))
    return session.outcome(completed, timeout=request.timeout)


def _strip(model: str) -> str:
    return model.removeprefix(f"{PROVIDER}:").strip()


def _config_error(message: str) -> AgentResult:
    return AgentResult.configuration(message)


# -- the run's inputs -----------------------------------------------------------------------------


def prompt(request: AgentRequest) -> str:
    """The task as codex is given it, after blitz's instructions."""
    return task_prompt(request, before=INSTRUCTIONS)


def _toml(value: str | bool | int | Sequence[str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return "[" + ", ".join(json.dumps(item) for item in value) + "]"


def config_toml(*, base_url: str, key_variable: str, sandbox: str) -> str:
    """The ``config.toml`` of one run (see the module docstring for why each setting)."""
    provider: dict[str, str | bool | int] = {
        "name": "OpenAI (through blitz)",
        "base_url": base_url,
        "wire_api": "responses",
        "request_max_retries": 0,
        "stream_max_retries": 0,
        "supports_websockets": False,
    }
    if key_variable:
        provider["env_key"] = key_variable
    tables: dict[str, Mapping[str, str | bool | int | Sequence[str]]] = {
        "": {
            "model_provider": "blitz",
            "approval_policy": "never",
            "sandbox_mode": sandbox,
            "check_for_update_on_startup": False,
            # Commands run as the gates do, without the user's login profile (`bash -c`).
            "allow_login_shell": False,
        },
        "analytics": {"enabled": False},
        "feedback": {"enabled": False},
        "history": {"persistence": "none"},
        # Without the first, codex waits for the network for ever when the server cannot be
        # reached. Without the others, it starts a login shell that sources ~/.bashrc to
        # snapshot the user's shell; killed at the end of a run, that shell's start-up (pyenv's
        # rehash, say) can leave the user's tools in a broken state.
        "features": {
            "unbounded_connection_retries": False,
            "shell_snapshot": False,
            "shell_snapshot_v2": False,
        },
        "sandbox_workspace_write": {
            "exclude_slash_tmp": True,
            "exclude_tmpdir_env_var": False,
            "network_access": False,
        },
        "shell_environment_policy": {"inherit": "all", "exclude": SECRET_PATTERNS},
        "model_providers.blitz": provider,
    }
    lines = ["# Written by blitz for one `codex exec` run, and removed after it."]
    for table, values in tables.items():
        if table:
            lines.append(f"\n[{table}]")
        lines.extend(f"{name} = {_toml(value)}" for name, value in values.items())
    return "\n".join(lines) + "\n"


def _environment(*, home: Path, tmp: Path, key: str, confined: bool = False) -> dict[str, str]:
    """codex's environment: this process's without secrets and without settings that would
    reach past blitz's config (``OPENAI_*``, ``CODEX_*``), plus its home, temp dir and key (in
    a jail: only those, on top of the jail's allowlist)."""
    env = {} if confined else {
        name: value
        for name, value in process.clean_env().items()
        if not name.startswith(("OPENAI_", "CODEX_"))
    }  # fmt: skip
    env.update(CODEX_HOME=str(home), TMPDIR=str(tmp), NO_COLOR="1")
    if key:
        env[KEY_VARIABLE] = key
    return env
