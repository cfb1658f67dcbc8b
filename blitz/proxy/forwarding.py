"""The proxy's ASGI application: check the token, refuse or forward, stream back, meter.

One request: the path names the API (``/anthropic/...`` or ``/openai/v1/...``), the token (sent as
``x-api-key`` or ``Authorization: Bearer``) names the session, the session names the upstream.
An unknown, missing or ended token gets a 401 and a spent budget a 400, both in the API's own
error format, and neither reaches the upstream. Otherwise the request goes upstream with the real
key, the response comes back chunk by chunk as it arrives (status and headers unchanged but the
hop-by-hop ones), and its usage is charged to the session the moment it passes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from blitz.breaker import BreakerBoard
from blitz.llm.breakers import ProviderCircuit, ProviderUnavailable
from blitz.llm.errors import parse_retry_after
from blitz.llm.usage import PriceTable
from blitz.proxy.metering import Meter, Tokens, endpoint_of
from blitz.proxy.refusals import Refusal, not_found, provider_down, unauthorized, unreachable
from blitz.proxy.sessions import ProxySession, Sessions
from blitz.proxy.upstream import Upstream, response_headers

log = logging.getLogger("blitz.proxy")

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]

PREFIXES = (("anthropic", b"/anthropic"), ("openai", b"/openai/v1"))
"""The path prefix of each API; what follows is appended to the upstream's base URL."""


def failed(status: int) -> bool:
    """Whether an upstream status says the provider is in trouble (for its breaker)."""
    return status == 429 or status >= 500


class Forwarder:
    """The ASGI app. ``client`` is set while the proxy runs."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        upstreams: Mapping[str, Upstream],
        prices: PriceTable,
        on_outcome: Callable[[str, bool], None] | None,
        breakers: BreakerBoard | None = None,
    ) -> None:
        self.sessions = sessions
        self.upstreams = upstreams
        self.prices = prices
        self.on_outcome = on_outcome
        self.breakers = breakers
        self.client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        route = _route(raw_path)
        if route is None:
            await _refuse(send, "anthropic", not_found())
            return
        wire, path = route
        # The body is read even when refused, so the client reads the refusal, not a reset.
        body = await _body(receive)
        if body is None:
            return  # the client left before sending its request
        session = self.sessions.find(_token(scope["headers"]))
        if session is None or session.wire != wire:
            await _refuse(send, wire, unauthorized())
            return
        refusal = session.refusal() or self._closed_for(session.provider)
        if refusal is not None:
            await _refuse(send, wire, refusal)
            return
        session.requests += 1
        if wire == "openai" and path.endswith("/chat/completions"):
            body = with_stream_usage(body)
        await self._forward(scope, receive, send, session, path, body)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        session: ProxySession,
        path: str,
        body: bytes,
    ) -> None:
        assert self.client is not None, "the model proxy is not started"
        upstream = self.upstreams[session.provider]
        request = self.client.build_request(
            scope["method"],
            upstream.url(path, scope.get("query_string", b"")),
            headers=upstream.request_headers(scope["headers"]),
            content=body,
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            # The exception's text is not logged: only its kind, never a URL or a header.
            log.warning("model proxy: %s upstream failed: %s", session.provider, type(exc).__name__)
            self._outcome(session.provider, ok=False, error=f"unreachable: {type(exc).__name__}")
            timeout = isinstance(exc, httpx.TimeoutException)
            await _refuse(send, session.wire, unreachable(session.provider, timeout=timeout))
            return
        endpoint = endpoint_of(session.wire, path) if scope["method"] == "POST" else None
        content_type = response.headers.get("content-type", "")
        meter = Meter(endpoint, content_type) if endpoint and response.is_success else None
        pump = asyncio.create_task(self._pump(response, send, session, meter, body))
        left = asyncio.create_task(_disconnected(receive))
        try:
            await asyncio.wait((pump, left), return_when=asyncio.FIRST_COMPLETED)
            if not pump.done():
                # The client hung up: stop reading, so the provider stops generating too.
                pump.cancel()
            await pump
        except asyncio.CancelledError:
            if not left.done():
                raise  # the proxy is stopping, not the client leaving
        finally:
            left.cancel()
            pump.cancel()
            await response.aclose()

    async def _pump(
        self,
        response: httpx.Response,
        send: Send,
        session: ProxySession,
        meter: Meter | None,
        body: bytes,
    ) -> None:
        """Pass the response on as it arrives, metering it. The usage and the outcome are
        reported before the body's end, so a client that has its answer can count on both; a
        response cut short (upstream failure, client gone) reports what it had at the end."""
        ok = not failed(response.status_code)
        status = response.status_code
        error = "" if ok else f"the provider answered {status}"
        retry_after = None if ok else parse_retry_after(response.headers, time.time())
        reported = False
        try:
            encoding = response.headers.get("content-encoding", "identity").lower()
            decoded = encoding not in ("", "identity")
            headers = response_headers(response.headers.raw, decoded=decoded)
            start = {"type": "http.response.start", "status": response.status_code}
            await send({**start, "headers": headers})
            # A JSON body's usage is known only at its end: its last chunk waits for it.
            held = b""
            try:
                async for chunk in response.aiter_bytes():
                    if meter is not None:
                        if (tokens := meter.feed(chunk)) is not None:
                            self._charge(session, meter, tokens, body)
                        if not meter.stream:
                            held, chunk = chunk, held
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:
                ok, error = False, f"the response broke off: {type(exc).__name__}"
                log.warning(
                    "model proxy: %s stream broke off: %s", session.provider, type(exc).__name__
                )
                return
            reported = True
            self._settle(session, meter, body, ok=ok, error=error, retry_after=retry_after)
            await send({"type": "http.response.body", "body": held, "more_body": False})
        finally:
            if not reported:
                self._settle(session, meter, body, ok=ok, error=error, retry_after=retry_after)

    def _settle(
        self,
        session: ProxySession,
        meter: Meter | None,
        body: bytes,
        *,
        ok: bool,
        error: str,
        retry_after: float | None,
    ) -> None:
        """Charge what the meter has not charged yet, and report the outcome."""
        if meter is not None:
            if (tokens := meter.finish()) is not None:
                self._charge(session, meter, tokens, body)
            if ok and meter.failed:
                ok, error = False, "the response reported a failure mid-stream"
        self._outcome(session.provider, ok=ok, error=error, retry_after=retry_after)

    def _charge(self, session: ProxySession, meter: Meter, tokens: Tokens, body: bytes) -> None:
        model = meter.model or _model_of(body)
        session.record(tokens.price(session.provider, model, self.prices))

    def _closed_for(self, provider: str) -> Refusal | None:
        """The refusal of every request while the provider's breaker is open: the client is
        told to come back when it goes half-open (the shared policy's ``retry-after``)."""
        try:
            ProviderCircuit(self.breakers, provider).check()
        except ProviderUnavailable as down:
            return provider_down(provider, str(down), down.retry_after)
        return None

    def _outcome(
        self, provider: str, *, ok: bool, error: str = "", retry_after: float | None = None
    ) -> None:
        """Tell the provider's breaker (and ``on_outcome``) how the upstream answered. No probe
        is judged: the agent's run holds it (:class:`blitz.backends.circuit.CircuitBackend`)."""
        ProviderCircuit(self.breakers, provider).judge(
            [], reached=ok, error=error, retry_after=retry_after
        )
        if self.on_outcome is None:
            return
        try:
            self.on_outcome(provider, ok)
        except Exception:
            log.exception("model proxy: on_outcome failed")


def _route(raw_path: bytes) -> tuple[str, str] | None:
    """The API a path is for, and the path after its prefix."""
    for wire, prefix in PREFIXES:
        if raw_path == prefix or raw_path.startswith(prefix + b"/"):
            return wire, raw_path[len(prefix) :].decode("latin-1")
    return None


def _token(headers: list[tuple[bytes, bytes]]) -> str:
    """The credential the client sent: ``x-api-key``, else a bearer token."""
    bearer = ""
    for name, value in headers:
        if name == b"x-api-key" and value:
            return value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                bearer = token.strip()
    return bearer


async def _body(receive: Receive) -> bytes | None:
    """The whole request body; None when the client disconnects first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _disconnected(receive: Receive) -> None:
    """Returns when the client disconnects."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _refuse(send: Send, wire: str, refusal: Refusal) -> None:
    body = refusal.body(wire)
    headers = refusal.headers(body)
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def with_stream_usage(body: bytes) -> bytes:
    """A streamed Chat Completions request asking for its usage in the last chunk
    (``stream_options.include_usage``), so the proxy can meter it: clients such as aider do not
    ask. Anything else (not streamed, already asked, not JSON) passes as it is."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or data.get("stream") is not True:
        return body
    options = data.get("stream_options")
    if options is None:
        options = data["stream_options"] = {}
    if not isinstance(options, dict) or "include_usage" in options:
        return body
    options["include_usage"] = True
    return json.dumps(data).encode()


def _model_of(body: bytes) -> str:
    """The model a request body names, for a response that does not say."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else ""
