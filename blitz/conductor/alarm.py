"""The loop's alarm: one timer for the next poll or breaker retry, kept across steps while its
time stays the same, so an idle step costs no new timer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

SLACK = 0.001
"""Seconds the alarm may ring after the wanted time before it is set again."""


class Alarm:
    """Calls ``ring`` at (or a little before) the last time it was set for."""

    __slots__ = ("_handle", "_ring")

    def __init__(self, ring: Callable[[], None]) -> None:
        self._ring = ring
        self._handle: asyncio.TimerHandle | None = None

    def set(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Ring at ``deadline`` (loop time). An alarm that would ring early is kept: ringing
        early costs one idle step; ringing late would miss the deadline."""
        handle = self._handle
        if handle is None or handle.when() > deadline + SLACK:
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_at(deadline, self._rang)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _rang(self) -> None:
        self._handle = None
        self._ring()
