"""The notification route: how delivery goes, per sink (``blitz notify status``)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel

from blitz.integrations.notify.status import status

if TYPE_CHECKING:
    from blitz.server.host import Host


class SinkOut(BaseModel):
    sink: str  # scope:kind, e.g. "daemon:webhook", "project:web:slack"
    delivered: int
    pending: int  # being retried
    failed: int  # given up on: the sink kept failing, or refused in a way no retry fixes
    last_error: str


class NotificationsOut(BaseModel):
    sinks: list[SinkOut]
    waiting: int  # notifications not yet given to their sinks


def routes(router: APIRouter, host: Host) -> None:
    """Add the notification routes of docs/api.md to ``router``."""

    @router.get("/api/notifications", response_model=NotificationsOut)
    async def notifications() -> NotificationsOut:
        """How notification delivery goes, per sink."""
        found = await asyncio.to_thread(status, host.app.store.outbox)
        sinks = [SinkOut(**dataclasses.asdict(s)) for s in found.sinks]
        return NotificationsOut(sinks=sinks, waiting=found.waiting)
