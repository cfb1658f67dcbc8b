"""What the embedded agent's tests share: the scripted model server, a backend pointed at it
(Anthropic or an OpenAI-compatible server) with a clock whose sleeps return at once, and the
shapes of the replies they script."""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from backend_helpers import task
from pydantic_ai.models import Model

from blitz.backends.base import AgentRequest, GateCommand
from blitz.backends.embedded import EmbeddedBackend, EmbeddedLimits
from blitz.breaker import BreakerBoard
from blitz.llm import PriceTable, ProviderConfig, build_model, parse_model
from blitz.llm.usage import DEFAULT_PRICES, Price
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

KEY = "sk-ant-embedded-test-key-0123456789"
SHOUT = 'def shout(text):\n    """The text in capitals."""\n    return text.upper()\n'
SHOUT_TEST = 'from textutil import shout\n\n\ndef test_shout():\n    assert shout("hi") == "HI"\n'
"""``textutil.py`` and its test as the ``textutil`` fixture commits them."""
ANTHROPIC = "anthropic:claude-sonnet-4-6"
COMPATIBLE = "openai-compatible:coder"
MODELS = [ANTHROPIC, COMPATIBLE]

# Sonnet's list price, given to the compatible model too so both runs cost the same.
SONNET = Price(input=3, output=15, cached_input=0.3, cache_write=3.75)
PRICES = PriceTable({**DEFAULT_PRICES, "openai-compatible:coder": SONNET})


class InstantClock(ManualClock):
    """A manual clock whose sleeps return at once, having moved time on; records the waits."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def backend(
    server: ModelServer,
    model: str = ANTHROPIC,
    *,
    key: str = KEY,
    clock: InstantClock | None = None,
    breakers: BreakerBoard | None = None,
    wrap: Callable[[Model], Model] | None = None,
    temperature: float | None = None,
    **limits: Any,
) -> EmbeddedBackend:
    if model == COMPATIBLE:
        model = f"{COMPATIBLE}@{server.openai_base_url}"
    spec = parse_model(model)
    config = ProviderConfig(
        anthropic_api_key=key, anthropic_base_url=server.url, compatible_api_key=key
    )
    built = build_model(spec, config)
    return EmbeddedBackend(
        model=wrap(built) if wrap is not None else built,
        spec=spec,
        prices=PRICES,
        clock=clock or InstantClock(),
        breakers=breakers,
        limits=EmbeddedLimits(**limits),
        temperature=temperature,
    )


def slugify_task(
    worktree: Path,
    *gates: GateCommand,
    files: tuple[str, ...] = ("textutil.py", "test_textutil.py"),
    **changes: Any,
) -> AgentRequest:
    """The task of adding slugify() and its test to the ``textutil`` fixture's files, with
    ``gates`` run on its finish."""
    fields = {
        "task_id": "add-slugify",
        "title": "Add slugify(text) to textutil.py",
        "instructions": "Add slugify(text) to textutil.py, and its test to test_textutil.py.",
        "files": files,
        "gates": gates,
        "allow_empty": False,
    }
    return task(worktree, **(fields | changes))


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "input": args}


def call_text(name: str, **arguments: Any) -> str:
    """A tool call written as text, as small local models write one."""
    return json.dumps({"name": name, "arguments": arguments})


def finish(summary: str = "Added hello().", **condition: Any) -> dict[str, Any]:
    return {**condition, "reply": {"tool_calls": [call("finish", summary=summary)]}}


def tool_results(server: ModelServer) -> str:
    return "\n".join(request.tool_results for request in server.requests)


LLAMA_CPP_REFUSAL = (
    "Unable to generate parser for this template. Automatic parser generation failed: "
    "JSON schema error at #/properties/a: unrecognized type foo"
)
"""What llama.cpp answers (400) to tool definitions its grammar converter cannot type."""


class RefusingRelay:
    """A relay on 127.0.0.1 in front of an OpenAI-compatible server (the real llama.cpp) that
    answers every request defining tools as llama.cpp refuses a schema it cannot type (400, its
    error body) and passes every other request through, byte for byte, one per connection."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._path = parts.path.rstrip("/")
        self.refused = 0
        relay = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                relay._handle(self.rfile, self.wfile)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._path}"

    def __enter__(self) -> RefusingRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, rfile: BinaryIO, wfile: BinaryIO) -> None:
        lines = []
        while (line := rfile.readline()) not in (b"\r\n", b"\n", b""):
            lines.append(line)
        if not lines:
            return
        length = next(
            (int(h.split(b":", 1)[1]) for h in lines if h.lower().startswith(b"content-length:")),
            0,
        )
        body = rfile.read(length)
        if body and json.loads(body).get("tools"):
            self.refused += 1
            error = {"code": 400, "message": LLAMA_CPP_REFUSAL, "type": "invalid_request_error"}
            payload = json.dumps({"error": error}).encode()
            wfile.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(payload) + payload
            )
            return
        # One request per upstream connection, which the server closes after its answer.
        kept = [h for h in lines[1:] if not h.lower().startswith(b"connection:")]
        head = b"".join([lines[0], *kept, b"Connection: close\r\n\r\n"])
        with socket.create_connection(self._upstream, timeout=600) as upstream:
            upstream.sendall(head + body)
            while data := upstream.recv(65536):
                wfile.write(data)
                wfile.flush()
