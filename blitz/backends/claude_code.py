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

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import tempfile
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import claude_agent_sdk
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKError,
    CLIConnectionError,
    CLIJSONDecodeError,
    CLINotFoundError,
    HookContext,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    Message,
    PermissionMode,
    ProcessError,
    RateLimitEvent,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    query,
)

from blitz import process, proctree
from blitz.backends.base import (
    AgentBackend,
    AgentRequest,
    AgentResult,
    MessageSink,
    lowest,
    task_prompt,
    trim,
)
from blitz.backends.circuit import behind_breaker
from blitz.backends.options import BackendOptions, ClaudeCodeConfig
from blitz.domain import Usage
from blitz.errors import ConfigError
from blitz.llm.errors import breaker_key
from blitz.redact import redact, register_secret

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
"""The breaker of the Anthropic API (the key :func:`blitz.llm.errors.breaker_key` gives it)."""

CLI_RETRIES = "3"
"""Retries of one API request inside the CLI (``CLAUDE_CODE_MAX_RETRIES``; the provider
environment may set its own). A failure after them crashes the attempt, which blitz retries."""

VERSION_TIMEOUT = 30.0
STOP_GRACE = 3.0
"""Seconds the processes of a stopped run have between SIGTERM and SIGKILL."""
KILL_GRACE = 5.0
"""Seconds a stopped CLI's stream has to end before the reading task is cancelled."""
RUN_MARKER = proctree.MARKER_VARIABLE
"""Environment variable carrying one run's id to the CLI and everything it starts: how the CLI's
process tree is found (the SDK's public API does not give the CLI's process id)."""
MESSAGES_KEPT = 20
SHOWN_CHARS = 800
RESULT_CHARS = 400  # tool results are shown briefly

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

_KEY_HELP = (
    "set ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN from `claude setup-token`) for blitz; "
    "blitz runs Claude Code apart from your own ~/.claude login"
)
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_MINIMUM = ".".join(map(str, MINIMUM_CLI_VERSION))
_versions: dict[tuple[str, int, int], str] = {}  # (path, mtime, size) -> "" or the problem


def create(options: BackendOptions) -> AgentBackend:
    """The backend from blitz.toml's ``[claude_code]`` and the provider environment."""
    config = options.claude_code or ClaudeCodeConfig()
    for name, value in options.env.items():
        if name.upper().endswith(process.SECRET_ENV_SUFFIXES):
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

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        session = _Session(request.worktree, on_message)
        try:
            result = await self._run(request, session)
        except Exception as exc:  # a bug here or in the SDK: still an outcome, never a raise
            result = AgentResult(
                ok=False, crashed=True, error=f"claude-code backend error: {_describe(exc)}"
            )
        return replace(
            result,
            error=_line(result.error),
            summary=redact(result.summary),
            config_error=_line(result.config_error),
            messages=tuple(session.transcript),
        )

    async def _run(self, request: AgentRequest, session: _Session) -> AgentResult:
        cli = _cli_path(self.cli_path)
        problem = await check_cli(cli)
        if problem:
            return AgentResult(ok=False, error=problem, config_error=problem)
        budget = lowest(self.max_budget_usd, request.budget_usd)
        if budget is not None and budget <= 0:
            return AgentResult(ok=False, error="no budget is left for this attempt")
        with tempfile.TemporaryDirectory(
            prefix="blitz-claude-", ignore_cleanup_errors=True
        ) as config_dir:
            options = self._options(request, cli, budget, session, config_dir)
            error = await session.converse(task_prompt(request), options, request.timeout)
        result, reached = _outcome(session, error, request.timeout, budget, self.max_turns)
        # What the run says of Anthropic: an outage when the API was reached and the run crashed.
        verdict = None if reached is None else not (reached and result.crashed)
        return replace(result, usage=session.usage(), reached=verdict)

    def _options(
        self,
        request: AgentRequest,
        cli: Path,
        budget: float | None,
        session: _Session,
        config_dir: str,
    ) -> ClaudeAgentOptions:
        env = {
            "CLAUDE_CODE_MAX_RETRIES": CLI_RETRIES,
            **self.env,
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


# -- the conversation ---------------------------------------------------------------------------


class _TimedOut(Exception):
    """The run outlived its timeout and was stopped."""


class _Session:
    """One run: the CLI's messages shown and kept, its stderr, its result, its processes."""

    def __init__(self, worktree: Path, sink: MessageSink | None) -> None:
        self.root = worktree.resolve()
        self.transcript: deque[str] = deque(maxlen=MESSAGES_KEPT)
        self.stderr: deque[str] = deque(maxlen=40)
        self.result: ResultMessage | None = None
        self.api_error = ""  # the kind of the last API failure the CLI reported
        self.marker = proctree.new_marker()
        self._sink = sink
        self._streamed: dict[str, Mapping[str, Any]] = {}  # usage per API message

    async def converse(
        self, prompt: str, options: ClaudeAgentOptions, timeout: float
    ) -> BaseException | None:
        """Run the CLI to its end, or stop it at ``timeout``; returns what the stream raised
        (:class:`_TimedOut` when it was stopped)."""
        stream = asyncio.ensure_future(self._stream(prompt, options))
        try:
            done, _ = await asyncio.wait({stream}, timeout=timeout)
        except asyncio.CancelledError:
            await self._stop(stream)
            raise
        if not done:
            await self._stop(stream)
            return _TimedOut()
        # The agent may have left background processes (a server it started, say).
        await proctree.kill_tree(None, marker=self.marker, grace=STOP_GRACE)
        return asyncio.CancelledError() if stream.cancelled() else stream.exception()

    async def _stream(self, prompt: str, options: ClaudeAgentOptions) -> None:
        async for message in query(prompt=prompt, options=options):
            await self.observe(message)

    async def _stop(self, stream: asyncio.Future[None]) -> None:
        """Stop the CLI's process tree, then let the stream end (or cancel it)."""
        await proctree.kill_tree(None, marker=self.marker, grace=STOP_GRACE)
        await asyncio.wait({stream}, timeout=KILL_GRACE)
        if not stream.done():
            stream.cancel()
            await asyncio.wait({stream}, timeout=KILL_GRACE)
        if stream.done() and not stream.cancelled():
            stream.exception()  # retrieved: the timeout, not this, is the outcome

    async def observe(self, message: Message) -> None:
        """Show one message of the CLI and keep what the outcome needs."""
        if isinstance(message, AssistantMessage):
            if message.error:
                self.api_error = message.error
            if message.message_id and message.usage:
                self._streamed[message.message_id] = message.usage
            for block in message.content:
                if isinstance(block, TextBlock) and block.text.strip():
                    await self.say(block.text.strip())
                elif isinstance(block, ToolUseBlock):
                    await self.say(describe_call(block.name, block.input, self.root))
        elif isinstance(message, UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    text = _trim(_text_of(block.content).strip(), RESULT_CHARS)
                    await self.say(f"error: {text}" if block.is_error else text or "(no output)")
        elif isinstance(message, SystemMessage) and message.subtype == "init":
            data = message.data
            await self.say(
                f"Claude Code {data.get('claude_code_version', '?')} started: model "
                f"{data.get('model', '?')}, permission mode {data.get('permissionMode', '?')}"
            )
        elif isinstance(message, RateLimitEvent) and message.rate_limit_info.status == "rejected":
            await self.say("rate limited by Anthropic")
        elif isinstance(message, ResultMessage):
            self.result = message

    async def say(self, text: str) -> None:
        shown = _trim(redact(text))
        self.transcript.append(shown)
        if self._sink is not None:
            await self._sink(shown)

    def usage(self) -> Usage:
        """Tokens and cost from the result; without one (a killed run), the tokens streamed."""
        result = self.result
        if result is not None and result.model_usage:
            models = list(result.model_usage.values())
            read = sum(_int(m.get("cacheReadInputTokens")) for m in models)
            written = sum(_int(m.get("cacheCreationInputTokens")) for m in models)
            inputs = sum(_int(m.get("inputTokens")) for m in models)
            outputs = sum(_int(m.get("outputTokens")) for m in models)
        else:
            counts = [result.usage or {}] if result is not None else list(self._streamed.values())
            read = sum(_int(u.get("cache_read_input_tokens")) for u in counts)
            written = sum(_int(u.get("cache_creation_input_tokens")) for u in counts)
            inputs = sum(_int(u.get("input_tokens")) for u in counts)
            outputs = sum(_int(u.get("output_tokens")) for u in counts)
        cost = result.total_cost_usd if result is not None else None
        return Usage(
            input_tokens=inputs + read + written,
            output_tokens=outputs,
            cached_tokens=read,
            cost_usd=float(cost or 0.0),
        )


def _outcome(
    session: _Session,
    error: BaseException | None,
    timeout: float,
    budget: float | None,
    max_turns: int,
) -> tuple[AgentResult, bool | None]:
    """The result of a finished run, and whether the Anthropic API answered (None: unknown)."""
    if isinstance(error, _TimedOut):
        message = f"timed out after {timeout:g}s: the claude CLI was stopped with its processes"
        return AgentResult(ok=False, error=message), None
    result = session.result
    if result is not None and not result.is_error:
        return AgentResult(ok=True, summary=(result.result or "").strip() or "(no summary)"), True
    if result is not None and result.subtype == "error_max_turns":
        return AgentResult(ok=False, error=f"turn limit of {max_turns} reached"), True
    if result is not None and result.subtype == "error_max_budget_usd":
        spent = result.total_cost_usd or 0.0
        limit = f"${budget:g}" if budget is not None else "the cost limit"
        return AgentResult(ok=False, error=f"cost limit of {limit} reached (${spent:.4f})"), True
    if result is not None and (result.api_error_status is not None or session.api_error):
        detail = result.result or "; ".join(result.errors or ()) or "no detail"
        return _api_failure(result.api_error_status, session.api_error, detail), True
    if result is not None:
        detail = "; ".join(result.errors or ()) or result.result or result.subtype
        return AgentResult(ok=False, crashed=True, error=f"the claude CLI failed: {detail}"), None
    return _failure(error, session), None


def _api_failure(status: int | None, kind: str, detail: str) -> AgentResult:
    """An API failure the CLI reported (after its own retries): who must act."""
    where = f" ({status})" if status is not None else ""
    if status in (401, 403) or kind == "authentication_failed":
        message = f"Anthropic rejected the claude CLI's credentials{where}: {_KEY_HELP} ({detail})"
        return AgentResult(ok=False, error=message, config_error=message)
    if status == 402 or kind == "billing_error":
        message = (
            f"Anthropic refused the call{where}: the account is out of credit or over its spend "
            f"limit; add credit or raise the limit ({detail})"
        )
        return AgentResult(ok=False, error=message, config_error=message)
    if status == 404:
        message = f"Anthropic does not know the model{where}: check [claude_code] model ({detail})"
        return AgentResult(ok=False, error=message, config_error=message)
    if status in (400, 413, 422) or kind == "invalid_request":
        return AgentResult(ok=False, error=f"Anthropic rejected a request{where}: {detail}")
    # 429, 5xx, 529, refused or dropped connections: the provider's machinery.
    return AgentResult(ok=False, crashed=True, error=f"the Anthropic API failed{where}: {detail}")


def _failure(error: BaseException | None, session: _Session) -> AgentResult:
    """The result of a run that ended without a result message."""
    stderr = " | ".join(session.stderr)
    if isinstance(error, CLINotFoundError):
        message = f"the claude CLI could not be started: {error}"
        return AgentResult(ok=False, error=message, config_error=message)
    if isinstance(error, CLIJSONDecodeError):
        line = _trim(error.line, 200)
        message = f"the claude CLI wrote a malformed line: {line}"
        return AgentResult(ok=False, crashed=True, error=message)
    if isinstance(error, ClaudeSDKError) and hasattr(error, "data"):  # the SDK's MessageParseError
        found = getattr(error, "data", None)
        data = _trim(json.dumps(found, default=str), 200) if found else ""
        return AgentResult(
            ok=False, crashed=True, error=f"unreadable message from the claude CLI: {error} {data}"
        )
    if any(word in stderr.lower() for word in ("invalid api key", "not logged in", "/login")):
        message = f"the claude CLI has no valid credentials: {_KEY_HELP} ({stderr})"
        return AgentResult(ok=False, error=message, config_error=message)
    if isinstance(error, ProcessError):
        output = f": {stderr}" if stderr else " (no error output)"
        message = f"the claude CLI exited with code {error.exit_code}{output}"
        return AgentResult(ok=False, crashed=True, error=message)
    if isinstance(error, CLIConnectionError | ClaudeSDKError):
        return AgentResult(ok=False, crashed=True, error=f"the claude CLI failed: {error} {stderr}")
    if error is not None:
        return AgentResult(
            ok=False, crashed=True, error=f"the claude CLI failed: {_describe(error)} {stderr}"
        )
    return AgentResult(
        ok=False, crashed=True, error=f"the claude CLI ended without a result {stderr}".strip()
    )


# -- the CLI ------------------------------------------------------------------------------------


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


# -- the worktree guard -------------------------------------------------------------------------

_GIT_REFUSED = frozenset(
    {"commit", "push", "rebase", "merge", "cherry-pick", "am", "tag", "switch", "reset",
     "worktree", "update-ref", "filter-branch"}
)  # fmt: skip
_WRITES_EVERY_ARGUMENT = frozenset(
    {"rm", "rmdir", "touch", "mkdir", "tee", "chmod", "chown", "chgrp", "truncate", "shred",
     "unlink"}
)  # fmt: skip
_WRITES_LAST_ARGUMENT = frozenset({"cp", "mv", "ln", "install", "rsync"})
_PREFIXES = frozenset({"sudo", "env", "command", "exec", "nohup", "time", "nice", "builtin"})
_PUNCTUATION = "();<>|&\n"
_OPERATOR_CHARS = frozenset(_PUNCTUATION)
_SEPARATORS = frozenset("();|&\n")
_DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/")


@dataclass(slots=True)
class WorktreeGuard:
    """Refuses tool calls that reach outside the worktree (a ``PreToolUse`` hook)."""

    worktree: Path
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.worktree.resolve()

    async def hook(
        self, data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        if data["hook_event_name"] != "PreToolUse":
            return {}
        try:
            reason = self.refusal(data["tool_name"], data["tool_input"])
        except Exception as exc:  # a refusal is safer than a call nobody checked
            reason = f"blitz could not check this call: {_describe(exc)}"
        if not reason:
            return {}
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": f"Refused by blitz: {reason}",
            }
        }

    def refusal(self, tool: str, arguments: Mapping[str, Any]) -> str:
        """Why the call must not run ("" if it may)."""
        for key in ("file_path", "notebook_path", "path"):
            value = arguments.get(key)
            if isinstance(value, str) and value and not self.inside(value):
                return f"{value} is outside the worktree {self.root}; work only on files under it"
        command = arguments.get("command")
        if tool == "Bash" and isinstance(command, str):
            return self.command_refusal(command)
        return ""

    def inside(self, path: str) -> bool:
        """Whether ``path`` (relative to the worktree, or absolute) resolves inside it."""
        resolved = (self.root / os.path.expanduser(path)).resolve()
        return resolved == self.root or resolved.is_relative_to(self.root)

    def command_refusal(self, command: str) -> str:
        """Why a shell command must not run: it visibly changes directory, redirects or writes
        outside the worktree, or commits or rewrites git history. Only what the words show is
        judged (no variables but ``$HOME``, no ``cd`` earlier in the command)."""
        lexer = shlex.shlex(command, posix=True, punctuation_chars=_PUNCTUATION)
        lexer.whitespace_split = True
        lexer.whitespace = " \t\r"  # a newline separates commands, as ";" does
        try:
            words = list(lexer)
        except ValueError:  # unbalanced quotes: the shell refuses it too
            return ""
        simple: list[str] = []
        target = ""  # after a redirection: "write" (>, >>, &>) or "read" (<, <<, <<<)
        for word in [*words, ";"]:
            if target:
                written, target = target == "write", ""
                device = word.isdigit() or word.startswith(_DEVICES)
                if written and not device and self._out(word):
                    return f"`{command}` writes to {word}, outside the worktree {self.root}"
            elif set(word) <= _OPERATOR_CHARS and ("<" in word or ">" in word):
                target = "write" if ">" in word else "read"
            elif set(word) <= _SEPARATORS:
                if reason := self._simple_refusal(simple):
                    return f"`{command}`: {reason}"
                simple = []
            else:
                simple.append(word)
        return ""

    def _simple_refusal(self, words: list[str]) -> str:
        while words and (words[0] in _PREFIXES or re.fullmatch(r"\w+=.*", words[0])):
            words = words[1:]
        if not words:
            return ""
        name, arguments = os.path.basename(words[0]), [w for w in words[1:] if w != "--"]
        operands = [w for w in arguments if not w.startswith("-")]
        if name in ("cd", "pushd"):
            target = operands[0] if operands else "~"
            return f"cd to {target} leaves the worktree" if self._out(target) else ""
        if name == "git":
            return self._git_refusal(arguments)
        if name in _WRITES_EVERY_ARGUMENT:
            targets = operands
        elif name in _WRITES_LAST_ARGUMENT:
            targets = operands[-1:]
        elif name == "dd":
            targets = [w.removeprefix("of=") for w in operands if w.startswith("of=")]
        else:
            targets = []
        outside = [t for t in targets if self._out(t)]
        return f"{name} would change {outside[0]}, outside the worktree" if outside else ""

    def _git_refusal(self, arguments: list[str]) -> str:
        index = 0
        while index < len(arguments) and arguments[index].startswith("-"):
            if arguments[index] in ("-C", "--git-dir", "--work-tree") and index + 1 < len(
                arguments
            ):
                if self._out(arguments[index + 1]):
                    return f"git {arguments[index]} {arguments[index + 1]} leaves the worktree"
                index += 1
            index += 1
        if index < len(arguments) and arguments[index] in _GIT_REFUSED:
            return f"do not run git {arguments[index]}: blitz commits your changes itself"
        return ""

    def _out(self, word: str) -> bool:
        """Whether a shell word names a path outside the worktree (unknown variables: no)."""
        for home in ("${HOME}", "$HOME"):
            if word == home or word.startswith(home + "/"):
                word = "~" + word[len(home) :]
        if "$" in word or "`" in word:
            return False
        return not self.inside(word)


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


def describe_call(name: str, arguments: Mapping[str, Any], root: Path) -> str:
    """One line for a tool call: ``$ pytest -q``, ``Edit src/app.py``."""

    def path(key: str = "file_path") -> str:
        value = str(arguments.get(key) or "")
        with contextlib.suppress(ValueError):
            return str(Path(value).relative_to(root)) if os.path.isabs(value) else value
        return value

    if name == "Bash":
        return f"$ {arguments.get('command', '')}"
    if name in ("Read", "Write", "Edit", "MultiEdit"):
        return f"{name} {path()}"
    if name == "NotebookEdit":
        return f"{name} {path('notebook_path')}"
    where = f" in {path('path')}" if arguments.get("path") else ""
    if name == "Glob":
        return f"Glob {arguments.get('pattern', '')}{where}"
    if name == "Grep":
        glob = f" ({arguments['glob']})" if arguments.get("glob") else ""
        return f"Grep {arguments.get('pattern', '')!r}{where}{glob}"
    if name == "LS":
        return f"LS {path('path')}"
    if name == "TodoWrite":
        todos = arguments.get("todos")
        return f"TodoWrite ({len(todos) if isinstance(todos, list) else 0} items)"
    if name in ("Task", "Agent"):
        return f"{name}: {arguments.get('description', '')}"
    return f"{name} {_trim(json.dumps(dict(arguments), default=str), 200)}"


def _text_of(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(
        str(part.get("text", "")) for part in content or () if part.get("type") == "text"
    )


def _trim(text: str, limit: int = SHOWN_CHARS) -> str:
    return trim(text, limit)


def _line(text: str) -> str:
    """One redacted line of bounded length (errors are shown in one line)."""
    return _trim(" ".join(redact(text).split()), 2 * SHOWN_CHARS)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
