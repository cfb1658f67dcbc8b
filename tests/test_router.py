from __future__ import annotations

import pytest
from router_helpers import POLICY, ids, item, open_breaker

from blitz.breaker import BreakerBoard, backend_key, project_key
from blitz.domain import BreakerState
from blitz.router import Router
from blitz.testing.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def board(clock: ManualClock) -> BreakerBoard:
    return BreakerBoard(clock, default=POLICY)


def test_breaker_keys() -> None:
    assert item("t", project="p").breaker_keys == ("global", "project:p")
    assert item("t", project="p", backend="b").breaker_keys == (
        "global",
        "project:p",
        "backend:b",
    )


def test_priority_order_across_goals_fifo_among_equals(board: BreakerBoard) -> None:
    router = Router(board, global_limit=10)
    router.submit(item("low", goal="g1", priority=0))
    router.submit(item("first", goal="g2", priority=5))
    router.submit(item("high", goal="g3", priority=9, project="q"))
    router.submit(item("second", goal="g1", priority=5, project="q"))
    router.submit(item("low2", goal="g2", priority=0, backend="b"))
    assert ids(router.take()) == ["high", "first", "second", "low", "low2"]
    assert router.queued() == 0
    assert router.running() == 5
    assert router.take() == []


def test_a_later_better_item_overtakes(board: BreakerBoard) -> None:
    router = Router(board, global_limit=1)
    router.submit(item("a"))
    router.submit(item("b"))
    assert ids(router.take()) == ["a"]
    router.submit(item("urgent", priority=1))
    router.done(item("a"), outcome="succeeded")
    assert ids(router.take()) == ["urgent"]


def test_global_limit(board: BreakerBoard) -> None:
    router = Router(board, global_limit=2)
    for n in range(5):
        router.submit(item(f"t{n}", project=f"p{n}"))
    assert ids(router.take()) == ["t0", "t1"]
    assert router.take() == []
    router.done(item("t0", project="p0"), outcome="failed")
    assert ids(router.take()) == ["t2"]
    assert (router.running(), router.queued()) == (2, 2)


def test_project_limit(board: BreakerBoard) -> None:
    router = Router(board, global_limit=10)
    router.set_project_limit("p", 2)
    for n in range(4):
        router.submit(item(f"t{n}", backend="a" if n % 2 else "b"))
    assert ids(router.take()) == ["t0", "t1"]
    assert router.running_for("p") == 2
    assert router.take() == []
    router.done(item("t1", backend="a"), outcome="succeeded")
    assert ids(router.take()) == ["t2"]
    router.set_project_limit("p", 4)
    assert ids(router.take()) == ["t3"]


def test_lowering_a_limit_stops_nothing_but_starts_nothing(board: BreakerBoard) -> None:
    router = Router(board)
    for n in range(4):
        router.submit(item(f"t{n}"))
    router.set_project_limit("p", 3)
    assert len(router.take()) == 3
    router.set_project_limit("p", 1)
    router.done(item("t0"), outcome="succeeded")
    assert router.take() == []
    router.done(item("t1"), outcome="succeeded")
    router.done(item("t2"), outcome="succeeded")
    assert ids(router.take()) == ["t3"]


def test_limits_must_be_positive(board: BreakerBoard) -> None:
    with pytest.raises(ValueError):
        Router(board, global_limit=0)
    with pytest.raises(ValueError):
        Router(board).set_project_limit("p", 0)


def test_pause_and_resume(board: BreakerBoard) -> None:
    router = Router(board)
    router.submit(item("a1", project="a", priority=5))
    router.submit(item("b1", project="b"))
    router.pause_project("a")
    assert ids(router.take()) == ["b1"]
    router.submit(item("a2", project="a", priority=9))
    router.submit(item("b2", project="b"))
    assert ids(router.take()) == ["b2"]
    router.resume_project("a")
    assert ids(router.take()) == ["a2", "a1"]


def test_pausing_keeps_running_items_running(board: BreakerBoard) -> None:
    router = Router(board)
    router.submit(item("a1"))
    assert ids(router.take()) == ["a1"]
    router.pause_project("p")
    assert router.running_for("p") == 1
    router.done(item("a1"), outcome="succeeded")
    assert router.running() == 0


def test_no_head_of_line_blocking_across_projects(board: BreakerBoard) -> None:
    router = Router(board, global_limit=10)
    router.set_project_limit("busy", 1)
    for n in range(100):
        router.submit(item(f"busy{n}", project="busy", priority=10))
    router.submit(item("other", project="idle", priority=0))
    assert ids(router.take()) == ["busy0", "other"]
    router.submit(item("other2", project="idle"))
    assert ids(router.take()) == ["other2"]


def test_an_open_backend_breaker_holds_only_that_backends_items(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board)
    open_breaker(board, backend_key("flaky"))
    router.submit(item("f1", backend="flaky", priority=9))
    router.submit(item("s1", backend="steady"))
    router.submit(item("f2", backend="flaky", project="q", priority=9))
    assert ids(router.take()) == ["s1"]
    assert router.queued() == 2
    assert router.next_wakeup() == clock.monotonic() + 30


def test_open_breaker_items_wait_then_one_probe_then_the_rest(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board)
    for n in range(3):
        router.submit(item(f"t{n}", project="a"))
    router.submit(item("b1", project="b"))
    open_breaker(board, project_key("a"))
    assert ids(router.take()) == ["b1"]
    clock.advance(29)
    assert router.take() == []
    assert router.next_wakeup() == clock.monotonic() + 1
    clock.advance(1)
    assert ids(router.take()) == ["t0"], "half-open admits one probe"
    assert [c.new for c in board.poll()] == [BreakerState.HALF_OPEN]
    assert router.take() == []
    assert router.next_wakeup() is None, "waiting for the probe, not for the clock"
    changes = router.done(item("t0", project="a"), outcome="failed")
    assert [(c.key, c.new) for c in changes] == [("project:a", BreakerState.CLOSED)]
    assert ids(router.take()) == ["t1", "t2"]
    assert router.queued() == 0


def test_a_failed_probe_makes_items_wait_another_cooldown(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board)
    router.submit(item("t0"))
    router.submit(item("t1"))
    open_breaker(board, "global")
    clock.advance(30)
    assert ids(router.take()) == ["t0"]
    changes = router.done(item("t0"), outcome="crashed", error="provider down")
    assert [(c.key, c.old, c.new) for c in changes] == [
        ("global", "open", "half_open"),  # not polled yet, so reported first
        ("global", "half_open", "open"),
    ]
    assert router.take() == []
    assert router.next_wakeup() == clock.monotonic() + 30
    clock.advance(30)
    assert ids(router.take()) == ["t1"]


def test_a_cancelled_probe_gives_the_slot_back(board: BreakerBoard, clock: ManualClock) -> None:
    router = Router(board)
    router.submit(item("t0", backend="b"))
    router.submit(item("t1", backend="b", project="q"))
    open_breaker(board, backend_key("b"))
    clock.advance(30)
    assert ids(router.take()) == ["t0"]
    assert router.take() == []
    assert router.next_wakeup() is None
    assert router.done(item("t0", backend="b"), outcome="cancelled") == []
    assert board.get(backend_key("b")).state is BreakerState.HALF_OPEN
    assert router.next_wakeup() == clock.monotonic(), "the probe is free again: start now"
    assert ids(router.take()) == ["t1"]


def test_cancelling_a_non_probe_item_does_not_free_the_probe(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board)
    router.submit(item("early", backend="b"))
    assert ids(router.take()) == ["early"]  # started before the breaker opened
    router.submit(item("probe", backend="b"))
    router.submit(item("waiting", backend="b"))
    open_breaker(board, backend_key("b"))
    clock.advance(30)
    assert ids(router.take()) == ["probe"]
    router.done(item("early", backend="b"), outcome="cancelled")
    assert router.take() == [], "the probe is still out"


def test_crashes_open_breakers_and_failures_do_not(board: BreakerBoard) -> None:
    router = Router(board)
    for n in range(6):
        router.submit(item(f"t{n}", backend="b"))
    taken = router.take()
    assert router.done(taken[0], outcome="failed", error="tests failed") == []
    assert router.done(taken[1], outcome="failed", error="tests failed") == []
    assert router.done(taken[2], outcome="crashed", error="killed") == []
    changes = router.done(taken[3], outcome="crashed", error="killed")
    assert {(c.key, c.new) for c in changes} == {
        ("global", BreakerState.OPEN),
        ("project:p", BreakerState.OPEN),
        ("backend:b", BreakerState.OPEN),
    }
    assert board.get("global").last_error == "killed"


def test_withdraw_a_goal_or_one_task(board: BreakerBoard) -> None:
    router = Router(board, global_limit=1)
    router.submit(item("a1", goal="a"))
    router.submit(item("b1", goal="b", priority=3))
    router.submit(item("a2", goal="a", priority=7))
    router.submit(item("a3", goal="a", project="q"))
    assert ids(router.withdraw("b", "b1")) == ["b1"]
    assert router.withdraw("b", "b1") == []
    assert router.withdraw("nope") == []
    assert ids(router.take()) == ["a2"]
    assert ids(router.withdraw("a")) == ["a1", "a3"]
    assert router.queued() == 0
    router.done(item("a2", goal="a", priority=7), outcome="cancelled")
    assert router.take() == []
    router.submit(item("a1", goal="a"))  # a withdrawn task may come back
    assert ids(router.take()) == ["a1"]


def test_withdrawing_the_head_keeps_the_order(board: BreakerBoard) -> None:
    router = Router(board)
    router.submit(item("x", goal="x", priority=9))
    router.submit(item("y", goal="y", priority=1))
    router.submit(item("z", goal="z", priority=5, project="q"))
    router.withdraw("x")
    assert ids(router.take()) == ["z", "y"]


def test_withdrawn_items_of_a_blocked_lane_do_not_wake_anyone(
    board: BreakerBoard, clock: ManualClock
) -> None:
    router = Router(board)
    router.submit(item("t", backend="b"))
    open_breaker(board, backend_key("b"))
    assert router.take() == []
    assert router.next_wakeup() == clock.monotonic() + 30
    router.withdraw("g")
    assert router.next_wakeup() is None
    clock.advance(30)
    assert router.take() == []


def test_next_wakeup_is_none_without_waiting_items(board: BreakerBoard) -> None:
    router = Router(board)
    assert router.next_wakeup() is None
    open_breaker(board, "global")
    assert router.next_wakeup() is None


def test_duplicates_and_unknown_items_are_refused(board: BreakerBoard) -> None:
    router = Router(board)
    router.submit(item("t"))
    with pytest.raises(ValueError, match="already"):
        router.submit(item("t", priority=3))
    router.take()
    with pytest.raises(ValueError, match="already"):
        router.submit(item("t"))
    with pytest.raises(ValueError, match="not running"):
        router.done(item("other"), outcome="succeeded")
    with pytest.raises(ValueError, match="outcome"):
        router.done(item("t"), outcome="exploded")  # type: ignore[arg-type]
    router.done(item("t"), outcome="succeeded")
    with pytest.raises(ValueError, match="not running"):
        router.done(item("t"), outcome="succeeded")


def test_moves_a_hundred_thousand_items(board: BreakerBoard) -> None:
    # Not a timing assertion: a take() that scanned the queue would blow the test timeout.
    router = Router(board, global_limit=64)
    for project in range(50):
        router.set_project_limit(f"p{project}", 2)
    router.pause_project("p0")
    total = 100_000
    for n in range(total):
        router.submit(item(f"t{n}", project=f"p{n % 50}", goal=f"g{n % 7}", priority=n % 3))
    finished = 0
    while router.queued() > total // 50:  # p0's share stays paused
        batch = router.take()
        assert batch
        for started in batch:
            router.done(started, outcome="succeeded")
        finished += len(batch)
    assert finished == total - total // 50
    assert router.running() == 0
