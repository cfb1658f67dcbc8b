"""A held upstream for the proxy tests: a raw HTTP server on 127.0.0.1 whose answer the test
releases piece by piece, so a test can see what the proxy passes on (and meters) before the
upstream has finished, and what it does when the client hangs up mid-stream.

The scripted model server answers whole; this one exists only for timing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

ANTHROPIC_EVENTS = {
    "start": {
        "type": "message_start",
        "message": {
            "id": "msg_held",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 1000, "output_tokens": 1, "cache_read_input_tokens": 500},
        },
    },
    "block": {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    },
    "delta": {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Hi"},
    },
    "block_stop": {"type": "content_block_stop", "index": 0},
    "end": {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 200},
    },
    "stop": {"type": "message_stop"},
}


def event(name: str) -> bytes:
    data = ANTHROPIC_EVENTS[name]
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


class HeldUpstream:
    """Answers one request per connection with a 200 SSE head, then what :meth:`release` gives.

    :attr:`requests` holds each request's head (method, path, lower-cased headers) and body;
    :attr:`closed` is set when the proxy closes the connection.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._pieces: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self.url = ""

    async def __aenter__(self) -> HeldUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def release(self, *pieces: bytes) -> None:
        """Send these bytes as chunks now."""
        for piece in pieces:
            self._pieces.put_nowait(piece)

    def end(self) -> None:
        """End the response."""
        self._pieces.put_nowait(None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"x-upstream: held\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            await writer.drain()
            # The proxy closes its side when its client hangs up mid-stream.
            hangup = asyncio.create_task(reader.read())
            hangup.add_done_callback(lambda _: self.closed.set())
            while (piece := await self._pieces.get()) is not None:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            try:
                await hangup
            finally:
                hangup.cancel()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the proxy hung up, or the test is over
        finally:
            self.closed.set()
            writer.close()
