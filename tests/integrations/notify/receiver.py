"""A webhook receiver on 127.0.0.1 for the notification tests: records every request, answers
the first ``fail_first`` of them (or all, while ``failing``) with ``fail_status``, the rest 200
(or ``answer``, a JSON body, for a fake Slack Web API). A real HTTP server in a thread, shut
down and closed by ``close`` (a context manager)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    fail_first: int = 0
    fail_status: int = 500
    failing: bool = False
    retry_after: str = ""  # the Retry-After header of a refusal, if any
    answer: dict[str, Any] | None = None
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def accepted(self) -> list[Request]:
        """The requests answered 2xx."""
        with self._lock:
            return [r for r in self.requests if r.status < 300]

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    fail = receiver.failing or len(receiver.requests) < receiver.fail_first
                    status = receiver.fail_status if fail else 200
                    receiver.requests.append(
                        Request(self.path, dict(self.headers.items()), body, status)
                    )
                reply = f"failing on purpose at {self.path}".encode() if fail else b"ok"
                if not fail and receiver.answer is not None:
                    reply = json.dumps(receiver.answer).encode()
                self.send_response(status)
                kind = "text/plain" if fail else "application/json"
                self.send_header("Content-Type", kind)
                if fail and receiver.retry_after:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
