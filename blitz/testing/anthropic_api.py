"""Anthropic's Messages API (``POST /v1/messages``) for the scripted model server.

Claude Code and the Anthropic SDK (and pydantic-ai's Anthropic model) talk this API. Text becomes
a ``text`` block, tool calls ``tool_use`` blocks, usage Anthropic's usage object with the cache
reads and writes apart. A streaming request gets the events Anthropic sends, in its order::

    message_start, ping,
    per block: content_block_start, content_block_delta..., content_block_stop,
    message_delta, message_stop

An error is Anthropic's error body (``{"type": "error", "error": {"type", "message"},
"request_id"}``) with the type Anthropic gives the status; one scripted with ``after_events``
arrives as an ``error`` event mid-stream, the way Anthropic reports an overload. Also here:
``POST /v1/messages/count_tokens`` and the Anthropic shape of ``GET /v1/models``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from blitz.testing.turns import Api, ErrorReply, Reply, SeenRequest, Usage
from blitz.testing.wire import (
    Conversation,
    NewId,
    error_message,
    last_user_text,
    messages,
    pieces,
    sse,
    texts,
)

ERROR_TYPES = {
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
"""Anthropic's error type by status (other statuses: ``api_error`` from 500 up, else
``invalid_request_error``)."""

API: Api = "anthropic"
ID_HEADER = "request-id"
BROKEN_BODY = b'{"id": "broken", "content": ['
BROKEN_EVENT = b'event: message_start\ndata: {"id": "broken", "content": [\n\n'


def read(body: Mapping[str, Any]) -> Conversation:
    """The system prompt and messages, the ``tool_result`` blocks, and the last user text."""
    results: list[str] = []
    for message in messages(body):
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, Mapping) and block.get("type") == "tool_result":
                    results.extend(texts(block.get("content")))
    return Conversation(
        text="\n".join(texts([body.get("system"), body.get("messages")])),
        tool_results="\n".join(results),
        last_user_text=last_user_text(body),
    )


def usage_body(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input,
        "output_tokens": usage.output,
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cached,
    }


def payload(request: SeenRequest, reply: Reply, new_id: NewId) -> dict[str, Any]:
    """The whole message ``reply`` scripts: what a plain request gets."""
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
        "model": str(request.body.get("model") or "blitz-scripted"),
        "content": content,
        "stop_reason": "max_tokens"
        if reply.at_limit
        else "tool_use"
        if reply.tool_calls
        else "end_turn",
        "stop_sequence": None,
        "usage": usage_body(reply.usage),
    }


def events(request: SeenRequest, message: Mapping[str, Any]) -> list[bytes]:
    """The SSE events Anthropic streams for ``message``, in its order."""
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events = [
        sse({"type": "message_start", "message": start}, "message_start"),
        sse({"type": "ping"}, "ping"),
    ]
    for index, block in enumerate(message["content"]):
        opened: dict[str, Any]
        if block["type"] == "text":
            opened = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
        else:
            opened = {**block, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in pieces(json.dumps(block["input"]))
            ]
        start_block = {"type": "content_block_start", "index": index, "content_block": opened}
        events.append(sse(start_block, "content_block_start"))
        for delta in deltas:
            data = {"type": "content_block_delta", "index": index, "delta": delta}
            events.append(sse(data, "content_block_delta"))
        events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    ending = {"type": "message_delta", "delta": stop, "usage": message["usage"]}
    events.append(sse(ending, "message_delta"))
    events.append(sse({"type": "message_stop"}, "message_stop"))
    return events


def error_body(error: ErrorReply, request_id: str) -> dict[str, Any]:
    fallback = "api_error" if error.status >= 500 else "invalid_request_error"
    kind = error.type or ERROR_TYPES.get(error.status, fallback)
    return {
        "type": "error",
        "error": {"type": kind, "message": error_message(error)},
        "request_id": request_id,
    }


def fail_midway(
    message: Mapping[str, Any], events: list[bytes], error: ErrorReply, request_id: str
) -> list[bytes]:
    return [*events[: error.after_events], sse(error_body(error, request_id), "error")]


def count_tokens_body(request: SeenRequest) -> dict[str, int]:
    """``POST /v1/messages/count_tokens``: about four characters a token."""
    return {"input_tokens": max(1, len(request.text) // 4)}


def models_body(models: Sequence[str]) -> dict[str, Any]:
    """``GET /v1/models`` as Anthropic lists models."""
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
