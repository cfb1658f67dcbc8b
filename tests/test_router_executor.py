"""The router and an executor's breaker: every item is gated by the breaker of the executor that
runs it, which hears only whether an attempt reached the executor's cluster."""

from __future__ import annotations

from typing import Any

import pytest
from router_helpers import POLICY, ids, open_breaker

from blitz.breaker import BreakerBoard, executor_key
from blitz.domain import BreakerState
from blitz.router import Router, WorkItem
from blitz.testing.clock import ManualClock

RAY = executor_key("ray")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def board(clock: ManualClock) -> BreakerBoard:
    return BreakerBoard(clock, default=POLICY)


def on(task: str, project: str = "p", **extra: Any) -> WorkItem:
    return WorkItem(goal_id="g", task_id=task, project_id=project, executor="ray", **extra)


def down(router: Router, board: BreakerBoard, *tasks: str) -> None:
    """Start ``tasks`` and end each as an attempt the executor could not place."""
    for task in tasks:
        router.submit(on(task))
    for started in router.take():
        router.done(started, outcome="cancelled", error="cluster gone", reached=False)


def test_the_executors_breaker_gates_its_items_and_hears_their_outcome() -> None:
    work = on("t", backend="codex", provider="openai")
    assert RAY == "executor:ray"
    assert work.reported_keys == ("global", "project:p", "backend:codex", RAY)
    assert work.breaker_keys == (*work.reported_keys, "provider:openai")


def test_attempts_that_cannot_reach_the_cluster_open_only_the_executors_breaker(
    board: BreakerBoard,
) -> None:
    router = Router(board, global_limit=10)
    router.submit(on("a", backend="codex"))
    router.submit(on("b", backend="codex"))
    a, b = router.take()
    assert router.done(a, outcome="cancelled", error="cluster gone", reached=False) == []
    (change,) = router.done(b, outcome="cancelled", error="cluster gone", reached=False)
    assert (change.key, change.new) == (RAY, BreakerState.OPEN)
    assert board.get(RAY).last_error == "cluster gone"
    # Neither the work nor the rest of the machinery is at fault: nothing else counted it.
    for key in ("global", "project:p", "backend:codex"):
        assert board.get(key).state is BreakerState.CLOSED and board.get(key).failures == 0


def test_an_open_executor_breaker_holds_every_item_of_every_project(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    open_breaker(board, RAY)
    router.submit(on("a", priority=5))
    router.submit(on("b", project="q", backend="claude-code"))
    router.submit(on("c", project="r", provider="anthropic"))
    assert router.take() == []
    assert router.queued() == 3 and router.running() == 0
    assert router.next_wakeup() == board.get(RAY).retry_at()
    clock.advance(POLICY.cooldown - 1)
    assert router.take() == []


def test_a_probe_that_reaches_the_cluster_closes_the_breaker_and_lets_the_rest_start(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    open_breaker(board, RAY)
    for task in ("t0", "t1", "t2"):
        router.submit(on(task))
    clock.advance(POLICY.cooldown)
    (probe,) = router.take()  # half-open: one attempt finds out whether the cluster is back
    assert [c.new for c in board.poll()] == [BreakerState.HALF_OPEN]  # as the engine does
    assert router.take() == [] and router.queued() == 2
    # The work failed, but it ran on the cluster: the executor is back.
    (closed,) = router.done(probe, outcome="failed", reached=True)
    assert (closed.key, closed.new) == (RAY, BreakerState.CLOSED)
    assert ids(router.take()) == ["t1", "t2"]


def test_a_probe_that_cannot_reach_the_cluster_holds_the_rest_for_another_cooldown(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    open_breaker(board, RAY)
    router.submit(on("t0"))
    router.submit(on("t1"))
    clock.advance(POLICY.cooldown)
    (probe,) = router.take()
    board.poll()
    (reopened,) = router.done(probe, outcome="cancelled", error="still gone", reached=False)
    assert reopened.new is BreakerState.OPEN
    assert router.take() == []
    assert router.next_wakeup() == board.get(RAY).retry_at() == clock.monotonic() + POLICY.cooldown
    clock.advance(POLICY.cooldown)
    assert ids(router.take()) == ["t1"]


def test_a_crash_on_a_reached_cluster_is_the_machinerys_fault_not_the_executors(
    board: BreakerBoard,
) -> None:
    router = Router(board, global_limit=10)
    down(router, board, "a")  # one failure counted on the executor's breaker
    assert board.get(RAY).failures == 1
    router.submit(on("b"))
    (b,) = router.take()
    router.done(b, outcome="crashed", error="node died")  # reached: not said, so yes
    assert board.get("global").failures == 1 and board.get("project:p").failures == 1
    assert board.get(RAY).failures == 0  # the cluster was reached: the count starts over


def test_a_cancelled_attempt_gives_back_the_probe_it_held_and_no_other(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board, global_limit=10)
    router.submit(on("old"))
    (old,) = router.take()  # started before the breaker opened
    open_breaker(board, RAY)
    router.submit(on("probe"))
    router.submit(on("next"))
    clock.advance(POLICY.cooldown)
    (probe,) = router.take()
    # The old attempt is cancelled while the probe runs: the probe stays the only one.
    assert router.done(old, outcome="cancelled") == []
    assert router.take() == []
    # The probe is cancelled too (the user cancelled its goal): another item may probe.
    assert router.done(probe, outcome="cancelled") == []
    assert board.get(RAY).state is BreakerState.HALF_OPEN
    assert ids(router.take()) == ["next"]


def test_items_without_an_executor_are_not_gated_by_one(board: BreakerBoard) -> None:
    router = Router(board, global_limit=10)
    open_breaker(board, RAY)
    plain = WorkItem(goal_id="g", task_id="plain", project_id="p")
    assert plain.reported_keys == ("global", "project:p")
    router.submit(plain)
    router.submit(on("remote"))
    assert ids(router.take()) == ["plain"]
    # An attempt without an executor that could not run counts for nobody.
    assert router.done(plain, outcome="cancelled", reached=False) == []
    assert board.get("global").failures == 0
