"""One Claude Code run as blitz sees it: the CLI's messages shown live and kept, the usage it
reports, its process tree stopped at the timeout, and what its end means (:func:`outcome`):
done, failed work, a crash (a provider outage is one), or a configuration error."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKError,
    CLIConnectionError,
    CLIJSONDecodeError,
    CLINotFoundError,
    Message,
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

from blitz import proctree
from blitz.backends.base import AgentResult, MessageSink, trim
from blitz.domain import Usage
from blitz.redact import redact

STOP_GRACE = 3.0
"""Seconds the processes of a stopped run have between SIGTERM and SIGKILL."""
KILL_GRACE = 5.0
"""Seconds a stopped CLI's stream has to end before the reading task is cancelled."""
MESSAGES_KEPT = 20
SHOWN_CHARS = 800
RESULT_CHARS = 400  # tool results are shown briefly

_KEY_HELP = (
    "set ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN from `claude setup-token`) for blitz; "
    "blitz runs Claude Code apart from your own ~/.claude login"
)


class TimedOut(Exception):
    """The run outlived its timeout and was stopped."""


class Session:
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
        (:class:`TimedOut` when it was stopped)."""
        stream = asyncio.ensure_future(self._stream(prompt, options))
        try:
            done, _ = await asyncio.wait({stream}, timeout=timeout)
        except asyncio.CancelledError:
            await self._stop(stream)
            raise
        if not done:
            await self._stop(stream)
            return TimedOut()
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


def outcome(
    session: Session,
    error: BaseException | None,
    timeout: float,
    budget: float | None,
    max_turns: int,
) -> tuple[AgentResult, bool | None]:
    """The result of a finished run, and whether the Anthropic API answered (None: unknown)."""
    if isinstance(error, TimedOut):
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


def _failure(error: BaseException | None, session: Session) -> AgentResult:
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
            ok=False, crashed=True, error=f"the claude CLI failed: {describe_error(error)} {stderr}"
        )
    return AgentResult(
        ok=False, crashed=True, error=f"the claude CLI ended without a result {stderr}".strip()
    )


# -- text ----------------------------------------------------------------------------------------


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


def one_line(text: str) -> str:
    """One redacted line of bounded length (errors are shown in one line)."""
    return _trim(" ".join(redact(text).split()), 2 * SHOWN_CHARS)


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
