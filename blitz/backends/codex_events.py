"""What codex says: its JSONL events read into live messages, usage and the run's outcome
(:class:`Session`), and its account of a failed turn sorted by who must act
(:func:`classify_failure`)."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from blitz import process
from blitz.backends.base import AgentResult, MessageSink, excerpt, trim
from blitz.backends.install import CODEX_VERSION, INSTALL_HINT, NOISE
from blitz.domain import Usage
from blitz.redact import redact

if TYPE_CHECKING:
    from blitz.llm.usage import PriceTable

PROVIDER = "openai"
KEY_VARIABLE = "OPENAI_API_KEY"
MESSAGES_KEPT = 20
"""Messages of the run kept in :attr:`AgentResult.messages`, the newest ones."""

SHOWN_CHARS = 800
"""Characters of one shown message (a command's output, say); longer ones lose their middle."""


# -- classifying what codex says went wrong ------------------------------------------------------

Kind = Literal["transient", "config", "other"]

_CONFIG_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"\b401\b|unauthori[sz]ed|invalid[_ ]api[_ ]key|incorrect api key", "auth"),
    (r"\b403\b|forbidden|not supported in your|unsupported_country", "permission"),
    (
        r"quota exceeded|insufficient_quota|exceeded your current quota|billing|credit balance"
        r"|spend(ing)? limit|usage limit|usage_not_included",
        "billing",
    ),
    (r"\b404\b|model_not_found|does not exist or you do not have access", "not_found"),
    (r"missing environment variable|no api key", "auth"),
)
_TRANSIENT_PATTERNS = (
    r"\b429\b|too many requests|rate limit",
    r"\b5\d\d\b|server error|internal error|high demand|at capacity|overloaded|unavailable",
    r"stream disconnected|stream closed|connection (failed|refused|reset)|error sending request"
    r"|transport error|timed? ?out|reconnecting|network",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """What a failed codex turn means: ``transient`` (retry later), ``config`` (the user must
    act; ``reason`` says on what) or ``other`` (the work failed)."""

    kind: Kind
    reason: str
    message: str


def classify_failure(message: str) -> Failure:
    """Sort codex's own account of a failed turn (``turn.failed``'s message)."""
    lowered = message.lower()
    for pattern, reason in _CONFIG_PATTERNS:
        if re.search(pattern, lowered):
            return Failure(kind="config", reason=reason, message=_config_message(reason, message))
    if "context window" in lowered or "context_length" in lowered:
        return Failure(kind="other", reason="context_window", message=message)
    for pattern in _TRANSIENT_PATTERNS:
        if re.search(pattern, lowered):
            return Failure(kind="transient", reason="provider", message=message)
    return Failure(kind="other", reason="unknown", message=message)


def _config_message(reason: str, message: str) -> str:
    advice = {
        "auth": f"OpenAI rejected the API key: check {KEY_VARIABLE}",
        "permission": f"OpenAI refused access: check that the key in {KEY_VARIABLE} may use "
        "this model",
        "billing": "OpenAI refused the call: the account is out of credit or over its spend "
        "limit; add credit or raise the limit",
        "not_found": "OpenAI does not know this model: check [codex] model (or the model given) "
        "and OPENAI_BASE_URL",
    }[reason]
    return f"{advice} (codex: {message})"


# -- reading codex's events -----------------------------------------------------------------------


class MalformedOutput(Exception):
    """codex printed something on stdout that is not one JSON event."""


class Session:
    """What one run has said so far: the messages shown, the usage, how its turn ended."""

    def __init__(self, sink: MessageSink | None, worktree: Path) -> None:
        self._sink = sink
        self._worktree = worktree
        self.transcript: deque[str] = deque(maxlen=MESSAGES_KEPT)
        self.model = ""
        self.prices: PriceTable | None = None
        self.started = False  # thread.started seen
        self.completed = False  # turn.completed seen
        self.failure = ""  # turn.failed's message
        self.last_error = ""  # the last error event's message
        self.summary = ""  # the last agent message
        self.usage = Usage()

    async def say(self, text: str) -> None:
        shown = _trim(redact(text.strip()))
        if not shown:
            return
        self.transcript.append(shown)
        if self._sink is not None:
            await self._sink(shown)

    async def line(self, line: str) -> None:
        """One line of codex's stdout: one JSON event."""
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise MalformedOutput(
                "codex printed a line that is not a JSON event, so its output cannot be trusted: "
                f"{excerpt(line.strip(), 200)!r}"
            )
        await self._event(event)

    async def _event(self, event: Mapping[str, Any]) -> None:
        kind = event["type"]
        if kind == "thread.started":
            self.started = True
        elif kind == "turn.completed":
            self.completed = True
            self._add_usage(event.get("usage"))
        elif kind == "turn.failed":
            error = event.get("error")
            message = error.get("message") if isinstance(error, Mapping) else None
            self.failure = str(message or "the turn failed")
            await self.say(f"turn failed: {self.failure}")
        elif kind == "error":
            self.last_error = str(event.get("message") or "")
            await self.say(f"error: {self.last_error}")
        elif kind in ("item.started", "item.updated", "item.completed"):
            item = event.get("item")
            if isinstance(item, Mapping):
                await self._item(kind, item)

    async def _item(self, kind: str, item: Mapping[str, Any]) -> None:
        what = item.get("type")
        done = kind == "item.completed"
        if what == "agent_message" and done:
            text = str(item.get("text") or "")
            if text.strip():
                self.summary = text.strip()
            await self.say(text)
        elif what == "reasoning" and done:
            await self.say(f"thinking: {item.get('text') or ''}")
        elif what == "command_execution":
            if kind == "item.started":
                await self.say(f"$ {_command(item.get('command'))}")
            elif done:
                output = str(item.get("aggregated_output") or "")
                code = item.get("exit_code")
                status = "" if code in (0, None) else f"[exit {code}]\n"
                await self.say(f"{status}{output}" or "(no output)")
        elif what == "file_change" and done:
            await self.say(self._changes(item))
        elif what == "mcp_tool_call" and done:
            await self.say(f"tool {item.get('server', '')}.{item.get('tool', '')}")
        elif what == "web_search" and done:
            await self.say(f"web search: {item.get('query', '')}")
        elif what == "todo_list" and kind != "item.updated":
            entries = _list(item.get("items"))
            await self.say(
                "plan:\n"
                + "\n".join(
                    f"[{'x' if e.get('completed') else ' '}] {e.get('text', '')}"
                    for e in entries
                    if isinstance(e, Mapping)
                )
            )
        elif what == "error" and done:
            await self.say(f"codex: {item.get('message', '')}")

    def _changes(self, item: Mapping[str, Any]) -> str:
        changes = _list(item.get("changes"))
        shown = []
        for change in changes:
            if not isinstance(change, Mapping):
                continue
            path = str(change.get("path", ""))
            with contextlib.suppress(ValueError):
                path = str(Path(path).relative_to(self._worktree))
            shown.append(f"{change.get('kind', 'update')} {path}")
        failed = " (failed)" if item.get("status") == "failed" else ""
        return f"edit{failed}: {', '.join(shown) or '(no files)'}"

    def _add_usage(self, usage: Any) -> None:
        if not isinstance(usage, Mapping):
            return

        def count(name: str) -> int:
            value = usage.get(name)
            return value if isinstance(value, int) and value > 0 else 0

        tokens = Usage(
            input_tokens=count("input_tokens"),
            cached_tokens=count("cached_input_tokens"),
            output_tokens=count("output_tokens"),
            cost_usd=self._cost(
                count("input_tokens"),
                count("cached_input_tokens"),
                count("cache_write_input_tokens"),
                count("output_tokens"),
            ),
        )
        self.usage = self.usage + tokens

    def _cost(self, input_tokens: int, cached: int, written: int, output: int) -> float:
        if self.prices is None or not self.model:
            return 0.0
        from pydantic_ai.usage import RequestUsage

        from blitz.llm.models import ModelSpec

        price = self.prices.price(ModelSpec(provider=PROVIDER, name=self.model))
        if not price.known:
            return 0.0
        return price.cost(
            RequestUsage(
                input_tokens=input_tokens,
                cache_read_tokens=cached,
                cache_write_tokens=written,
                output_tokens=output,
            )
        )

    def outcome(
        self, completed: process.Completed, *, timeout: float
    ) -> tuple[AgentResult, bool | None]:
        """The run's result from how codex ended, and what it says of the provider."""
        if completed.timed_out:
            return (
                AgentResult(
                    ok=False,
                    error=f"codex did not finish within {timeout:g}s; it was stopped with its "
                    "processes",
                ),
                None,
            )
        if self.failure:
            failure = classify_failure(self.failure)
            if failure.kind == "config":
                return AgentResult.configuration(failure.message), True
            if failure.kind == "transient":
                return AgentResult(
                    ok=False, crashed=True, error=f"OpenAI: {failure.message}"
                ), False
            return AgentResult(ok=False, error=f"codex: {failure.message}"), True
        if completed.exit_code == 0 and self.completed:
            return AgentResult(ok=True, summary=self.summary or "(no summary given)"), True
        stderr = _stderr(completed.output)
        if not self.started and "error loading config" in stderr.lower():
            message = (
                f"codex rejected the configuration blitz gave it: {stderr}; blitz is tested "
                f"with codex {CODEX_VERSION} (`{INSTALL_HINT}`)"
            )
            return AgentResult.configuration(message), None
        if completed.exit_code == 0:
            return (
                AgentResult(
                    ok=False, crashed=True, error="codex exited without finishing its turn"
                ),
                None,
            )
        detail = f": {stderr}" if stderr else ""
        if not detail and self.last_error:
            detail = f" (last error: {self.last_error})"
        return (
            AgentResult(
                ok=False,
                crashed=True,
                error=f"codex exited with code {completed.exit_code}{detail}",
            ),
            None,
        )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _command(command: Any) -> str:
    """A command codex ran, without the ``/bin/bash -lc '...'`` it wraps commands in."""
    text = str(command or "")
    try:
        words = shlex.split(text)
    except ValueError:
        return text
    if len(words) == 3 and words[0].endswith("sh") and words[1] in ("-c", "-lc"):
        return words[2]
    return text


def _stderr(output: str) -> str:
    """codex's own words from the end of its output: the lines that are not JSON events."""
    lines = [
        line.strip()
        for line in output.splitlines()
        if line.strip() and not line.lstrip().startswith("{") and not line.startswith(NOISE)
    ]
    return excerpt(" ".join(lines[-6:]), 600)


def _trim(text: str, limit: int = SHOWN_CHARS) -> str:
    return trim(text, limit)
