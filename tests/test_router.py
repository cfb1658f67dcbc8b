from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from router_helpers import POLICY, ids, item, open_breaker

from blitz.breaker import BreakerBoard, BreakerPolicy, backend_key, project_key, provider_key
from blitz.domain import BreakerState
from blitz.router import Router, WorkItem
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


# -- property: random operations never break a limit, lose or duplicate an item

PROJECTS = ("p1", "p2", "p3")
BACKENDS = ("", "a", "b")
PROVIDERS = ("", "x")
GOALS = ("g1", "g2")
GLOBAL_LIMIT = 4


class RouterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.board = BreakerBoard(self.clock, default=BreakerPolicy(threshold=2, cooldown=10))
        self.router = Router(self.board, global_limit=GLOBAL_LIMIT)
        self.limits = dict.fromkeys(PROJECTS, GLOBAL_LIMIT)
        self.paused: set[str] = set()
        self.queued: dict[tuple[str, str], tuple[int, WorkItem]] = {}  # -> (submission no, item)
        self.wakes: dict[tuple[str, str], float] = {}  # when an item told to wait may start
        self.running: dict[tuple[str, str], WorkItem] = {}
        self.finished: list[WorkItem] = []
        self.withdrawn: list[WorkItem] = []
        self.submitted: list[WorkItem] = []
        self.numbers = itertools.count()

    def order(self, key: tuple[str, str]) -> tuple[int, int]:
        number, queued = self.queued[key]
        return (-queued.priority, number)

    def blocked(self, queued: WorkItem) -> bool:
        provider = provider_key(queued.provider) if queued.provider else ""
        probing = (
            provider
            and self.board.get(provider).state is BreakerState.HALF_OPEN
            and any(r.provider == queued.provider for r in self.running.values())
        )
        return bool(
            queued.project_id in self.paused
            or self.router.running_for(queued.project_id) >= self.limits[queued.project_id]
            or not all(self.board.get(k).would_allow() for k in queued.breaker_keys)
            or probing
            or self.wakes.get((queued.goal_id, queued.task_id), 0.0) > self.clock.monotonic()
        )

    @rule(
        project=st.sampled_from(PROJECTS),
        backend=st.sampled_from(BACKENDS),
        goal=st.sampled_from(GOALS),
        priority=st.integers(0, 3),
        provider=st.sampled_from(PROVIDERS),
        wait=st.sampled_from([None, 5.0]),
    )
    def submit(
        self,
        project: str,
        backend: str,
        goal: str,
        priority: int,
        provider: str,
        wait: float | None,
    ) -> None:
        number = next(self.numbers)
        new = WorkItem(
            goal_id=goal,
            task_id=f"t{number}",
            project_id=project,
            priority=priority,
            backend=backend,
            provider=provider,
        )
        not_before = None if wait is None else self.clock.monotonic() + wait
        self.router.submit(new, not_before=not_before)
        if not_before is not None:
            self.wakes[(goal, new.task_id)] = not_before
        self.queued[(goal, new.task_id)] = (number, new)
        self.submitted.append(new)

    @rule()
    def take(self) -> None:
        taken = self.router.take()
        keys = [(t.goal_id, t.task_id) for t in taken]
        assert len(set(keys)) == len(keys), "taken twice"
        assert all(k in self.queued for k in keys), "taken but not queued"
        orders = [self.order(k) for k in keys]
        assert orders == sorted(orders), "taken out of order"
        now = self.clock.monotonic()
        assert all(self.wakes.get(k, 0.0) <= now for k in keys), "started before its time"
        for key, started in zip(keys, taken, strict=True):
            del self.queued[key]
            self.running[key] = started
        assert self.router.running() <= GLOBAL_LIMIT
        for project in {t.project_id for t in taken}:
            assert self.router.running_for(project) <= self.limits[project]
        # Nothing left behind could have started instead: no head-of-line blocking.
        global_full = self.router.running() >= GLOBAL_LIMIT
        for key, (_, waiting) in self.queued.items():
            if self.blocked(waiting):
                continue
            assert global_full, f"{waiting} could start but was left queued"
            assert all(self.order(key) > o for o in orders), f"{waiting} was passed over"

    @precondition(lambda self: bool(self.running))
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["succeeded", "failed", "crashed", "cancelled"]),
    )
    def done(self, data: st.DataObject, outcome: str) -> None:
        finished = self.running.pop(data.draw(st.sampled_from(sorted(self.running))))
        self.router.done(finished, outcome=outcome)  # type: ignore[arg-type]
        self.finished.append(finished)

    @rule(goal=st.sampled_from(GOALS), data=st.data())
    def withdraw(self, goal: str, data: st.DataObject) -> None:
        mine = sorted(k for k in self.queued if k[0] == goal)
        one = data.draw(st.none() | st.sampled_from(mine)) if mine else None
        removed = self.router.withdraw(goal, one[1] if one else None)
        expected = [k for k in mine if one is None or k == one]
        assert sorted((r.goal_id, r.task_id) for r in removed) == expected
        for key in expected:
            self.withdrawn.append(self.queued.pop(key)[1])

    @rule(project=st.sampled_from(PROJECTS), limit=st.integers(1, 3))
    def set_limit(self, project: str, limit: int) -> None:
        self.router.set_project_limit(project, limit)
        self.limits[project] = limit

    @rule(project=st.sampled_from(PROJECTS))
    def pause(self, project: str) -> None:
        self.router.pause_project(project)
        self.paused.add(project)

    @rule(project=st.sampled_from(PROJECTS))
    def resume(self, project: str) -> None:
        self.router.resume_project(project)
        self.paused.discard(project)

    @rule(ok=st.booleans())
    def provider_call(self, ok: bool) -> None:
        """A model call of provider x inside an attempt: admitted by, and reported to, its own
        breaker (the router only gates on it)."""
        probes = self.board.admit([provider_key("x")])
        if probes is not None:
            self.board.record([provider_key("x")], ok=ok, error="" if ok else "overloaded")

    @rule(seconds=st.sampled_from([1.0, 5.0, 10.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def counts_match(self) -> None:
        assert self.router.queued() == len(self.queued)
        assert self.router.running() == len(self.running)
        for project in PROJECTS:
            expected = sum(1 for r in self.running.values() if r.project_id == project)
            assert self.router.running_for(project) == expected

    def teardown(self) -> None:
        # Everything still queued comes out exactly once once nothing holds it back.
        for project in PROJECTS:
            self.router.resume_project(project)
        for breaker in self.board.all():
            breaker.reset()
        self.clock.advance(60)  # items told to wait are due
        for started in list(self.running.values()):
            self.router.done(started, outcome="succeeded")
            self.finished.append(started)
        while self.router.queued():
            batch = self.router.take()
            assert batch, "items stuck in the queue"
            for started in batch:
                self.router.done(started, outcome="succeeded")
            self.finished.extend(batch)
        seen = [(i.goal_id, i.task_id) for i in self.finished + self.withdrawn]
        assert len(seen) == len(set(seen)), "an item came out twice"
        assert set(seen) == {(s.goal_id, s.task_id) for s in self.submitted}, "an item was lost"


RouterMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_router_properties = RouterMachine.TestCase
