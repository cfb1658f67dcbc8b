"""OpenAI's Chat Completions API (``POST /v1/chat/completions``) for the scripted model server.

The OpenAI SDK's chat client and pydantic-ai's OpenAI-compatible models (Ollama, vLLM, llama.cpp,
LM Studio) talk this API. Text becomes the message's ``content``, tool calls its ``tool_calls``,
usage the ``usage`` object, whose ``prompt_tokens`` counts cached input too. A streaming request
gets ``chat.completion.chunk`` events ending with ``data: [DONE]``, and a usage chunk before it
when the request asks for one (``stream_options.include_usage``).

An error is OpenAI's error body (``{"error": {"message", "type", "param", "code"}}``), which the
Responses API shares; one scripted with ``after_events`` arrives as that body in a ``data:`` event
mid-stream. Also here: the OpenAI shape of ``GET /v1/models``.
"""

from __future__ import annotations

import json
import time
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

ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}
"""OpenAI's error type and code by status (other statuses: ``server_error`` from 500 up, else
``invalid_request_error``, without a code)."""

API: Api = "openai"
ID_HEADER = "x-request-id"
BROKEN_BODY = b'{"id": "broken", "content": ['
BROKEN_EVENT = b'data: {"id": "broken", "content": [\n\n'


def read(body: Mapping[str, Any]) -> Conversation:
    """The messages (the system prompt is one), the ``tool`` messages, and the last user text."""
    results = [
        text
        for message in messages(body)
        if message.get("role") == "tool"
        for text in texts(message.get("content"))
    ]
    return Conversation(
        text="\n".join(texts(body.get("messages"))),
        tool_results="\n".join(results),
        last_user_text=last_user_text(body),
    )


def usage_body(usage: Usage) -> dict[str, Any]:
    prompt = usage.input + usage.cached + usage.cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def payload(request: SeenRequest, reply: Reply, new_id: NewId) -> dict[str, Any]:
    """The whole completion ``reply`` scripts: what a plain request gets."""
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
        "model": str(request.body.get("model") or "blitz-scripted"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "length"
                if reply.at_limit
                else "tool_calls"
                if reply.tool_calls
                else "stop",
            }
        ],
        "usage": usage_body(reply.usage),
        "service_tier": "default",
        "system_fingerprint": "fp_blitz",
    }


def events(request: SeenRequest, completion: Mapping[str, Any]) -> list[bytes]:
    """The SSE chunks OpenAI streams for ``completion``, ending with ``[DONE]``."""
    include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
    base = {key: completion[key] for key in ("id", "created", "model", "service_tier")}
    base |= {"object": "chat.completion.chunk", "system_fingerprint": "fp_blitz"}
    if include_usage:
        base["usage"] = None
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: Mapping[str, Any], finish_reason: str | None = None) -> bytes:
        parts = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        return sse({**base, "choices": parts})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": p}) for p in pieces(message["content"] or "")]
    for index, call in enumerate(message.get("tool_calls", [])):
        function = call["function"]
        opened = {"name": function["name"], "arguments": ""}
        first = {"index": index, "id": call["id"], "type": "function", "function": opened}
        events.append(chunk({"tool_calls": [first]}))
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
            for p in pieces(function["arguments"])
        ]
    events.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        events.append(sse({**base, "choices": [], "usage": completion["usage"]}))
    events.append(sse("[DONE]"))
    return events


def error_kind(error: ErrorReply) -> tuple[str, str | None]:
    """The error's type and code: as scripted, else OpenAI's for the status."""
    if error.type is not None:
        return error.type, error.code
    fallback = ("server_error", None) if error.status >= 500 else ("invalid_request_error", None)
    kind, code = ERROR_KINDS.get(error.status, fallback)
    return kind, error.code if error.code is not None else code


def error_body(error: ErrorReply, request_id: str) -> dict[str, Any]:
    kind, code = error_kind(error)
    return {"error": {"message": error_message(error), "type": kind, "param": None, "code": code}}


def fail_midway(
    completion: Mapping[str, Any], events: list[bytes], error: ErrorReply, request_id: str
) -> list[bytes]:
    return [*events[: error.after_events], sse(error_body(error, request_id))]


def models_body(models: Sequence[str]) -> dict[str, Any]:
    """``GET /v1/models`` as OpenAI lists models."""
    listed = [
        {"id": name, "object": "model", "created": 1735689600, "owned_by": "blitz"}
        for name in models
    ]
    return {"object": "list", "data": listed}
