"""Single-flight calls: callers asking the same thing at once share one call, its answer and its
exception; a cancelled caller leaves it to the others; the last answer is kept when asked."""

from __future__ import annotations

import asyncio

import pytest

from blitz.executors.ray.flights import Flights


class Work:
    """A call that counts itself and waits to be let go."""

    def __init__(self, answer: object = "done", error: Exception | None = None) -> None:
        self.calls = 0
        self.go = asyncio.Event()
        self.answer, self.error = answer, error

    async def __call__(self) -> object:
        self.calls += 1
        await self.go.wait()
        if self.error is not None:
            raise self.error
        return self.answer


async def test_callers_asking_at_once_share_one_call() -> None:
    flights, work = Flights(), Work("bundle")
    callers = [asyncio.create_task(flights.once("bundle", ("p", "sha"), work)) for _ in range(5)]
    await asyncio.sleep(0)
    work.go.set()

    assert await asyncio.gather(*callers) == ["bundle"] * 5
    assert work.calls == 1


async def test_another_key_or_a_later_call_asks_again_unless_kept() -> None:
    flights, work = Flights(), Work()
    work.go.set()

    await flights.once("held", "n1", work)
    await flights.once("held", "n2", work)
    await flights.once("held", "n1", work)
    assert work.calls == 3  # nothing kept: each call after the last one ended runs again

    await flights.once("bundle", "a", work, keep=True)
    await flights.once("bundle", "a", work, keep=True)
    assert work.calls == 4
    await flights.once("bundle", "b", work, keep=True)  # the last kept is b's now
    await flights.once("bundle", "a", work, keep=True)
    assert work.calls == 6
    flights.forget("bundle")
    await flights.once("bundle", "a", work, keep=True)
    assert work.calls == 7


async def test_an_exception_reaches_every_caller_and_is_not_kept() -> None:
    flights, work = Flights(), Work(error=RuntimeError("the node is gone"))
    callers = [asyncio.create_task(flights.once("held", "n1", work, keep=True)) for _ in range(3)]
    await asyncio.sleep(0)
    work.go.set()

    said = await asyncio.gather(*callers, return_exceptions=True)

    assert [str(e) for e in said] == ["the node is gone"] * 3
    work.error = None
    assert await flights.once("held", "n1", work, keep=True) == "done"
    assert work.calls == 2


async def test_a_cancelled_caller_leaves_the_call_to_the_others() -> None:
    flights, work = Flights(), Work("bundle")
    first = asyncio.create_task(flights.once("bundle", "k", work))
    second = asyncio.create_task(flights.once("bundle", "k", work))
    await asyncio.sleep(0)

    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    work.go.set()

    assert await second == "bundle"
    assert work.calls == 1
