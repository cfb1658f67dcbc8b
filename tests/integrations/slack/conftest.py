"""Fixtures of the Slack tests: a fake Slack, and daemons with Slack in the test's loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_helpers import make_app
from slack_helpers import SECRET, Live

from blitz.integrations.slack.settings import SlackSettings
from blitz.server.auth import TokenStore
from blitz.server.daemon import Daemon, listen, url_of
from blitz.testing.fake_slack import FakeSlack

Start = Callable[..., Awaitable[Live]]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def live(tmp_path: Path, isolated_git: None, slack: FakeSlack) -> AsyncIterator[Start]:
    """Start daemons with Slack (HTTP events; ``socket=True``: Socket Mode instead) serving on
    127.0.0.1, in this test's loop; ``home`` names the data directory (the same one again: a
    restart)."""
    running: list[Live] = []

    async def start(
        scenario: dict[str, Any],
        *,
        home: str = "home",
        socket: bool = False,
        grace: float = 5,
        users: str = "",
        channels: str = "",
        **settings: Any,
    ) -> Live:
        app = make_app(tmp_path / home, scenario, **settings)
        tokens = TokenStore.of_home(tmp_path / home)
        token = tokens.rotate()
        slack_settings = SlackSettings(
            bot_token=slack.bot_token,
            signing_secret=None if socket else SECRET,
            app_token=slack.app_token if socket else None,
            api_url=slack.url,
            update_interval=0.05,
            retry_backoff=0.05,
            allowed_users=users,
            allowed_channels=channels,
        )
        daemon = Daemon(app, tokens=tokens, grace=grace, ping=0.2, poll=0.02, slack=slack_settings)
        sock = listen("127.0.0.1", 0)
        ready = asyncio.Event()
        task = asyncio.get_running_loop().create_task(
            daemon.serve(sock, ready=lambda _: ready.set(), signals=False)
        )
        await asyncio.wait_for(ready.wait(), 30)
        http = httpx.AsyncClient(
            base_url=url_of(sock), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        running.append(Live(daemon=daemon, url=url_of(sock), http=http, task=task, slack=slack))
        return running[-1]

    yield start
    for r in running:
        await r.stop()
