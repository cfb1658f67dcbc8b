"""A scripted OpenAI-shaped speech service on 127.0.0.1, for the speech clients' failure tests:
it answers every request with one scripted status and body, after an optional delay (a slow
server), and records what it was sent (the path, the bearer key, the body)."""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler

from blitz.testing.loopback import LoopbackServer


@dataclasses.dataclass(frozen=True, kw_only=True)
class SeenSpeechRequest:
    path: str
    authorization: str
    content_type: str
    body: bytes


class ScriptedSpeechServer(LoopbackServer):
    """Answers ``status`` with ``body`` (JSON) after ``delay`` seconds, its bytes ``trickle``
    seconds apart; ``audio`` is sent as the body of a 200 to ``/audio/speech``. :meth:`stop` ends
    any wait at once."""

    name = "scripted-speech"

    def __init__(
        self,
        *,
        status: int = 200,
        body: object = None,
        delay: float = 0.0,
        trickle: float = 0.0,
        audio: bytes = b"",
    ) -> None:
        super().__init__()
        self.status = status
        self.body = {"text": ""} if body is None else body
        self.delay = delay
        self.trickle = trickle
        self.audio = audio
        self.seen: list[SeenSpeechRequest] = []
        self._released = threading.Event()
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._released.set()
        super().stop()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with fake._lock:
                    fake.seen.append(
                        SeenSpeechRequest(
                            path=self.path,
                            authorization=self.headers.get("authorization", ""),
                            content_type=self.headers.get("content-type", ""),
                            body=body,
                        )
                    )
                if fake.delay and fake._released.wait(fake.delay):
                    return  # stopped while waiting
                if fake.status == 200 and self.path.endswith("/audio/speech"):
                    payload, kind = fake.audio, "audio/wav"
                else:
                    payload, kind = json.dumps(fake.body).encode(), "application/json"
                self.send_response(fake.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if not fake.trickle:
                    self.wfile.write(payload)
                    return
                for byte in payload:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if fake._released.wait(fake.trickle):
                        return

        return Handler
