"""A scripted model provider on 127.0.0.1 that speaks Anthropic's and OpenAI's wire formats.

The real SDK clients (and pydantic-ai, and CLIs such as Claude Code) talk to it over sockets, so
tests exercise their request building, SSE parsing, error mapping and retries for real::

    scenario = [
        {"match": "task-1", "reply": {"tool_calls": [{"name": "read", "input": {"path": "a.py"}}]}},
        {"match_tool_result": "def main", "reply": {"text": "Done.", "usage": {"cached": 80}}},
    ]
    with ModelServer(scenario) as server:
        client = anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="k")
        ...
        assert not server.unmatched and not server.pending

Endpoints: ``POST /v1/messages`` (plain and ``stream: true``), ``POST /v1/messages/count_tokens``,
``POST /v1/chat/completions`` (plain and streamed, with ``stream_options.include_usage``),
``POST /v1/responses`` (OpenAI's Responses API, which the Codex CLI speaks: see
:mod:`blitz.testing.responses_api`) and ``GET /v1/models`` (Anthropic's list shape when the
request carries ``anthropic-version``).

A scenario is an ordered list of turns (Python data, or a YAML/JSON file holding the list or
``{turns: [...]}``). Each model request is answered by the first turn with uses left whose
conditions all hold, so concurrent agents get their own turns by matching on their task ids:

* ``match``: a substring of the conversation (system prompt, messages, tool calls and results);
  ``match_tool_result``: a substring of the tool results only; ``api``: ``anthropic``, ``openai``
  or ``any`` (the default); ``times``: uses (default 1, ``-1`` for ever).
* ``reply``: ``text``, ``json`` (any value, sent as its JSON text, for structured output) and/or
  ``tool_calls: [{name, input, id?}]``; ``usage: {input, output, cached, cache_write}``; or a
  fault: ``error: {status, retry_after?, message?, should_retry?, after_events?}``,
  ``malformed: true`` (a body that is not JSON) or ``cut_stream_after: N`` (drop the connection
  after N SSE events; at once for a non-streaming request). ``delay: seconds`` waits before any
  answer.

A request no turn matches gets a 500 naming its last user text, with ``x-should-retry: false``, and
is listed in :attr:`ModelServer.unmatched`, so a test whose script is off fails loudly. API keys
are compared when the server is given one, and recorded only as present or not.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import ConfigDict, TypeAdapter

Api = Literal["anthropic", "openai"]

RESPONSES = "/v1/responses"
"""OpenAI's Responses API, rendered by :mod:`blitz.testing.responses_api`."""

DEFAULT_MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "gpt-5", "gpt-5-mini")

# Headers worth asserting on. Credentials are never recorded, only whether one was sent.
RECORDED_HEADERS = (
    "anthropic-beta",
    "anthropic-version",
    "content-type",
    "user-agent",
    "x-stainless-helper-method",
    "x-stainless-retry-count",
    "x-stainless-timeout",
)

_PIECE = 16  # characters per streamed delta, so every stream has several
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}
_MESSAGES = {
    400: "Invalid request.",
    401: "Invalid API key.",
    403: "Permission denied.",
    404: "Not found.",
    429: "Rate limit exceeded.",
    500: "Internal server error.",
    503: "Service unavailable.",
    529: "Overloaded",
}


# -- the scenario ---------------------------------------------------------------------------------


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

    ``should_retry`` sets the ``x-should-retry`` header the SDKs obey. With ``after_events`` a
    streaming request first gets a 200 and that many SSE events, then an ``error`` event, as
    Anthropic reports an overload mid-stream; a non-streaming request gets the status as usual.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    status: int
    retry_after: float | None = None
    message: str = ""
    should_retry: bool | None = None
    after_events: int | None = None


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
    delay: float = 0.0

    def __post_init__(self) -> None:
        has_content = self.text is not None or self.json is not None or bool(self.tool_calls)
        if self.text is not None and self.json is not None:
            raise ValueError("a reply has either text or json, not both")
        cuts = self.cut_stream_after is not None
        if self.error is not None and (has_content or self.malformed or cuts):
            raise ValueError("an error reply has no content, malformed or cut_stream_after")
        if not (has_content or self.error or self.malformed or cuts):
            raise ValueError(
                "a reply needs text, json, tool_calls, error, malformed or cut_stream_after"
            )
        if self.delay < 0 or (self.cut_stream_after or 0) < 0:
            raise ValueError("delay and cut_stream_after cannot be negative")

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
_SCENARIO = TypeAdapter(list[Turn])


def load_scenario(path: str | os.PathLike[str]) -> list[Turn]:
    """Read turns from a YAML or JSON file: a list of turns, or a mapping with ``turns``."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, Mapping):
        data = data.get("turns")
    if not isinstance(data, list):
        raise ValueError(f"{path}: a scenario is a list of turns, or a mapping with 'turns'")
    return _SCENARIO.validate_python(data)


# -- what was asked -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SeenRequest:
    """A request the server answered.

    ``turn`` is the index of the scenario turn that answered it (``None`` for injected faults,
    unmatched requests and other endpoints). ``headers`` holds :data:`RECORDED_HEADERS` only.
    """

    api: Api
    method: str
    path: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    api_key_present: bool
    status: int = 200
    turn: int | None = None

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def text(self) -> str:
        """All the conversation's text: system prompt, messages, tool calls and tool results."""
        if self.path == RESPONSES:
            from blitz.testing import responses_api

            return responses_api.conversation_text(self.body)
        return "\n".join(_texts([self.body.get("system"), self.body.get("messages")]))

    @property
    def tool_results(self) -> str:
        """The text of every tool result in the conversation."""
        if self.path == RESPONSES:
            from blitz.testing import responses_api

            return responses_api.tool_results(self.body)
        found: list[str] = []
        for message in _messages(self.body):
            if message.get("role") == "tool":  # OpenAI
                found.extend(_texts(message.get("content")))
            content = message.get("content")
            if isinstance(content, list):  # Anthropic
                for block in content:
                    if isinstance(block, Mapping) and block.get("type") == "tool_result":
                        found.extend(_texts(block.get("content")))
        return "\n".join(found)

    @property
    def last_user_text(self) -> str:
        """The text of the last user message, which usually names the task."""
        if self.path == RESPONSES:
            from blitz.testing import responses_api

            return responses_api.last_user_text(self.body)
        for message in reversed(_messages(self.body)):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [
                    block["text"]
                    for block in content
                    if isinstance(block, Mapping) and isinstance(block.get("text"), str)
                ]
                if texts:
                    return "\n".join(texts)
        return ""


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [message for message in messages if isinstance(message, Mapping)]


def _texts(value: Any) -> Iterator[str]:
    """The human-readable strings in a system prompt or message list, in order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, Mapping):
        for key in ("text", "content", "tool_calls", "function", "arguments"):
            yield from _texts(value.get(key))
        if "input" in value:  # an Anthropic tool_use block
            yield json.dumps(value["input"])


# -- the wire -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Answer:
    """What the handler sends: a whole body, or SSE events sent chunked."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: Sequence[bytes] | None = None
    delay: float = 0.0
    cut: bool = False  # close the connection early: before any answer, or mid-stream


def _json_answer(status: int, payload: Any, headers: Mapping[str, str]) -> _Answer:
    return _Answer(
        status=status,
        headers={"Content-Type": "application/json", **headers},
        body=json.dumps(payload).encode(),
    )


def _sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "").encode() + f"data: {text}\n\n".encode()


def _pieces(text: str) -> list[str]:
    return [text[i : i + _PIECE] for i in range(0, len(text), _PIECE)]


def _anthropic_usage(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input,
        "output_tokens": usage.output,
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cached,
    }


def _anthropic_message(reply: Reply, model: str, new_id: Callable[[str], str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.content is not None:
        content.append({"type": "text", "text": reply.content})
    for call in reply.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": call.id or new_id("toolu_"),
                "name": call.name,
                "input": dict(call.input),
            }
        )
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(reply.usage),
    }


def _anthropic_events(message: Mapping[str, Any]) -> list[bytes]:
    """The SSE events Anthropic streams for ``message``, in its order."""
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events = [
        _sse({"type": "message_start", "message": start}, "message_start"),
        _sse({"type": "ping"}, "ping"),
    ]
    for index, block in enumerate(message["content"]):
        opened: dict[str, Any]
        if block["type"] == "text":
            opened = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        else:
            opened = {**block, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in _pieces(json.dumps(block["input"]))
            ]
        events.append(
            _sse(
                {"type": "content_block_start", "index": index, "content_block": opened},
                "content_block_start",
            )
        )
        for delta in deltas:
            events.append(
                _sse(
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    "content_block_delta",
                )
            )
        events.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(
        _sse(
            {"type": "message_delta", "delta": stop, "usage": message["usage"]},
            "message_delta",
        )
    )
    events.append(_sse({"type": "message_stop"}, "message_stop"))
    return events


def _openai_usage(usage: Usage) -> dict[str, Any]:
    prompt = usage.input + usage.cached + usage.cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _openai_completion(reply: Reply, model: str, new_id: Callable[[str], str]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or new_id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.input)},
            }
            for call in reply.tool_calls
        ]
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": _openai_usage(reply.usage),
        "service_tier": "default",
        "system_fingerprint": "fp_blitz",
    }


def _openai_events(completion: Mapping[str, Any], include_usage: bool) -> list[bytes]:
    """The SSE chunks OpenAI streams for ``completion``, ending with ``[DONE]``."""
    base = {key: completion[key] for key in ("id", "created", "model", "service_tier")}
    base |= {"object": "chat.completion.chunk", "system_fingerprint": "fp_blitz"}
    if include_usage:
        base["usage"] = None
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: Mapping[str, Any], finish_reason: str | None = None) -> bytes:
        parts = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        return _sse({**base, "choices": parts})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": p}) for p in _pieces(message["content"] or "")]
    for index, call in enumerate(message.get("tool_calls", [])):
        function = call["function"]
        opened = {"name": function["name"], "arguments": ""}
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {"index": index, "id": call["id"], "type": "function", "function": opened}
                    ]
                }
            )
        )
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
            for p in _pieces(function["arguments"])
        ]
    events.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        events.append(_sse({**base, "choices": [], "usage": completion["usage"]}))
    events.append(_sse("[DONE]"))
    return events


def _error_body(api: Api, status: int, message: str, request_id: str) -> dict[str, Any]:
    message = message or _MESSAGES.get(status, "Error.")
    if api == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }
    kind, code = _OPENAI_ERRORS.get(
        status, ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    )
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _models_body(api: Api, models: Sequence[str]) -> dict[str, Any]:
    if api == "anthropic":
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": name,
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            for name in models
        ]
        first, last = (models[0], models[-1]) if models else (None, None)
        return {"data": data, "has_more": False, "first_id": first, "last_id": last}
    listed = [
        {"id": name, "object": "model", "created": 1735689600, "owned_by": "blitz"}
        for name in models
    ]
    return {"object": "list", "data": listed}


def _id_header(api: Api, request_id: str) -> dict[str, str]:
    return {"request-id" if api == "anthropic" else "x-request-id": request_id}


def _error(
    api: Api, status: int, message: str, request_id: str, headers: Mapping[str, str] | None = None
) -> _Answer:
    payload = _error_body(api, status, message, request_id)
    return _json_answer(status, payload, {**_id_header(api, request_id), **(headers or {})})


def _render(
    request: SeenRequest, reply: Reply, *, request_id: str, new_id: Callable[[str], str]
) -> _Answer:
    """The answer ``reply`` scripts for ``request``, in the request's API and mode."""
    api = request.api
    fault = reply.error
    # A streaming request can get its error mid-stream; it is then rendered after the events.
    error_after = fault.after_events if fault is not None and request.stream else None
    if fault is not None and error_after is None:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        if fault.should_retry is not None:
            headers["x-should-retry"] = "true" if fault.should_retry else "false"
        return replace(
            _error(api, fault.status, fault.message, request_id, headers), delay=reply.delay
        )
    ids = _id_header(api, request_id)
    stream_headers = {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        **ids,
    }
    if reply.malformed:
        if request.stream:
            event = b"event: message_start\n" if api == "anthropic" else b""
            broken = [event + b'data: {"id": "broken", "content": [\n\n']
            return _Answer(headers=stream_headers, events=broken, delay=reply.delay)
        return _Answer(
            headers={"Content-Type": "application/json", **ids},
            body=b'{"id": "broken", "content": [',
            delay=reply.delay,
        )
    model = str(request.body.get("model") or "blitz-scripted")
    if api == "anthropic":
        payload = _anthropic_message(reply, model, new_id)
    else:
        payload = _openai_completion(reply, model, new_id)
    if not request.stream:
        # Cutting a plain request drops the connection before any answer.
        answer = _json_answer(200, payload, ids)
        return replace(answer, delay=reply.delay, cut=reply.cut_stream_after is not None)
    if api == "anthropic":
        events = _anthropic_events(payload)
    else:
        options = request.body.get("stream_options") or {}
        events = _openai_events(payload, bool(options.get("include_usage")))
    if fault is not None and error_after is not None:
        body = _error_body(api, fault.status, fault.message, request_id)
        failure = _sse(body, "error" if api == "anthropic" else None)
        events = [*events[:error_after], failure]
    cut = reply.cut_stream_after
    if cut is not None:
        events = events[:cut]
    return _Answer(headers=stream_headers, events=events, delay=reply.delay, cut=cut is not None)


# -- the server -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Injected:
    error: ErrorReply
    api: Api | None


class ModelServer:
    """A scripted Anthropic + OpenAI provider on ``127.0.0.1`` at a free port.

    See the module docstring for the scenario format. ``api_key``, when given, is required of
    every request (401 otherwise); ``models`` is what ``GET /v1/models`` lists.
    """

    def __init__(
        self,
        turns: Iterable[Turn | Mapping[str, Any]] = (),
        *,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
    ) -> None:
        self.api_key = api_key
        self.models = tuple(models)
        self._turns: list[Turn] = []
        self._uses_left: list[int] = []
        self._injected: list[_Injected] = []
        self._requests: list[SeenRequest] = []
        self._unmatched: list[SeenRequest] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add(*turns)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> ModelServer:
        """A server scripted by a YAML or JSON scenario file; ``options`` as for the constructor."""
        return cls(load_scenario(path), **options)

    # -- scripting and inspection -----------------------------------------------------------

    def add(self, *turns: Turn | Mapping[str, Any]) -> None:
        """Append turns to the script, after the ones already there."""
        parsed = [t if isinstance(t, Turn) else _TURN.validate_python(t) for t in turns]
        with self._lock:
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
        with self._lock:
            self._injected.extend([_Injected(error=error, api=api)] * n)

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request answered, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def unmatched(self) -> list[SeenRequest]:
        """Model requests no turn matched; each was answered with a 500."""
        with self._lock:
            return list(self._unmatched)

    @property
    def pending(self) -> list[Turn]:
        """Turns with uses left, not counting those scripted for ever."""
        with self._lock:
            return [t for t, left in zip(self._turns, self._uses_left, strict=True) if left > 0]

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, without ``/v1``."""
        if self._server is None:
            raise RuntimeError("ModelServer is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def anthropic_base_url(self) -> str:
        """The base URL for Anthropic clients (and ``ANTHROPIC_BASE_URL``)."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """The base URL for OpenAI clients, which add paths after ``/v1``."""
        return f"{self.url}/v1"

    def start(self) -> ModelServer:
        server = self

        class Handler(_Handler):
            model_server = server

        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval makes stop() quick; shutdown waits for the next poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="model-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed answers still waiting are dropped."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- answering, called from the server's threads ----------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}blitz{next(self._ids):06d}"

    def _handle(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> _Answer:
        """Answer one request and record it. ``headers`` have lower-case names."""
        path = urlsplit(target).path.rstrip("/")
        is_anthropic = path.startswith("/v1/messages") or "anthropic-version" in headers
        api: Api = "anthropic" if is_anthropic else "openai"
        authorization = headers.get("authorization", "")
        key = headers.get("x-api-key") or authorization.removeprefix("Bearer ").strip()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        request = SeenRequest(
            api=api,
            method=method,
            path=path,
            body=body if isinstance(body, dict) else {},
            headers={name: headers[name] for name in RECORDED_HEADERS if name in headers},
            api_key_present=bool(key),
        )
        request_id = self._new_id("req_")
        turn: int | None = None
        unmatched = False
        with self._lock:
            if self.api_key is not None and key != self.api_key:
                answer = _error(api, 401, "", request_id)
            elif not isinstance(body, dict):
                answer = _error(api, 400, "The request body is not a JSON object.", request_id)
            elif (method, path) == ("GET", "/v1/models"):
                payload: Any = _models_body(api, self.models)
                answer = _json_answer(200, payload, _id_header(api, request_id))
            elif (method, path) == ("POST", "/v1/messages/count_tokens"):
                payload = {"input_tokens": max(1, len(request.text) // 4)}
                answer = _json_answer(200, payload, _id_header(api, request_id))
            elif method == "POST" and path in ("/v1/messages", "/v1/chat/completions", RESPONSES):
                reply, turn = self._reply_for(request)
                if reply is None:
                    unmatched = True
                    answer = self._unmatched_answer(request, request_id)
                elif path == RESPONSES:
                    from blitz.testing import responses_api

                    answer = responses_api.render(
                        request, reply, request_id=request_id, new_id=self._new_id
                    )
                else:
                    answer = _render(request, reply, request_id=request_id, new_id=self._new_id)
            else:
                answer = _error(api, 404, f"No route for {method} {path}.", request_id)
            seen = replace(request, status=answer.status, turn=turn)
            self._requests.append(seen)
            if unmatched:
                self._unmatched.append(seen)
        return answer

    def _reply_for(self, request: SeenRequest) -> tuple[Reply | None, int | None]:
        """An injected fault, else the first matching turn (used up) and its index."""
        for injected in self._injected:
            if injected.api in (None, request.api):
                self._injected.remove(injected)
                return Reply(error=injected.error), None
        for index, turn in enumerate(self._turns):
            left = self._uses_left[index]
            if left != 0 and turn.matches(request):
                self._uses_left[index] = left - 1 if left > 0 else left
                return turn.reply, index
        return None, None

    def _unmatched_answer(self, request: SeenRequest, request_id: str) -> _Answer:
        words = " ".join(request.last_user_text.split())
        shown = words if len(words) <= 200 else words[:200] + "..."
        pending = sum(1 for left in self._uses_left if left > 0)
        message = (
            f"blitz ModelServer: no scripted turn matches this {request.api} request "
            f"(last user text: {shown!r}; {pending} turns pending)"
        )
        # Not retried: the script is wrong, and asking again will not fix it.
        return _error(request.api, 500, message, request_id, {"x-should-retry": "false"})


class _Handler(BaseHTTPRequestHandler):
    model_server: ModelServer
    server_version = "blitz-model-server"
    # HTTP/1.1 so streams are chunked: a cut stream then reads as truncated, not as complete.
    protocol_version = "HTTP/1.1"

    def handle(self) -> None:
        # The client may hang up at any time, say closing an idle keep-alive connection.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.model_server._handle(self.command, self.path, headers, raw)
        if answer.delay and self.model_server._stopping.wait(answer.delay):
            self.close_connection = True
            return
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        if answer.cut and answer.events is None:
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.events is None:
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in answer.events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        if answer.cut:
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read :attr:`ModelServer.requests` instead."""
