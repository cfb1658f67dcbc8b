"""The router under random operations: a stateful Hypothesis machine checks that no limit is
broken and no item is lost or handed out twice."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from router_helpers import POLICY

from blitz.breaker import BreakerBoard, BreakerPolicy, provider_key
from blitz.domain import BreakerState
from blitz.router import Router, WorkItem
from blitz.testing.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def board(clock: ManualClock) -> BreakerBoard:
    return BreakerBoard(clock, default=POLICY)


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
