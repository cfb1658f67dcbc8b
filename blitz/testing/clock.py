"""Clocks for tests: one that moves only when told to, one that runs faster than real time."""

from __future__ import annotations

import asyncio
import time


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


class WarpClock:
    """A :class:`blitz.clock.Clock` for end-to-end tests: real time sped up ``factor`` times.

    Waits on this clock (backoff, a provider's ``Retry-After``, a breaker's cooldown) pass
    ``factor`` times faster, in the order they would, while everything else (subprocesses,
    sockets, the event loop's own timeouts) runs at its real pace: a 90 s ``Retry-After`` passes
    in under a second of a test, without a test advancing time by hand."""

    def __init__(self, factor: float = 100.0) -> None:
        if not factor > 0:
            raise ValueError(f"a warp factor is positive, not {factor}")
        self.factor = factor
        self._start = time.monotonic()
        self._wall = time.time()

    def _elapsed(self) -> float:
        return (time.monotonic() - self._start) * self.factor

    def monotonic(self) -> float:
        return self._start + self._elapsed()

    def time(self) -> float:
        return self._wall + self._elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.factor)
