"""Fixtures of the daemon's tests: in-process daemons over real apps, stores and repositories."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_helpers import make_app
from server_helpers import Running

from blitz.clock import Clock
from blitz.server.auth import TokenStore
from blitz.server.daemon import Daemon, listen, url_of

Start = Callable[..., Awaitable[Running]]


def _daemon(
    home: Path, scenario: dict[str, Any] | None, clock: Clock | None = None, **settings: Any
) -> tuple[Daemon, str]:
    app = make_app(home, scenario or {}, clock=clock, **settings)
    tokens = TokenStore.of_home(home)
    token = tokens.rotate()
    return Daemon(app, tokens=tokens, grace=5, ping=0.2, poll=0.02), token


@pytest.fixture
async def serve(tmp_path: Path, isolated_git: None) -> AsyncIterator[Start]:
    """Start daemons in this test's loop, reached through httpx's ASGI transport."""
    running: list[Running] = []

    async def start(scenario: dict[str, Any] | None = None, **settings: Any) -> Running:
        daemon, token = _daemon(tmp_path / f"home-{len(running)}", scenario, **settings)
        await daemon.start()
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=daemon.api),
            base_url="http://blitz.test",
            headers={"Authorization": f"Bearer {token}"},
        )
        running.append(Running(daemon=daemon, token=token, http=http))
        return running[-1]

    yield start
    for r in running:
        await r.http.aclose()
        await r.daemon.stop(grace=0)
        await r.daemon.app.aclose()


@pytest.fixture
async def live(tmp_path: Path, isolated_git: None) -> AsyncIterator[Start]:
    """Start daemons serving HTTP with uvicorn on 127.0.0.1 (a free port), in this test's loop,
    their app on ``clock`` when given. ``Running.http`` is a real HTTP client with the token."""
    running: list[Running] = []

    async def start(
        scenario: dict[str, Any] | None = None, clock: Clock | None = None, **settings: Any
    ) -> Running:
        daemon, token = _daemon(tmp_path / f"home-{len(running)}", scenario, clock, **settings)
        sock = listen("127.0.0.1", 0)
        ready = asyncio.Event()
        task = asyncio.get_running_loop().create_task(
            daemon.serve(sock, ready=lambda _: ready.set(), signals=False)
        )
        await asyncio.wait_for(ready.wait(), 30)
        http = httpx.AsyncClient(
            base_url=url_of(sock),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0),
        )
        running.append(Running(daemon=daemon, token=token, http=http, tasks=[task]))
        return running[-1]

    yield start
    for r in running:
        await r.http.aclose()
        r.daemon.request_stop()
        for task in r.tasks:
            assert await asyncio.wait_for(task, 60) == 0
