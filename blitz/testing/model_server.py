"""A scripted model provider on 127.0.0.1 that speaks Anthropic's and OpenAI's wire formats.

The real SDK clients (and pydantic-ai, and CLIs such as Claude Code and Codex) talk to it over
sockets, so tests exercise their request building, SSE parsing, error mapping and retries for
real::

    scenario = [
        {"match": "task-1", "reply": {"tool_calls": [{"name": "read", "input": {"path": "a.py"}}]}},
        {"match_tool_result": "def main", "reply": {"text": "Done.", "usage": {"cached": 80}}},
    ]
    with ModelServer(scenario) as server:
        client = anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="k")
        ...
        assert not server.unmatched and not server.pending

This module is the HTTP server: it reads a request, asks its :class:`~blitz.testing.turns.Script`
for the reply, and has the request's wire format render it. The scenario format is described in
:mod:`blitz.testing.turns`; the formats live apart, one module each:

* ``POST /v1/messages`` (plain and ``stream: true``) and ``POST /v1/messages/count_tokens``:
  :mod:`blitz.testing.anthropic_api`;
* ``POST /v1/chat/completions`` (plain and streamed, with ``stream_options.include_usage``):
  :mod:`blitz.testing.openai_api`;
* ``POST /v1/responses`` (OpenAI's Responses API, which the Codex CLI speaks):
  :mod:`blitz.testing.responses_api`;
* ``GET /v1/models`` (Anthropic's list shape when the request carries ``anthropic-version``).

API keys (``x-api-key``, or ``authorization: Bearer``) are compared when the server is given one
(401 otherwise), and recorded only as the header that carried them, never their value.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from blitz.testing import anthropic_api, openai_api, responses_api
from blitz.testing.loopback import LoopbackServer
from blitz.testing.turns import (
    Api,
    ErrorReply,
    Reply,
    Script,
    SeenRequest,
    ToolCall,
    Turn,
    Usage,
    load_scenario,
)
from blitz.testing.wire import Answer, WireFormat, error_answer, json_answer, render

__all__ = [
    "DEFAULT_MODELS",
    "RECORDED_HEADERS",
    "RESPONSES",
    "Api",
    "ErrorReply",
    "ModelServer",
    "Reply",
    "SeenRequest",
    "ToolCall",
    "Turn",
    "Usage",
    "load_scenario",
]

RESPONSES = "/v1/responses"
"""OpenAI's Responses API, rendered by :mod:`blitz.testing.responses_api`."""

MODEL_PATHS: dict[str, WireFormat] = {
    "/v1/messages": anthropic_api,
    "/v1/chat/completions": openai_api,
    RESPONSES: responses_api,
}

DEFAULT_MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "gpt-5", "gpt-5-mini")

# Headers worth asserting on. Credentials are never recorded, only which header carried one.
RECORDED_HEADERS = (
    "anthropic-beta",
    "anthropic-version",
    "content-type",
    "user-agent",
    "x-stainless-helper-method",
    "x-stainless-retry-count",
    "x-stainless-timeout",
)


class ModelServer(Script, LoopbackServer):
    """A scripted Anthropic + OpenAI provider on ``127.0.0.1`` at a free port.

    The script (``turns``, ``fallback``, :meth:`add`, :meth:`fail_next`, :meth:`clear`,
    :attr:`requests`, :attr:`unmatched`, :attr:`pending`) is described in
    :mod:`blitz.testing.turns`. ``api_key``, when given, is required of every request (401
    otherwise); ``models`` is what ``GET /v1/models`` lists.
    """

    def __init__(
        self,
        turns: Iterable[Turn | Reply | Mapping[str, Any]] = (),
        *,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        fallback: Reply | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(turns, fallback=fallback)
        self.api_key = api_key
        self.models = tuple(models)
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        LoopbackServer.__init__(self)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> ModelServer:
        """A server scripted by a YAML or JSON scenario file; ``options`` as for the constructor."""
        return cls(load_scenario(path), **options)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def anthropic_base_url(self) -> str:
        """The base URL for Anthropic clients (and ``ANTHROPIC_BASE_URL``)."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """The base URL for OpenAI clients, which add paths after ``/v1``."""
        return f"{self.url}/v1"

    name = "model-server"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(_Handler):
            model_server = server

        return Handler

    def start(self) -> Self:
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        """Stop serving; delayed answers still waiting are dropped."""
        self._stopping.set()
        super().stop()

    # -- answering, called from the server's threads ----------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}blitz{next(self._ids):06d}"

    def _handle(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> Answer:
        """Answer one request and record it. ``headers`` have lower-case names."""
        path = urlsplit(target).path.rstrip("/")
        anthropic = path.startswith("/v1/messages") or "anthropic-version" in headers
        wire = MODEL_PATHS.get(path) or (anthropic_api if anthropic else openai_api)
        key, key_header = _api_key(headers)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        read = body if isinstance(body, dict) else {}
        conversation = wire.read(read)
        request = SeenRequest(
            api=wire.API,
            method=method,
            path=path,
            body=read,
            headers={name: headers[name] for name in RECORDED_HEADERS if name in headers},
            api_key_header=key_header,
            text=conversation.text,
            tool_results=conversation.tool_results,
            last_user_text=conversation.last_user_text,
        )
        request_id = self._new_id("req_")
        turn: int | None = None
        unmatched = False
        with self.lock:
            if self.api_key is not None and key != self.api_key:
                answer = error_answer(wire, ErrorReply(status=401), request_id)
            elif not isinstance(body, dict):
                error = ErrorReply(status=400, message="The request body is not a JSON object.")
                answer = error_answer(wire, error, request_id)
            elif (method, path) == ("GET", "/v1/models"):
                listing = anthropic_api if wire.API == "anthropic" else openai_api
                payload = listing.models_body(self.models)
                answer = json_answer(200, payload, {wire.ID_HEADER: request_id})
            elif (method, path) == ("POST", "/v1/messages/count_tokens"):
                payload = anthropic_api.count_tokens_body(request)
                answer = json_answer(200, payload, {wire.ID_HEADER: request_id})
            elif method == "POST" and path in MODEL_PATHS:
                answer, turn, unmatched = self._answer_model(wire, request, request_id)
            else:
                error = ErrorReply(status=404, message=f"No route for {method} {path}.")
                answer = error_answer(wire, error, request_id)
            self._record(replace(request, status=answer.status, turn=turn), unmatched=unmatched)
        return answer

    def _answer_model(
        self, wire: WireFormat, request: SeenRequest, request_id: str
    ) -> tuple[Answer, int | None, bool]:
        """The scripted answer to a model request, its turn, and whether nothing matched."""
        reply, turn = self._take(request)
        if reply is None:
            return error_answer(wire, self._unmatched_error(request), request_id), None, True
        answer = render(wire, request, reply, request_id=request_id, new_id=self._new_id)
        return answer, turn, False


def _api_key(
    headers: Mapping[str, str],
) -> tuple[str, Literal["x-api-key", "authorization"] | None]:
    """The API key sent, and the header that carried it."""
    if headers.get("x-api-key"):
        return headers["x-api-key"], "x-api-key"
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme == "Bearer" and token.strip():
        return token.strip(), "authorization"
    return "", None


class _Handler(BaseHTTPRequestHandler):
    model_server: ModelServer
    server_version = "blitz-model-server"
    # Headers and body are separate writes: with Nagle and a delayed ACK each answer waits 40 ms.
    disable_nagle_algorithm = True
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

    def _send(self, answer: Answer) -> None:
        if answer.cut and answer.chunks is None:
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.chunks is None:
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for number, chunk in enumerate(answer.chunks):
            if number and answer.chunk_delay:
                self.wfile.flush()
                if self.model_server._stopping.wait(answer.chunk_delay):
                    self.close_connection = True
                    return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if answer.cut:
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read :attr:`ModelServer.requests` instead."""
