"""What every wire format of the scripted model server shares.

An :class:`Answer` is what the HTTP handler sends: a whole body, or chunks (SSE events) sent with
chunked transfer encoding. A :class:`WireFormat` is one API's pieces: how it reads a request's
conversation, how it writes a reply, a stream, an error, and what a broken body looks like.
:func:`render` is the one algorithm that turns a scripted :class:`~blitz.testing.turns.Reply` into
an :class:`Answer` given those pieces, faults included, so the Anthropic Messages API, OpenAI's
Chat Completions and OpenAI's Responses API all fail the same ways.

Chat-style message lists (Anthropic's and Chat Completions') are read here too: both APIs keep
the conversation as ``messages`` of ``role`` and ``content``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from blitz.testing.turns import Api, ErrorReply, Reply, SeenRequest

NewId = Callable[[str], str]
"""Makes a fresh id with the given prefix (``msg_``, ``call_``...)."""

PIECE = 16
"""Characters per streamed delta, so every stream has several."""

STATUS_MESSAGES = {
    400: "Invalid request.",
    401: "Invalid API key.",
    403: "Permission denied.",
    404: "Not found.",
    429: "Rate limit exceeded.",
    500: "Internal server error.",
    503: "Service unavailable.",
    529: "Overloaded",
}
"""The message of an error scripted without one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What the handler sends: a whole ``body``, or ``chunks`` sent chunked.

    ``cut`` closes the connection early: before any answer when there are no chunks, else after
    the chunks without the terminating one, so the client reads a truncated body. ``chunk_delay``
    is the pause before each chunk after the first.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: Sequence[bytes] | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    cut: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """What the script matches on, read from a request body."""

    text: str = ""
    tool_results: str = ""
    last_user_text: str = ""


class WireFormat(Protocol):
    """One API's pieces for :func:`render`. Each wire module is one: :mod:`anthropic_api`,
    :mod:`openai_api` and :mod:`responses_api` define these names at module level."""

    API: Api
    ID_HEADER: str  # the response header carrying the request id
    BROKEN_BODY: bytes  # a JSON body cut short
    BROKEN_EVENT: bytes  # an SSE event whose data is not JSON

    def read(self, body: Mapping[str, Any], /) -> Conversation:
        """What the script matches on in a request body."""

    def payload(self, request: SeenRequest, reply: Reply, new_id: NewId, /) -> dict[str, Any]:
        """The whole response ``reply`` scripts: what a plain request gets."""

    def events(self, request: SeenRequest, payload: Mapping[str, Any], /) -> list[bytes]:
        """The SSE events that stream ``payload``, in the API's order."""

    def fail_midway(
        self, payload: Mapping[str, Any], events: list[bytes], error: ErrorReply, request_id: str, /
    ) -> list[bytes]:
        """``events`` cut after ``error.after_events`` and ended with the API's failure."""

    def error_body(self, error: ErrorReply, request_id: str, /) -> dict[str, Any]:
        """The API's error body for ``error``."""


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; ``data`` is JSON-encoded unless it is a string."""
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "").encode() + f"data: {text}\n\n".encode()


def pieces(text: str) -> list[str]:
    """``text`` in streamed deltas of :data:`PIECE` characters."""
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)]


def json_answer(status: int, payload: Any, headers: Mapping[str, str]) -> Answer:
    return Answer(
        status=status,
        headers={"Content-Type": "application/json", **headers},
        body=json.dumps(payload).encode(),
    )


def error_message(error: ErrorReply) -> str:
    """The scripted message, or the usual one for the status."""
    return error.message or STATUS_MESSAGES.get(error.status, "Error.")


def error_answer(wire: WireFormat, error: ErrorReply, request_id: str) -> Answer:
    """``error`` in ``wire``'s error body (or the scripted raw body), with its headers."""
    headers = {wire.ID_HEADER: request_id, **error.response_headers()}
    if error.body is not None:
        return Answer(
            status=error.status,
            headers={"Content-Type": "text/html; charset=utf-8", **headers},
            body=error.body.encode(),
        )
    return json_answer(error.status, wire.error_body(error, request_id), headers)


def render(
    wire: WireFormat, request: SeenRequest, reply: Reply, *, request_id: str, new_id: NewId
) -> Answer:
    """The answer ``reply`` scripts for ``request``, in ``wire``'s format and the request's mode."""
    fault = reply.error
    # A streaming request can get its error mid-stream; it is then rendered after the events.
    midway = (
        fault if fault is not None and fault.after_events is not None and request.stream else None
    )
    if fault is not None and midway is None:
        return replace(error_answer(wire, fault, request_id), delay=reply.delay)
    ids = {wire.ID_HEADER: request_id}
    stream_headers = {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        **ids,
    }
    answer: Answer
    if reply.malformed:
        if request.stream:
            answer = Answer(headers=stream_headers, chunks=[wire.BROKEN_EVENT])
        else:
            answer = Answer(
                headers={"Content-Type": "application/json", **ids}, body=wire.BROKEN_BODY
            )
    elif not request.stream:
        # Cutting a plain request after N events drops the connection before any answer.
        answer = replace(
            json_answer(200, wire.payload(request, reply, new_id), ids),
            cut=reply.cut_stream_after is not None,
        )
    else:
        payload = wire.payload(request, reply, new_id)
        events = wire.events(request, payload)
        if midway is not None:
            events = wire.fail_midway(payload, events, midway, request_id)
        cut = reply.cut_stream_after
        if cut is not None:
            events = events[:cut]
        answer = Answer(headers=stream_headers, chunks=events, cut=cut is not None)
    if reply.cut_midway:
        whole = answer.body if answer.chunks is None else b"".join(answer.chunks)
        answer = replace(answer, chunks=[whole[: max(1, len(whole) // 2)]], cut=True)
    return replace(answer, delay=reply.delay, chunk_delay=reply.chunk_delay)


# -- chat-style message lists -----------------------------------------------------------------


def messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The body's ``messages`` that are objects."""
    found = body.get("messages")
    if not isinstance(found, list):
        return []
    return [message for message in found if isinstance(message, Mapping)]


def texts(value: Any) -> Iterator[str]:
    """The human-readable strings in a system prompt or message list, in order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)
    elif isinstance(value, Mapping):
        for key in ("text", "content", "tool_calls", "function", "arguments"):
            yield from texts(value.get(key))
        if "input" in value:  # an Anthropic tool_use block
            yield json.dumps(value["input"])


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message in ``messages``."""
    for message in reversed(messages(body)):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            found = [
                block["text"]
                for block in content
                if isinstance(block, Mapping) and isinstance(block.get("text"), str)
            ]
            if found:
                return "\n".join(found)
    return ""
