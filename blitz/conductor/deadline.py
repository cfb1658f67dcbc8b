"""Awaiting with a deadline, cheaply: an agent's run is bounded by the attempt's timeout, and a
run that finishes without ever suspending (a no-op backend, a cached answer) arms no timer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

_T = TypeVar("_T")


async def within(awaitable: Awaitable[_T], deadline: float) -> _T:
    """``async with asyncio.timeout_at(deadline): return await awaitable``, without arming a
    timer for a coroutine that finishes without ever suspending (a no-op backend, a cached
    answer). Its first step runs before the timeout is entered, which changes nothing: a
    timeout can only interrupt a coroutine where it suspends, and the deadline was fixed before
    that step, so a step that overruns it still ends in TimeoutError at the first suspension."""
    if not isinstance(awaitable, Coroutine):
        async with asyncio.timeout_at(deadline):
            return await awaitable
    try:
        pending = awaitable.send(None)
    except StopIteration as stop:
        result: _T = stop.value
        return result
    async with asyncio.timeout_at(deadline):
        return await _Resumed(awaitable, pending)


class _Resumed(Awaitable[_T]):
    """Awaiting it carries on a coroutine that was stepped by hand and suspended on ``pending``:
    what ``await`` does, for a coroutine whose first step already ran."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, _T], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, _T]:
        coro, pending = self._coro, self._pending
        self._pending = None
        while True:
            try:
                try:
                    sent = yield pending
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:  # cancellation and the like: the coroutine decides
                    pending = coro.throw(exc)
                else:
                    pending = coro.send(sent)
            except StopIteration as stop:
                result: _T = stop.value
                return result
