"""The Slack side of the daemon: a slack-bolt (async) app over the listeners and the thread
keeper, reached two ways.

- HTTP events at ``POST /slack/events`` when ``SLACK_SIGNING_SECRET`` is set: bolt checks the
  request's v0 signature and its timestamp (5-minute window) before anything else runs; a request
  that fails is answered 401 and changes nothing.
- Socket Mode when ``SLACK_APP_TOKEN`` is set: bolt's ``AsyncSocketModeHandler`` opens the
  WebSocket Slack's ``apps.connections.open`` names and acknowledges each envelope.

Both may run at once; each delivery is taken once (:mod:`~.listeners`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp

from blitz import background
from blitz.integrations.slack import delivery
from blitz.integrations.slack.listeners import Listeners
from blitz.integrations.slack.settings import SlackSettings
from blitz.integrations.slack.threads import ThreadKeeper
from blitz.redact import register_secret

if TYPE_CHECKING:
    from blitz.server.host import Host

log = logging.getLogger("blitz.slack")

EVENTS_PATH = "/slack/events"

CONNECT_BACKOFF_MAX = 60.0
"""The most seconds between two tries at connecting Socket Mode."""


class SlackBridge:
    """Slack for one daemon (``host``); ``settings.enabled`` must hold."""

    def __init__(self, host: Host, settings: SlackSettings) -> None:
        assert settings.bot_token is not None
        for secret in settings.secrets():
            register_secret(secret)  # never in a log, an event, the store or a response
        self.host = host
        self.settings = settings
        self.web = delivery.client(
            settings.bot_token.get_secret_value(),
            base_url=settings.api_url,
            backoff=settings.retry_backoff,
        )
        self.delivery = delivery.Delivery(self.web)
        self.keeper = ThreadKeeper(host.store, self.delivery, interval=settings.update_interval)
        signing = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
        self.bolt = AsyncApp(
            client=self.web,
            signing_secret=signing,
            request_verification_enabled=bool(signing),
            logger=logging.getLogger("blitz.slack.bolt"),
            name="blitz",
        )
        Listeners(host, settings, self.delivery, self.keeper).register(self.bolt)
        self._http = AsyncSlackRequestHandler(self.bolt) if signing else None
        self._socket: AsyncSocketModeHandler | None = None
        self._connecting: asyncio.Task[None] | None = None

    @property
    def modes(self) -> list[str]:
        """How Slack reaches this daemon: ``http``, ``socket``, or both."""
        found = ["http"] if self._http is not None else []
        return found + (["socket"] if self.settings.app_token is not None else [])

    def mount(self, api: FastAPI) -> None:
        """Add ``POST /slack/events`` to the daemon's API (HTTP mode). Slack's signature is its
        authentication, not the daemon's token."""
        if self._http is None:
            return
        handler = self._http

        async def slack_events(request: Request) -> Response:
            return await handler.handle(request)

        api.add_api_route(EVENTS_PATH, slack_events, methods=["POST"], include_in_schema=False)

    async def start(self) -> None:
        """Follow the threads (catching up the open ones) and connect Socket Mode."""
        self.host.hub.observers.append(self.keeper.observe)
        await self.keeper.start()
        if self.settings.app_token is not None:
            self._socket = AsyncSocketModeHandler(
                self.bolt, self.settings.app_token.get_secret_value(), web_client=self.web
            )
            self._connecting = asyncio.get_running_loop().create_task(self._connect(self._socket))
        log.info("Slack: %s", " and ".join(self.modes))

    async def _connect(self, socket: AsyncSocketModeHandler) -> None:
        """Connect Socket Mode, trying again with backoff while Slack cannot be reached or
        refuses (the daemon serves meanwhile; the client reconnects by itself once connected)."""
        wait = 1.0
        while True:
            try:
                await socket.connect_async()
                return
            except Exception as exc:  # Slack's error or the network's: said, tried again
                log.error(
                    "Slack Socket Mode could not connect (%s); trying again in %g s", exc, wait
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, CONNECT_BACKOFF_MAX)

    async def stop(self) -> None:
        connecting, self._connecting = self._connecting, None
        await background.stop(connecting)
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        await self.keeper.stop()
        if self.keeper.observe in self.host.hub.observers:
            self.host.hub.observers.remove(self.keeper.observe)
