"""``GET /api/voice``: the voice session's WebSocket (docs/api.md, "Voice";
:mod:`blitz.voice.session`).

The token is checked as the API checks it (the bearer header, the dashboard's ``blitz_token``
cookie, which a browser sends on a same-origin WebSocket, or ``?token=``; the cookie only from
the daemon's own origin or one ``--cors-origin`` allows); without a valid one
the socket is accepted and closed at once with 1008 and the reason, which a browser can read
(a refused handshake tells it nothing). A session's speech clients share one connection pool;
the speech services and the model understanding are the daemon's settings. The
session needs the ``voice`` extra (its VAD and decoder); without it the socket closes with 1011
and says so.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
from fastapi import APIRouter, WebSocket

from blitz.server import auth
from blitz.server.problems import Problem
from blitz.speech.synthesize import Synthesizer
from blitz.speech.transcribe import Transcriber
from blitz.voice import frames, understanding

UNAVAILABLE = 1011

if TYPE_CHECKING:
    from blitz.server.host import Host


def routes(router: APIRouter, host: Host) -> None:
    stt, tts = host.app.settings.speech_endpoints()
    understand = understanding.for_app(host.app)

    @router.websocket("/api/voice")
    async def voice(socket: WebSocket) -> None:
        await socket.accept()
        try:
            await asyncio.to_thread(auth.verify, host.tokens, auth.presented(socket, query=True))
        except Problem as exc:
            reason = f"{exc.title}: send the daemon's token (bearer, cookie or ?token=)"
            await socket.close(code=frames.POLICY, reason=reason)
            return
        if not _same_origin(socket, host.cors_origins):
            reason = "the dashboard's cookie is taken only from the daemon's own pages"
            await socket.close(code=frames.POLICY, reason=reason)
            return
        if host.draining:
            await socket.close(code=frames.GOING_AWAY, reason="blitz is shutting down")
            return
        try:
            from blitz.voice.session import VoiceSession  # the voice extra
        except ImportError:
            await socket.close(code=UNAVAILABLE, reason="voice needs pip install 'blitz[voice]'")
            return
        async with httpx.AsyncClient() as client:  # one pool per session, both services
            session = VoiceSession(
                socket,
                host,
                transcriber=Transcriber(stt, client),
                synthesizer=Synthesizer(tts, client),
                understanding=understand,
            )
            await session.run()


def _same_origin(socket: WebSocket, allowed: tuple[str, ...]) -> bool:
    """Whether a socket signed in by the dashboard's cookie comes from the daemon's own pages
    (or an origin ``--cors-origin`` allows). A browser sends the cookie on a WebSocket from any
    page of the same site (another port of this host included), and a WebSocket has no CORS:
    without this, any local web page could talk to blitz. A bearer token or ``?token=`` is
    proof enough, and a client that is not a browser sends no ``Origin``."""
    header = socket.headers.get("authorization", "")
    if header.lower().startswith("bearer ") or auth.COOKIE not in socket.cookies:
        return True
    origin = socket.headers.get("origin")
    if origin is None:
        return True
    scheme = "https" if socket.url.scheme == "wss" else "http"
    own = f"{scheme}://{socket.headers.get('host', '')}"
    return origin in (own, *allowed)
