"""OpenAI's Responses API (``POST /v1/responses``) for the scripted model server.

The Codex CLI talks only this API, so the scripted server renders its replies in it: text becomes
a ``message`` output item, tool calls ``function_call`` items (or ``custom_tool_call`` items for a
freeform tool the request declares with ``"type": "custom"``, such as Codex's ``apply_patch``),
usage the Responses usage object. A streaming request gets the SSE events the API sends, in its
order::

    response.created, response.in_progress,
    per item: response.output_item.added,
              (message) response.content_part.added, response.output_text.delta...,
                        response.output_text.done, response.content_part.done
              (function_call) response.function_call_arguments.delta..., ...arguments.done
              (custom_tool_call) response.custom_tool_call_input.delta..., ...input.done
              response.output_item.done,
    response.completed

Codex acts on ``response.output_item.done`` and ``response.completed`` (and shows the deltas). A
fault scripted with ``after_events`` ends the stream with ``response.failed``, the way the API
reports a response that failed mid-way; errors before any output use the API's error body
(``{"error": {"message", "type", "param", "code"}}``) with the scripted status.

A freeform tool takes raw text, not JSON: script its call as ``{"name": "apply_patch", "input":
{"input": "*** Begin Patch\\n..."}}``; the text of ``input.input`` is sent as the call's input.

The request side is read here too: :func:`read` gives the script's matching what the Chat
Completions and Messages bodies give it, from ``instructions`` and the ``input`` items.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from blitz.testing import openai_api
from blitz.testing.turns import ErrorReply, Reply, SeenRequest, ToolCall, Usage
from blitz.testing.wire import Conversation, NewId, error_message, pieces

_FAILED_CODES = {
    429: "rate_limit_exceeded",
    402: "insufficient_quota",
    503: "server_is_overloaded",
    529: "server_is_overloaded",
}
"""``response.failed`` error codes by the scripted status (other statuses: ``server_error``)."""

API = openai_api.API
ID_HEADER = openai_api.ID_HEADER
BROKEN_BODY = b'{"id": "broken", "output": ['
BROKEN_EVENT = (
    b'event: response.output_item.done\ndata: {"type": "response.output_item.done", [\n\n'
)
error_body = openai_api.error_body
"""Errors before any output use the API's error body, the one Chat Completions uses."""


# -- what was asked -------------------------------------------------------------------------------


def _items(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The request's input items; a plain string input is one user message."""
    value = body.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _content_texts(content: Any) -> Iterator[str]:
    """The text of a message's content: a string, or parts with ``text``."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield part["text"]
            elif isinstance(part, str):
                yield part


def _item_texts(item: Mapping[str, Any]) -> Iterator[str]:
    kind = item.get("type", "message")
    if kind == "message":
        yield from _content_texts(item.get("content"))
    elif kind == "function_call":
        yield f"{item.get('name', '')} {item.get('arguments', '')}"
    elif kind == "custom_tool_call":
        yield f"{item.get('name', '')} {item.get('input', '')}"
    elif kind in ("function_call_output", "custom_tool_call_output"):
        yield from _content_texts(item.get("output"))
    elif kind == "reasoning":
        for part in item.get("summary") or ():
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield part["text"]


def conversation_text(body: Mapping[str, Any]) -> str:
    """All the conversation's text: instructions, messages, tool calls and tool outputs."""
    texts: list[str] = []
    if isinstance(body.get("instructions"), str):
        texts.append(body["instructions"])
    for item in _items(body):
        texts.extend(_item_texts(item))
    return "\n".join(texts)


def tool_results(body: Mapping[str, Any]) -> str:
    """The text of every tool output in the conversation."""
    outputs = (
        item
        for item in _items(body)
        if item.get("type") in ("function_call_output", "custom_tool_call_output")
    )
    return "\n".join(text for item in outputs for text in _item_texts(item))


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message."""
    for item in reversed(_items(body)):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            texts = list(_content_texts(item.get("content")))
            if texts:
                return "\n".join(texts)
    return ""


def read(body: Mapping[str, Any]) -> Conversation:
    return Conversation(
        text=conversation_text(body),
        tool_results=tool_results(body),
        last_user_text=last_user_text(body),
    )


# -- the answer -----------------------------------------------------------------------------------


def usage_body(usage: Usage) -> dict[str, Any]:
    """The Responses usage object; ``input_tokens`` counts cached and cache-written tokens too."""
    total_input = usage.input + usage.cached + usage.cache_write
    return {
        "input_tokens": total_input,
        "input_tokens_details": {
            "cached_tokens": usage.cached,
            "cache_write_tokens": usage.cache_write,
        },
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": total_input + usage.output,
    }


def _custom_tools(body: Mapping[str, Any]) -> set[str]:
    """Names of the freeform tools the request declares (``"type": "custom"``)."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return set()
    return {
        str(tool.get("name"))
        for tool in tools
        if isinstance(tool, Mapping) and tool.get("type") == "custom"
    }


def _freeform_input(call: ToolCall) -> str:
    """The raw text a freeform tool call sends: ``input.input``, or the input as JSON."""
    value = call.input.get("input")
    if isinstance(value, str) and len(call.input) == 1:
        return value
    return json.dumps(dict(call.input))


def _output_items(reply: Reply, custom: set[str], new_id: NewId) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.content is not None:
        text = {"type": "output_text", "text": reply.content, "annotations": [], "logprobs": []}
        items.append(
            {
                "id": new_id("msg_"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [text],
            }
        )
    for call in reply.tool_calls:
        call_id = call.id or new_id("call_")
        if call.name in custom:
            items.append(
                {
                    "id": new_id("ctc_"),
                    "type": "custom_tool_call",
                    "status": "completed",
                    "call_id": call_id,
                    "name": call.name,
                    "input": _freeform_input(call),
                }
            )
        else:
            items.append(
                {
                    "id": new_id("fc_"),
                    "type": "function_call",
                    "status": "completed",
                    "call_id": call_id,
                    "name": call.name,
                    "arguments": json.dumps(dict(call.input)),
                }
            )
    return items


def payload(request: SeenRequest, reply: Reply, new_id: NewId) -> dict[str, Any]:
    """The whole response object ``reply`` scripts: what a plain request gets, and what
    ``response.completed`` carries."""
    body = request.body
    return {
        "id": new_id("resp_"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if reply.at_limit else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if reply.at_limit else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": str(body.get("model") or "blitz-scripted"),
        "output": _output_items(reply, _custom_tools(body), new_id),
        "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": bool(body.get("store", False)),
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") if isinstance(body.get("tools"), list) else [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage_body(reply.usage),
        "metadata": {},
    }


class _Events:
    """SSE events with the API's running ``sequence_number``."""

    def __init__(self) -> None:
        self.encoded: list[bytes] = []

    def add(self, kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(self.encoded), **fields}
        self.encoded.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())


def _item_events(events: _Events, index: int, item: Mapping[str, Any]) -> None:
    """The events that stream one output item, from ``output_item.added`` to ``.done``."""
    kind = item["type"]
    item_id = item["id"]
    at = {"item_id": item_id, "output_index": index}
    if kind == "message":
        events.add(
            "response.output_item.added",
            output_index=index,
            item={**item, "status": "in_progress", "content": []},
        )
        text = item["content"][0]["text"]
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        events.add("response.content_part.added", **at, content_index=0, part=part)
        for piece in pieces(text):
            events.add(
                "response.output_text.delta", **at, content_index=0, delta=piece, logprobs=[]
            )
        events.add("response.output_text.done", **at, content_index=0, text=text, logprobs=[])
        events.add("response.content_part.done", **at, content_index=0, part={**part, "text": text})
    elif kind == "function_call":
        events.add(
            "response.output_item.added",
            output_index=index,
            item={**item, "status": "in_progress", "arguments": ""},
        )
        for piece in pieces(item["arguments"]):
            events.add("response.function_call_arguments.delta", **at, delta=piece)
        events.add(
            "response.function_call_arguments.done",
            **at,
            name=item["name"],
            arguments=item["arguments"],
        )
    else:  # custom_tool_call
        events.add(
            "response.output_item.added",
            output_index=index,
            item={**item, "status": "in_progress", "input": ""},
        )
        for piece in pieces(item["input"]):
            events.add("response.custom_tool_call_input.delta", **at, delta=piece)
        events.add("response.custom_tool_call_input.done", **at, input=item["input"])
    events.add("response.output_item.done", output_index=index, item=item)


def events(request: SeenRequest, response: Mapping[str, Any]) -> list[bytes]:
    """The SSE events the API streams for ``response``, in its order."""
    events = _Events()
    opened = {**response, "status": "in_progress", "output": [], "usage": None}
    events.add("response.created", response=opened)
    events.add("response.in_progress", response=opened)
    for index, item in enumerate(response["output"]):
        _item_events(events, index, item)
    done = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    events.add(done, response=response)
    return events.encoded


def fail_midway(
    response: Mapping[str, Any], events: list[bytes], error: ErrorReply, request_id: str
) -> list[bytes]:
    """The events before ``response.completed``, up to ``after_events`` of them, then
    ``response.failed`` with the API's error code for the scripted status."""
    kept = events[:-1][: error.after_events]
    status = error.status
    code = error.code or _FAILED_CODES.get(
        status, "server_error" if status >= 500 else "invalid_request"
    )
    failed = {
        **response,
        "status": "failed",
        "output": [],
        "usage": None,
        "error": {"code": code, "message": error_message(error)},
    }
    data = {"type": "response.failed", "sequence_number": len(kept), "response": failed}
    return [*kept, f"event: response.failed\ndata: {json.dumps(data)}\n\n".encode()]
