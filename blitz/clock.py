"""Time as an interface, so cooldowns and timeouts can be tested without waiting.

The real :class:`SystemClock` reads the monotonic clock for durations and the wall clock for
timestamps that are stored. Tests use :class:`blitz.testing.clock.ManualClock`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes backwards. Use for durations."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch. Use for timestamps that are stored."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
