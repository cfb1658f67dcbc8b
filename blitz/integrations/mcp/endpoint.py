"""``/mcp`` in the daemon: the MCP server over streamable HTTP, behind the API's bearer token.

The tools (:mod:`.tools`) call the daemon's own actions (:class:`.local.LocalAccess`). Every
request must carry the daemon's token as ``Authorization: Bearer`` (checked as the API checks
it, :func:`blitz.server.auth.verify`; the dashboard's cookie is not enough here, so a web page
cannot drive blitz through a visitor's browser); a request without it is answered 401 with a
problem document before the MCP SDK sees it. The transport is stateless with JSON answers: each
request (a POST) stands alone, so nothing is held between requests and a daemon restart loses
nothing.

The SDK's session manager runs in a task of its own (:meth:`McpEndpoint.start`, ended by
:meth:`McpEndpoint.stop`), since the daemon runs uvicorn without a lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from blitz.integrations.mcp.local import LocalAccess
from blitz.integrations.mcp.tools import build
from blitz.server import auth
from blitz.server.problems import Problem, problem_response

if TYPE_CHECKING:
    from fastapi import FastAPI

    from blitz.server.host import Host

PATH = "/mcp"

log = logging.getLogger("blitz.mcp")


class McpEndpoint:
    """The daemon's MCP endpoint: an ASGI app checking the token, then the SDK's transport."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.server = build(LocalAccess(host))
        # The token guards the endpoint (a header no other site's page can send), so the SDK's
        # Host/Origin check would only refuse a daemon reached by another name than 127.0.0.1.
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.manager = self.server.session_manager
        self._stop = asyncio.Event()
        self._running: asyncio.Task[None] | None = None

    def mount(self, api: FastAPI) -> None:
        """Answer ``/mcp`` of ``api`` with this endpoint: a route of the API like the others
        (listed with them, so the checks that walk every route walk this one), whose answer
        is the transport's own."""

        async def mcp(request: Request) -> Response:
            return _Delegated(self)

        # POST only: a stateless server has no stream to offer on a GET (the SDK's would stay
        # open with nothing to send) and no session to end with a DELETE; both answer 405, as
        # the specification allows.
        api.add_api_route(PATH, mcp, methods=["POST"], include_in_schema=False)

    async def start(self) -> None:
        """Run the SDK's session manager until :meth:`stop`."""
        started = asyncio.Event()

        async def run() -> None:
            async with self.manager.run():
                started.set()
                await self._stop.wait()

        self._running = asyncio.get_running_loop().create_task(run(), name="blitz-mcp")
        waiting = asyncio.ensure_future(started.wait())
        await asyncio.wait({waiting, self._running}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._running.done():
            self._running.result()  # its failure, raised here

    async def stop(self) -> None:
        self._stop.set()
        if self._running is not None:
            try:
                async with asyncio.timeout(10):
                    await self._running
            except Exception:
                log.exception("the MCP endpoint did not stop cleanly")
            self._running = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        scheme, _, value = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
        try:
            # In a worker thread: a first check with scrypt costs tens of milliseconds.
            await asyncio.to_thread(auth.verify, self.host.tokens, token)
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)


class _Delegated(Response):
    """The answer of an ASGI app that reads the request and sends its answer itself (the
    route's function reads nothing of the request, so its body is still unread)."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__()
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
