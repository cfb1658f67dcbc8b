"""The one retry and waiting policy of model calls, attempts and planning (blitz.waiting)."""

from __future__ import annotations

import asyncio

import pytest

from blitz.errors import RunError
from blitz.testing.clock import ManualClock
from blitz.waiting import Outage, RetryPolicy, wait_out


def test_backoff_doubles_up_to_the_limit_scaled_by_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 7, 8)] == [1.0, 2.0, 4.0, 60.0, 60.0]
    assert policy.backoff(3, jitter=0.0) == 2.0  # jitter scales into [0.5, 1)


def test_a_retry_after_up_to_max_delay_is_waited_inside_the_call_longer_ones_outside() -> None:
    policy = RetryPolicy(max_delay=60.0)
    assert policy.within_call(None) and policy.within_call(60.0)
    assert not policy.within_call(90.0)


def test_work_waits_the_providers_retry_after_of_any_length_else_the_next_backoff() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=60.0)
    assert policy.wait(90.0) == 90.0 and policy.wait(7200.0) == 7200.0 and policy.wait(0.5) == 0.5
    assert policy.wait(None) == policy.backoff(5) == 16.0


def test_an_outage_is_a_retryable_run_error_that_says_how_long() -> None:
    outage = Outage("rate limited", retry_after=30.0)
    assert isinstance(outage, RunError) and outage.retryable and outage.retry_after == 30.0
    assert Outage("down").retry_after is None


def test_policies_are_checked() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)


async def test_wait_out_waits_each_outage_out_then_returns_the_answer() -> None:
    clock = ManualClock()
    calls: list[float] = []
    waits: list[float] = []

    async def call() -> str:
        calls.append(clock.monotonic())
        if len(calls) < 3:
            raise Outage("rate limited", retry_after=90.0)
        return "plan"

    job = asyncio.ensure_future(
        wait_out(
            call,
            clock=clock,
            policy=RetryPolicy(),
            patience=None,
            on_wait=lambda outage, seconds: waits.append(seconds),
        )
    )
    for _ in range(2):
        await asyncio.sleep(0)
        clock.advance(90)
    assert await job == "plan"
    assert waits == [90.0, 90.0]
    assert [t - calls[0] for t in calls] == [0.0, 90.0, 180.0]


async def test_wait_out_gives_up_when_waiting_would_pass_its_patience() -> None:
    clock = ManualClock()

    async def call() -> str:
        raise Outage("rate limited", retry_after=3600.0)

    with pytest.raises(Outage, match="rate limited"):
        await wait_out(call, clock=clock, policy=RetryPolicy(), patience=1800.0)


async def test_wait_out_lets_other_errors_through_at_once() -> None:
    async def call() -> str:
        raise RunError("not an outage")

    with pytest.raises(RunError, match="not an outage"):
        await wait_out(call, clock=ManualClock(), policy=RetryPolicy(), patience=None)
