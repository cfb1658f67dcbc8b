"""Tests of blitz.llm, and the scripted provider server they share.

:class:`FakeProvider` is a real HTTP server on 127.0.0.1 that speaks just enough of the Anthropic
Messages API, the OpenAI Responses API and the OpenAI Chat Completions API for a pydantic-ai
agent to run against it, replying from a script: success, an error status with headers and a
body, a reply too slow for the client's timeout, or a body broken off mid-way. It records every
request, so tests can count what really went over the wire.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"input_tokens": 100, "output_tokens": 20, "cached": 60, "cache_write": 10}
"""The usage every successful reply reports: 100 input tokens in all, of which 60 were read from
the cache and 10 written to it (Anthropic reports the three parts separately), and 20 output."""


@dataclass
class Reply:
    """One scripted reply. ``status`` 200 answers in the API the request used, saying ``text``."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = "done"
    delay: float = 0.0  # seconds to wait before answering
    cut: bool = False  # break the body off half-way (a chunked body without its last chunk)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def anthropic_error(status: int, kind: str, message: str) -> Reply:
    return Reply(status=status, body={"type": "error", "error": {"type": kind, "message": message}})


def openai_error(status: int, code: str | None, message: str, kind: str = "") -> Reply:
    error = {"message": message, "type": kind or "invalid_request_error", "code": code}
    return Reply(status=status, body={"error": error})


class FakeProvider:
    """A scripted model server on 127.0.0.1; use as a context manager. Replies are taken from
    the script in order; once it runs out, every request succeeds."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def requests_to(self, suffix: str) -> list[Seen]:
        return [r for r in self.requests if r.path.split("?")[0].endswith(suffix)]

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            return self.script.popleft() if self.script else Reply()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake: FakeProvider = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        body = json.loads(raw) if raw else None
        seen = Seen("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        reply = fake._next(seen)
        if reply.delay:
            time.sleep(reply.delay)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(seen, reply)  # suppressed: the client gave up (a timeout test)

    def _answer(self, seen: Seen, reply: Reply) -> None:
        path = seen.path.split("?")[0]
        stream = isinstance(seen.body, dict) and seen.body.get("stream") is True
        model = seen.body.get("model", "model") if isinstance(seen.body, dict) else "model"
        if reply.status != 200 or reply.body is not None:
            payload = json.dumps(reply.body if reply.body is not None else {}).encode()
            self._send(reply, "application/json", [payload])
        elif path.endswith("/messages"):
            if stream:
                self._send(reply, "text/event-stream", list(_anthropic_events(model, reply.text)))
            else:
                self._send(reply, "application/json", [json.dumps(_anthropic(model, reply.text))])
        elif path.endswith("/responses"):
            self._send(reply, "application/json", [json.dumps(_responses(model, reply.text))])
        elif path.endswith("/chat/completions"):
            self._send(reply, "application/json", [json.dumps(_chat(model, reply.text))])
        else:
            self._send(Reply(status=404), "application/json", [b'{"error": "no such path"}'])

    def _send(self, reply: Reply, content_type: str, chunks: list[Any]) -> None:
        data = [c.encode() if isinstance(c, str) else c for c in chunks]
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if not reply.cut and content_type == "application/json":
            body = b"".join(data)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if reply.cut:
            # Half of the body, then the connection closes without the terminating chunk.
            whole = b"".join(data)
            data = [whole[: max(1, len(whole) // 2)]]
        for chunk in data:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        if reply.cut:
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")


def _anthropic_usage() -> dict[str, int]:
    cached, written = USAGE["cached"], USAGE["cache_write"]
    return {
        "input_tokens": USAGE["input_tokens"] - cached - written,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
        "output_tokens": USAGE["output_tokens"],
    }


def _anthropic(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(),
    }


def _anthropic_events(model: str, text: str) -> Iterator[str]:
    start = {**_anthropic(model, ""), "content": [], "stop_reason": None}
    start["usage"] = {**_anthropic_usage(), "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": USAGE["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    for name, data in events:
        yield f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _responses(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed",
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": USAGE["input_tokens"],
            "input_tokens_details": {"cached_tokens": USAGE["cached"]},
            "output_tokens": USAGE["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": USAGE["input_tokens"] + USAGE["output_tokens"],
        },
    }


def _chat(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": USAGE["input_tokens"],
            "completion_tokens": USAGE["output_tokens"],
            "total_tokens": USAGE["input_tokens"] + USAGE["output_tokens"],
            "prompt_tokens_details": {"cached_tokens": USAGE["cached"]},
        },
    }


ANTHROPIC_KEY = "sk-ant-test-key-0000000000"
OPENAI_KEY = "sk-test-openai-key-000000000000"

MODELS = {
    "anthropic": "claude-sonnet-4-6",
    "openai": "gpt-5",
    "openai-compatible": "qwen3-coder",
    "ollama": "qwen2.5-coder:7b",
    "vllm": "Qwen/Qwen3-Coder",
    "llamacpp": "local",
    "lmstudio": "local",
}
"""A model per provider for runs against the fake (not deprecated, so the SDKs do not warn)."""


def model_for(fake: FakeProvider, provider: str, *, timeout: float = 10.0, **config: Any) -> Any:
    """A blitz-built pydantic-ai model of ``provider`` that talks to ``fake``."""
    from blitz.llm.models import ProviderConfig, build_model, parse_model

    base = fake.url if provider == "anthropic" else f"{fake.url}/v1"
    spec = parse_model(f"{provider}:{MODELS[provider]}@{base}")
    settings = ProviderConfig(
        anthropic_api_key=ANTHROPIC_KEY, openai_api_key=OPENAI_KEY, timeout=timeout, **config
    )
    return build_model(spec, settings)
