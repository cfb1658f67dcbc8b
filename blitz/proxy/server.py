"""The model proxy's life cycle: one uvicorn server on 127.0.0.1 (and a unix socket), in-process.

The server runs on the caller's event loop, so usage callbacks run there too. uvicorn's own signal
handling is off (blitz decides how to stop) and so are its access log and lifespan events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from collections.abc import Callable, Generator, Mapping
from pathlib import Path

import httpx
import uvicorn

from blitz.breaker import BreakerBoard
from blitz.domain import Usage
from blitz.llm.usage import PriceTable
from blitz.proxy.forwarding import Forwarder
from blitz.proxy.sessions import ProxySession, Sessions
from blitz.proxy.upstream import Upstream

TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=600.0, pool=600.0)
"""Upstream timeouts: a model may think for minutes before its first byte."""

SHUTDOWN_GRACE = 2
"""Seconds :meth:`ModelProxy.stop` lets open streams finish before cutting them."""

STARTUP_TIMEOUT = 10.0

NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: stopping is blitz's decision."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ModelProxy:
    """A loopback proxy for the Anthropic and OpenAI APIs, metering per-attempt sessions.

    ``upstreams`` are the real APIs by name (``"anthropic"``, ``"openai"``, or the name of an
    OpenAI-compatible server such as ``"ollama"``); a name is also the provider prices are looked
    up under. Every upstream answer is reported to the provider's breaker on ``breakers`` (a
    failure for 429, 5xx (529 included), a failure mid-stream or an unreachable upstream, with the
    provider's ``retry-after``), and to ``on_outcome(name, ok)``; while that breaker is open the
    proxy answers 503 with ``retry-after`` itself, so the clients wait as blitz's own calls do.
    """

    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        *,
        prices: PriceTable,
        on_outcome: Callable[[str, bool], None] | None = None,
        breakers: BreakerBoard | None = None,
    ) -> None:
        self.upstreams = dict(upstreams)
        self.socket_path: Path | None = None
        self._sessions = Sessions()
        self._app = Forwarder(
            sessions=self._sessions,
            upstreams=self.upstreams,
            prices=prices,
            on_outcome=on_outcome,
            breakers=breakers,
        )
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, where the host reaches the proxy."""
        if self._server is None:
            raise RuntimeError("the model proxy is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self, socket_path: Path | None = None) -> None:
        """Listen on 127.0.0.1 at a free port and, when given, on a unix socket at
        ``socket_path`` (mode 0600; its directory's mode is the caller's affair). Idempotent."""
        if self._server is not None:
            return
        sockets = [_tcp_socket()]
        if socket_path is not None:
            sockets.append(_unix_socket(socket_path))
        self._port = sockets[0].getsockname()[1]
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=32)
        # No Nagle: a request's headers and body go in separate writes, and Nagle would hold
        # the body back until the upstream's (delayed) ACK, some 40 ms on loopback.
        transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=NO_DELAY)
        self._app.client = httpx.AsyncClient(
            transport=transport, timeout=TIMEOUT, follow_redirects=False
        )
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
        )
        server = _Server(config)
        self._server, self.socket_path = server, socket_path
        self._task = asyncio.create_task(server.serve(sockets=sockets), name="model-proxy")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        while not server.started:
            if self._task.done() or loop.time() > deadline:
                await self.stop()
                raise RuntimeError("the model proxy did not start")
            await asyncio.sleep(0.001)

    async def stop(self) -> None:
        """Stop serving (open streams get :data:`SHUTDOWN_GRACE` seconds). Idempotent."""
        server, task, client = self._server, self._task, self._app.client
        self._server = self._task = self._app.client = None
        if server is not None:
            server.should_exit = True
        if task is not None:
            await asyncio.wait([task])  # how it ended is not this stop's business
            if not task.cancelled():
                task.exception()  # retrieved, so asyncio does not log it as unseen
        if client is not None:
            await client.aclose()
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    def open(
        self,
        provider: str,
        *,
        budget_usd: float | None,
        on_usage: Callable[[Usage], None] | None,
        label: str = "",
    ) -> ProxySession:
        """A session for one attempt on the upstream named ``provider``."""
        upstream = self.upstreams.get(provider)
        if upstream is None:
            known = ", ".join(sorted(self.upstreams)) or "none"
            raise KeyError(f"the model proxy has no upstream {provider!r} (it has: {known})")
        return self._sessions.open(
            provider,
            wire=upstream.provider,
            budget_usd=budget_usd,
            on_usage=on_usage,
            label=label,
        )

    @property
    def open_sessions(self) -> int:
        """Sessions not closed yet."""
        return len(self._sessions)

    async def __aenter__(self) -> ModelProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _tcp_socket() -> socket.socket:
    # IPPROTO_TCP said outright: asyncio turns Nagle off only on connections whose socket says
    # so, and accepted connections inherit it from this one (proto 0 would cost 40 ms a reply).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(False)
    return sock


def _unix_socket(path: Path) -> socket.socket:
    """A unix socket bound at ``path`` (a stale socket there is replaced), mode 0600."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise FileExistsError(f"{path} exists and is not a socket")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    return sock
