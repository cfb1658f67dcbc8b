"""A clock that moves only when told to."""

from __future__ import annotations

import asyncio


class ManualClock:
    """A :class:`blitz.clock.Clock` for tests: ``advance`` moves time; ``sleep`` waits for it."""

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall - start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        self._now += seconds
        still: list[tuple[float, asyncio.Future[None]]] = []
        for deadline, fut in self._sleepers:
            if deadline <= self._now:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((deadline, fut))
        self._sleepers = still

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, fut))
        await fut
