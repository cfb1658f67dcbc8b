"""The router and model providers: items gated by their provider's breaker, and items told to
wait until a time (a provider's Retry-After)."""

from __future__ import annotations

from typing import Any

import pytest
from router_helpers import POLICY, ids, item, open_breaker

from blitz.breaker import BreakerBoard
from blitz.domain import BreakerState
from blitz.router import Router, WorkItem
from blitz.testing.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def board(clock: ManualClock) -> BreakerBoard:
    return BreakerBoard(clock, default=POLICY)


def test_a_providers_breaker_gates_its_items_but_is_not_reported_to() -> None:
    provider = WorkItem(goal_id="g", task_id="t", project_id="p", backend="b", provider="anthropic")
    assert provider.breaker_keys == ("global", "project:p", "backend:b", "provider:anthropic")
    assert provider.reported_keys == ("global", "project:p", "backend:b")


def on(task: str, provider: str, **extra: Any) -> WorkItem:
    return WorkItem(goal_id="g", task_id=task, project_id="p", provider=provider, **extra)


def test_an_open_provider_breaker_holds_only_that_providers_items(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    open_breaker(board, "provider:anthropic")
    router.submit(on("claude", "anthropic", priority=9))
    router.submit(on("gpt", "openai"))
    router.submit(item("plain"))
    assert ids(router.take()) == ["gpt", "plain"]
    assert router.next_wakeup() == board.get("provider:anthropic").retry_at()
    clock.advance(POLICY.cooldown)
    (claude,) = router.take()
    # The attempt's model calls judge the provider; the router reports only to the others.
    router.done(claude, outcome="crashed", error="boom")
    assert board.get("provider:anthropic").state is BreakerState.HALF_OPEN
    assert board.get("global").failures == 1


def test_a_half_open_provider_runs_one_item_until_its_probe_is_decided(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    open_breaker(board, "provider:anthropic")
    for n in range(3):
        router.submit(on(f"t{n}", "anthropic"))
    clock.advance(POLICY.cooldown)
    (first,) = router.take()  # its model calls take the probe; the others would be refused
    assert router.take() == [] and router.queued() == 2
    assert board.admit(["provider:anthropic"]) == ["provider:anthropic"]  # the first's call
    board.record(["provider:anthropic"], ok=True)
    # The probe succeeded: the others start while the first still runs.
    assert ids(router.take()) == ["t1", "t2"]
    router.done(first, outcome="succeeded")


def test_a_failed_provider_probe_holds_the_rest_for_another_cooldown(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    open_breaker(board, "provider:anthropic")
    router.submit(on("t0", "anthropic"))
    router.submit(on("t1", "anthropic"))
    clock.advance(POLICY.cooldown)
    (first,) = router.take()
    board.admit(["provider:anthropic"])
    board.record(["provider:anthropic"], ok=False, error="overloaded")
    router.done(first, outcome="cancelled")
    assert router.take() == []
    assert router.next_wakeup() == board.get("provider:anthropic").retry_at()
    clock.advance(POLICY.cooldown)
    assert ids(router.take()) == ["t1"]


def test_an_item_told_to_wait_starts_only_once_its_time_is_over(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    router.submit(item("later", priority=9), not_before=clock.monotonic() + 90)
    router.submit(item("now"))
    # It waits without holding back its lane, and the engine is told when to look again.
    assert ids(router.take()) == ["now"]
    assert router.queued() == 1 and router.next_wakeup() == clock.monotonic() + 90
    clock.advance(89)
    assert router.take() == []
    clock.advance(1)
    assert ids(router.take()) == ["later"]
    assert router.next_wakeup() is None


def test_a_time_already_passed_does_not_make_an_item_wait(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    router.submit(item("t"), not_before=clock.monotonic() - 1)
    assert ids(router.take()) == ["t"]


def test_a_waiting_item_can_be_withdrawn_and_then_never_starts(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    router.submit(item("t"), not_before=clock.monotonic() + 30)
    assert ids(router.withdraw("g")) == ["t"]
    assert router.queued() == 0 and router.next_wakeup() is None
    clock.advance(60)
    assert router.take() == []
    router.submit(item("t"))  # queued once more, as a new item
    assert ids(router.take()) == ["t"]


def test_the_waits_of_a_goals_queued_items_can_be_read(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    router.submit(item("waits"), not_before=clock.monotonic() + 30)
    router.submit(item("ready"))
    assert router.waits("g") == {"waits": clock.monotonic() + 30}
    assert router.waits("other") == {}
    clock.advance(30)
    router.take()
    assert router.waits("g") == {}


def test_a_waiting_item_then_waits_for_its_providers_breaker(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    open_breaker(board, "provider:anthropic")  # open for the cooldown, 30 s
    router.submit(on("t", "anthropic"), not_before=clock.monotonic() + 10)
    clock.advance(10)
    assert router.take() == []
    assert router.next_wakeup() == board.get("provider:anthropic").retry_at()
    clock.advance(20)
    assert ids(router.take()) == ["t"]
