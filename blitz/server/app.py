"""The FastAPI application over one :class:`~blitz.server.host.Host` (the daemon):
authentication, the event stream, metrics, breakers and the dashboard's files here; projects
and goals in their own modules. Routes know the daemon only as a host, never import it.

Routes that only read run as plain functions (FastAPI runs them in worker threads, so a slow
store read never stalls the engine); routes that change something are coroutines on the loop,
the only thread that may touch the engine.

Nothing leaves unredacted (:mod:`blitz.redact`): every JSON body is a :class:`RedactedJSON`, the
default response class, which redacts every string of the data it renders, so a route only
returns its data; problem documents (:mod:`blitz.server.problems`) and the event stream
(:func:`blitz.server.events.message`) redact theirs, and the metrics their text. The rest are
the dashboard's files and empty answers.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette import EventSourceResponse

from blitz.integrations.slack import api as slack_api
from blitz.redact import redact, redact_data
from blitz.server import (
    auth,
    changes,
    events,
    gate_output,
    goals,
    notifications,
    problems,
    projects,
    pull_request,
    voice,
    workers,
    workspaces,
)
from blitz.server.inputs import BreakerResetIn, LoginIn
from blitz.server.metrics import CONTENT_TYPE
from blitz.server.problems import Problem, not_found
from blitz.server.schemas import BreakerOut, HealthOut

if TYPE_CHECKING:
    from blitz.server.host import Host

STATIC = Path(__file__).with_name("static")

VERSION = importlib.metadata.version("blitz")

NOT_BUILT = """<!doctype html>
<html><head><meta charset="utf-8"><title>blitz</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>blitz</h1>
<p>The daemon is running, but the dashboard is not built.</p>
<p>Build it with <code>cd dashboard &amp;&amp; npm ci &amp;&amp; npm run build</code>
(it writes <code>blitz/server/static/</code>), then reload this page.</p>
<p>The API is under <code>/api/</code>; see <code>docs/api.md</code>.</p>
</body></html>
"""


class RedactedJSON(JSONResponse):
    """JSON with every string passed through :func:`blitz.redact.redact`."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            redact_data(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")


def create_app(host: Host) -> FastAPI:
    """The API of ``host``, the daemon (routes, auth, problems, the dashboard's files)."""
    api = FastAPI(
        title="blitz",
        version=VERSION,
        description="The blitz daemon's API (docs/api.md).",
        openapi_url=None,  # served below, behind the token
        docs_url=None,
        redoc_url=None,
        default_response_class=RedactedJSON,
    )
    problems.install(api, not_found=_dashboard)
    if host.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=list(host.cors_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["X-Total-Count"],  # the goals list's count, read by the client
        )
    bearer = HTTPBearer(auto_error=False, description="The daemon's token (docs/api.md).")

    def require_token(
        request: Request, _: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> None:
        # A plain function: FastAPI runs it in a worker thread, so a first check with scrypt
        # does not hold up the loop.
        auth.verify(host.tokens, auth.presented(request))

    def require_token_or_query(
        request: Request, _: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> None:
        auth.verify(host.tokens, auth.presented(request, query=True))

    public = APIRouter()
    private = APIRouter(dependencies=[Depends(require_token)])
    _public_routes(public, host)
    projects.routes(private, host)
    goals.routes(private, host)
    workspaces.routes(private, host)
    workers.routes(private, host)
    pull_request.routes(private, host)
    changes.routes(private, host)
    gate_output.routes(private, host)
    notifications.routes(private, host)
    _breaker_routes(private, host)
    slack_api.routes(private, host)

    @private.get("/api/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return RedactedJSON(api.openapi())

    @private.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        live = [b.to_record() for b in host.engine.breakers.all()]  # on the loop: the
        # engine's breakers are not thread-safe
        text = await asyncio.to_thread(host.metrics.render, live)
        # Project names and breaker keys are label values.
        return Response(redact(text.decode()), media_type=CONTENT_TYPE)

    streams = APIRouter(dependencies=[Depends(require_token_or_query)])

    @streams.get(
        "/api/events",
        response_class=EventSourceResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def event_stream(
        request: Request,
        goal: str | None = Query(None, description="Only this goal's events."),
        last_event_id: int | None = Query(None, ge=0, description="Resume after this id."),
        token: str | None = Query(None, description="The token, for an EventSource."),
    ) -> EventSourceResponse:
        """The event log as server-sent events: replayed after the resume point, then live."""
        header = request.headers.get("last-event-id", "").strip()
        after = last_event_id or 0
        if header:
            if not header.isdigit():
                raise Problem(422, f"Last-Event-ID must be an event id, not {header!r}")
            after = int(header)
        goal_id = None
        if goal:
            found = await asyncio.to_thread(host.store.get_goal, goal)
            if found is None:
                raise not_found(f"no goal {goal!r}")
            goal_id = found.id
        cursor = await events.start_after(host.hub, after)
        return EventSourceResponse(
            events.stream(host.hub, goal_id=goal_id, after=cursor),
            ping=host.ping,
            ping_message_factory=events.ping,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    sockets = APIRouter()  # each socket checks the token itself (blitz.server.voice)
    voice.routes(sockets, host)
    api.include_router(public)
    api.include_router(private)
    api.include_router(streams)
    api.include_router(sockets)
    return api


# -- the dashboard's files ---------------------------------------------------------------------


async def _dashboard(request: Request) -> Response | None:
    """The dashboard for a GET outside the API: a file of the build, else its index.html (the
    client routes), else a page saying how to build it. None: a real 404."""
    path = request.url.path
    if request.method not in ("GET", "HEAD") or path in ("/api", "/metrics"):
        return None
    if path.startswith("/api/"):
        return None
    index = STATIC / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT)
    relative = path.lstrip("/")
    if relative:
        root = STATIC.resolve()
        candidate = (root / relative).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            return FileResponse(candidate)
        if "." in relative.rsplit("/", 1)[-1]:
            return None  # a missing asset, not a client route
    return FileResponse(index, headers={"Cache-Control": "no-cache"})


# -- health and login ----------------------------------------------------------------------------


def _public_routes(router: APIRouter, host: Host) -> None:
    @router.get("/api/health", response_model=HealthOut)
    def health() -> HealthOut:
        """Whether the daemon is up (no token needed)."""
        return HealthOut(status="draining" if host.draining else "ok", version=VERSION)

    @router.post("/api/login", status_code=204)
    def login(body: LoginIn) -> Response:
        """Check the token and keep it in an HttpOnly cookie (what an EventSource sends)."""
        auth.verify(host.tokens, body.token)
        response = Response(status_code=204)
        response.set_cookie(auth.COOKIE, body.token, httponly=True, samesite="strict", path="/")
        return response

    @router.post("/api/logout", status_code=204)
    def logout() -> Response:
        response = Response(status_code=204)
        response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="strict")
        return response


# -- breakers ------------------------------------------------------------------------------------


def _breaker_routes(router: APIRouter, host: Host) -> None:
    async def current() -> dict[str, BreakerOut]:
        stored = await asyncio.to_thread(host.store.load_breakers)
        board = host.engine.breakers
        now = board.clock.monotonic()
        found = {r.key: BreakerOut.of(r, None) for r in stored}
        for breaker in board.all():  # this process's live view wins over the stored one
            retry_at = breaker.retry_at()
            found[breaker.key] = BreakerOut.of(
                breaker.to_record(), None if retry_at is None else max(0.0, retry_at - now)
            )
        return dict(sorted(found.items()))

    @router.get("/api/breakers", response_model=list[BreakerOut])
    async def list_breakers() -> list[BreakerOut]:
        return list((await current()).values())

    @router.post("/api/breakers/reset", response_model=BreakerOut)
    async def reset_breaker(body: BreakerResetIn) -> BreakerOut:
        """Close a breaker by hand (the cause is fixed); waiting work starts again."""
        if body.key not in await current():
            raise not_found(f"no breaker {body.key!r}")
        record = host.engine.reset_breaker(body.key)
        await host.store.flush()
        return BreakerOut.of(record, None)
