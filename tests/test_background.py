"""Stopping a background task: it has ended when the stop returns, its failure is raised, and
the stopper's own cancellation is not swallowed on the way."""

from __future__ import annotations

import asyncio

import pytest

from blitz import background


async def test_a_stopped_task_has_ended_and_none_is_nothing() -> None:
    task = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    await background.stop(task)
    assert task.cancelled()
    await background.stop(None)


async def test_a_task_that_failed_has_its_failure_raised() -> None:
    async def fails() -> None:
        raise ValueError("the watch broke")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="the watch broke"):
        await background.stop(task)


async def test_the_stopper_s_own_cancellation_goes_through() -> None:
    """A task slow to end (it cleans up after the cancel) and a stopper with a deadline: the
    deadline is kept. ``suppress(CancelledError)`` around ``await task`` swallowed it."""
    cleaned = asyncio.Event()

    async def slow_to_end() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.shield(asyncio.sleep(0.5))
            cleaned.set()

    task = asyncio.create_task(slow_to_end())
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await background.stop(task)
    assert not cleaned.is_set()
    await asyncio.wait([task])  # it ends in its own time
    assert cleaned.is_set()
