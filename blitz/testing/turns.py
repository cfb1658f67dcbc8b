"""The script of the scripted model server: turns, replies, and the requests it saw.

Every wire format (:mod:`~blitz.testing.anthropic_api`, :mod:`~blitz.testing.openai_api`,
:mod:`~blitz.testing.responses_api`) renders the same :class:`Reply`, so one scenario drives a
Claude, an OpenAI or a Codex client alike. A scenario is an ordered list of turns (Python data, or
a YAML/JSON file holding the list or ``{turns: [...]}``). Each model request is answered by the
first turn with uses left whose conditions all hold, so concurrent agents get their own turns by
matching on their task ids:

* ``match``: a substring of the conversation (system prompt, messages, tool calls and results);
  ``match_tool_result``: a substring of the tool results only; ``api``: ``anthropic``, ``openai``
  or ``any`` (the default); ``times``: uses (default 1, ``-1`` for ever).
* ``reply``: ``text``, ``json`` (any value, sent as its JSON text, for structured output) and/or
  ``tool_calls: [{name, input, id?}]``; ``usage: {input, output, cached, cache_write}``; or a
  fault: ``error: {status, message?, type?, code?, retry_after?, headers?, body?, should_retry?,
  after_events?}``, ``malformed: true`` (a body that is not JSON), ``cut_stream_after: N`` (drop
  the connection after N SSE events; at once for a non-streaming request) or ``cut_midway: true``
  (send the status, the headers and half of the body, then drop the connection). ``delay:
  seconds`` waits before any answer; ``chunk_delay: seconds`` between two streamed events (a slow
  but steady model). ``at_limit: true`` says the answer stopped at the output token limit
  (``finish_reason: length``, ``stop_reason: max_tokens``, an ``incomplete`` response).

A request no turn matches gets the script's ``fallback`` reply when it has one; otherwise a 500
naming its last user text, with ``x-should-retry: false``, and it is listed in
:attr:`Script.unmatched`, so a test whose script is off fails loudly.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, TypeAdapter

Api = Literal["anthropic", "openai"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts reported for a reply.

    ``input`` counts uncached input tokens, as Anthropic reports them; OpenAI's ``prompt_tokens``
    is ``input + cached + cache_write``, so one scenario costs the same under either API.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    input: int = 100
    output: int = 20
    cached: int = 0  # read from the prompt cache
    cache_write: int = 0  # written to the prompt cache; Anthropic reports it apart


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A tool the scripted model calls; the id is generated unless given."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorReply:
    """An error status with the provider's error body.

    The body is the API's own for the status unless scripted: ``type`` replaces the error's type
    (and, being the whole kind, leaves OpenAI's ``code`` null unless ``code`` is given too);
    ``code`` alone replaces OpenAI's code; ``body`` replaces the whole body with raw text, sent as
    ``text/html`` the way a proxy in front of the provider answers. ``retry_after`` and
    ``headers`` add response headers (``headers`` wins); ``should_retry`` sets the
    ``x-should-retry`` header the SDKs obey. With ``after_events`` a streaming request first gets
    a 200 and that many SSE events, then the API's mid-stream failure, as Anthropic reports an
    overload mid-stream; a non-streaming request gets the status as usual.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    status: int
    message: str = ""
    type: str | None = None
    code: str | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    should_retry: bool | None = None
    after_events: int | None = None

    def response_headers(self) -> dict[str, str]:
        """The headers this error adds to the answer."""
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["retry-after"] = f"{self.retry_after:g}"
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        scripted = {name.lower() for name in self.headers}
        return {**{k: v for k, v in headers.items() if k not in scripted}, **self.headers}


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the scripted model answers: content (text, json, tool calls) or a fault."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    text: str | None = None
    json: Any = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    error: ErrorReply | None = None
    malformed: bool = False
    cut_stream_after: int | None = None
    cut_midway: bool = False
    delay: float = 0.0
    chunk_delay: float = 0.0
    at_limit: bool = False

    def __post_init__(self) -> None:
        has_content = self.text is not None or self.json is not None or bool(self.tool_calls)
        if self.text is not None and self.json is not None:
            raise ValueError("a reply has either text or json, not both")
        cuts = self.cut_stream_after is not None or self.cut_midway
        if self.error is not None and (has_content or self.malformed or cuts):
            raise ValueError("an error reply has no content, malformed or cut")
        if not (has_content or self.error or self.malformed or cuts):
            raise ValueError(
                "a reply needs text, json, tool_calls, error, malformed, cut_stream_after "
                "or cut_midway"
            )
        if self.delay < 0 or self.chunk_delay < 0 or (self.cut_stream_after or 0) < 0:
            raise ValueError("delay, chunk_delay and cut_stream_after cannot be negative")

    @property
    def content(self) -> str | None:
        """The text the model sends: ``text``, or ``json`` dumped."""
        return json.dumps(self.json) if self.json is not None else self.text


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """One scripted answer and the requests it may answer; see the module docstring."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    reply: Reply
    match: str | None = None
    match_tool_result: str | None = None
    api: Literal["anthropic", "openai", "any"] = "any"
    times: int = 1

    def __post_init__(self) -> None:
        if self.times == 0 or self.times < -1:
            raise ValueError("times is a positive count, or -1 for ever")

    def matches(self, request: SeenRequest) -> bool:
        """Whether this turn may answer ``request``, uses left aside."""
        return (
            self.api in ("any", request.api)
            and (self.match is None or self.match in request.text)
            and (self.match_tool_result is None or self.match_tool_result in request.tool_results)
        )


_TURN = TypeAdapter(Turn)
_REPLY = TypeAdapter(Reply)
_SCENARIO = TypeAdapter(list[Turn])


def load_scenario(path: str | os.PathLike[str]) -> list[Turn]:
    """Read turns from a YAML or JSON file: a list of turns, or a mapping with ``turns``."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, Mapping):
        data = data.get("turns")
    if not isinstance(data, list):
        raise ValueError(f"{path}: a scenario is a list of turns, or a mapping with 'turns'")
    return _SCENARIO.validate_python(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeenRequest:
    """A request the server answered.

    ``turn`` is the index of the scenario turn that answered it (``None`` for injected faults, the
    fallback, unmatched requests and other endpoints). ``headers`` holds the recorded headers
    only; the API key itself is never recorded, only the header that carried it. ``text``,
    ``tool_results`` and ``last_user_text`` are read from the body by its wire format.
    """

    api: Api
    method: str
    path: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    api_key_header: Literal["x-api-key", "authorization"] | None = None
    status: int = 200
    turn: int | None = None
    text: str = field(default="", repr=False)
    """All the conversation's text: system prompt, messages, tool calls and tool results."""
    tool_results: str = field(default="", repr=False)
    """The text of every tool result in the conversation."""
    last_user_text: str = field(default="", repr=False)
    """The text of the last user message, which usually names the task."""

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def api_key_present(self) -> bool:
        return self.api_key_header is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Injected:
    error: ErrorReply
    api: Api | None


class Script:
    """Turns with their uses left, injected faults, and the requests answered so far.

    Thread-safe: the server answers each request on its own thread, holding :attr:`lock` from
    choosing a reply to recording the request, so the record's order is the order turns were used.
    """

    def __init__(
        self,
        turns: Iterable[Turn | Reply | Mapping[str, Any]] = (),
        *,
        fallback: Reply | Mapping[str, Any] | None = None,
    ) -> None:
        self.fallback = (
            fallback if not isinstance(fallback, Mapping) else _REPLY.validate_python(fallback)
        )
        self.lock = threading.Lock()
        self._turns: list[Turn] = []
        self._uses_left: list[int] = []
        self._injected: list[_Injected] = []
        self._requests: list[SeenRequest] = []
        self._unmatched: list[SeenRequest] = []
        self.add(*turns)

    def add(self, *turns: Turn | Reply | Mapping[str, Any]) -> None:
        """Append turns to the script, after the ones already there; a bare :class:`Reply` is a
        turn that answers the next model request of either API."""
        parsed = [
            turn
            if isinstance(turn, Turn)
            else Turn(reply=turn)
            if isinstance(turn, Reply)
            else _TURN.validate_python(turn)
            for turn in turns
        ]
        with self.lock:
            self._turns.extend(parsed)
            self._uses_left.extend(turn.times for turn in parsed)

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: float | None = None,
        api: Api | None = None,
        *,
        message: str = "",
    ) -> None:
        """Answer the next ``n`` model requests (of ``api``, or any) with ``status``.

        The script is untouched: the requests after them get the turns they would have got.
        """
        error = ErrorReply(status=status, retry_after=retry_after, message=message)
        with self.lock:
            self._injected.extend([_Injected(error=error, api=api)] * n)

    def clear(self) -> None:
        """Drop the turns and injected faults not used yet (the fallback stays)."""
        with self.lock:
            self._uses_left = [0] * len(self._uses_left)
            self._injected.clear()

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request answered, in order."""
        with self.lock:
            return list(self._requests)

    @property
    def unmatched(self) -> list[SeenRequest]:
        """Model requests no turn matched, without a fallback; each was answered with a 500."""
        with self.lock:
            return list(self._unmatched)

    @property
    def pending(self) -> list[Turn]:
        """Turns with uses left, not counting those scripted for ever."""
        with self.lock:
            return [t for t, left in zip(self._turns, self._uses_left, strict=True) if left > 0]

    # -- called with the lock held ----------------------------------------------------------

    def _take(self, request: SeenRequest) -> tuple[Reply | None, int | None]:
        """An injected fault, else the first matching turn (used up) and its index, else the
        fallback; ``None`` when nothing answers."""
        for injected in self._injected:
            if injected.api in (None, request.api):
                self._injected.remove(injected)
                return Reply(error=injected.error), None
        for index, turn in enumerate(self._turns):
            left = self._uses_left[index]
            if left != 0 and turn.matches(request):
                self._uses_left[index] = left - 1 if left > 0 else left
                return turn.reply, index
        return self.fallback, None

    def _record(self, request: SeenRequest, *, unmatched: bool) -> None:
        self._requests.append(request)
        if unmatched:
            self._unmatched.append(request)

    def _unmatched_error(self, request: SeenRequest) -> ErrorReply:
        words = " ".join(request.last_user_text.split())
        shown = words if len(words) <= 200 else words[:200] + "..."
        pending = sum(1 for left in self._uses_left if left > 0)
        message = (
            f"blitz ModelServer: no scripted turn matches this {request.api} request "
            f"(last user text: {shown!r}; {pending} turns pending)"
        )
        # Not retried: the script is wrong, and asking again will not fix it.
        return ErrorReply(status=500, message=message, should_retry=False)
