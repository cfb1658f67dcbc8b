"""The flaky backend: reproducible draws, a success rate near p, candidates that draw apart, its
time taken from the clock, and the engine driving best-of-N and recovery through it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from blitz.backends.base import AgentRequest
from blitz.breaker import BreakerBoard
from blitz.clock import SystemClock
from blitz.conductor import Engine, Limits, Services
from blitz.domain import AttemptState, Goal, GoalState, Plan, Project, TaskSpec, Usage
from blitz.planner import FilePlanner
from blitz.router import Router
from blitz.store.sql import SqlStore
from blitz.testing.clock import ManualClock
from blitz.testing.flaky import FlakyBackend
from blitz.testing.scripted import ScriptedPlanner


def request(
    task: str = "t", *, goal: str = "g", attempt: int = 1, candidate: int = 0
) -> AgentRequest:
    return AgentRequest(
        goal_id=goal,
        goal="flaky",
        task_id=task,
        title=task,
        instructions="",
        worktree=Path("."),
        attempt=attempt,
        candidate=candidate,
    )


def test_the_same_request_and_seed_always_draw_the_same() -> None:
    requests = [request(f"t{i}", attempt=i % 3 + 1, candidate=i % 4) for i in range(200)]
    first = [FlakyBackend(p=0.5, seed=7).draw(r) for r in requests]
    again = [FlakyBackend(p=0.5, seed=7).draw(r) for r in requests]
    other_seed = [FlakyBackend(p=0.5, seed=8).draw(r) for r in requests]
    other_goal = [
        FlakyBackend(p=0.5, seed=7).draw(
            request(r.task_id, goal="h", attempt=r.attempt, candidate=r.candidate)
        )
        for r in requests
    ]
    assert first == again
    assert [d.ok for d in first] != [d.ok for d in other_seed]
    assert [d.ok for d in first] != [d.ok for d in other_goal]


def test_the_success_rate_is_close_to_p() -> None:
    for p in (0.1, 0.5, 0.9):
        backend = FlakyBackend(p=p, seed=3)
        draws = [backend.draw(request(f"t{i}")) for i in range(5000)]
        rate = sum(d.ok for d in draws) / len(draws)
        # Four standard deviations of a binomial proportion: fails by chance ~1 in 16,000.
        assert abs(rate - p) < 4 * (p * (1 - p) / len(draws)) ** 0.5, (p, rate)


def test_the_edges_of_p_always_fail_or_always_succeed() -> None:
    requests = [request(f"t{i}") for i in range(500)]
    assert not any(FlakyBackend(p=0.0).draw(r).ok for r in requests)
    assert all(FlakyBackend(p=1.0).draw(r).ok for r in requests)


def test_candidates_and_retries_of_one_task_draw_independently() -> None:
    backend = FlakyBackend(p=0.5, seed=1)
    tasks = [f"t{i}" for i in range(2000)]
    by_candidate = [[backend.draw(request(t, candidate=c)).ok for t in tasks] for c in (1, 2, 3)]
    retried = [backend.draw(request(t, attempt=2, candidate=1)).ok for t in tasks]
    # Independent fair draws agree about half the time; identical ones always would.
    for other in (by_candidate[1], by_candidate[2], retried):
        agree = sum(a == b for a, b in zip(by_candidate[0], other, strict=True)) / len(tasks)
        assert 0.45 < agree < 0.55, agree
    # So best of three rescues most tasks a single candidate fails.
    any_of_three = sum(map(any, zip(*by_candidate, strict=True))) / len(tasks)
    assert abs(any_of_three - 0.875) < 0.03, any_of_three


def test_durations_stay_within_the_bounds_and_spread_over_them() -> None:
    backend = FlakyBackend(p=0.5, duration=(0.02, 0.06))
    durations = [backend.draw(request(f"t{i}")).duration for i in range(2000)]
    assert all(0.02 <= d <= 0.06 for d in durations)
    assert min(durations) < 0.022 and max(durations) > 0.058
    assert abs(sum(durations) / len(durations) - 0.04) < 0.002


async def test_an_attempt_takes_its_duration_on_the_clock_and_reports_its_cost() -> None:
    clock = ManualClock()
    usage = Usage(input_tokens=100, output_tokens=10, cost_usd=0.03)
    backend = FlakyBackend(p=0.5, seed=2, duration=(1.0, 2.0), usage=usage, clock=clock)
    failing = next(r for r in (request(f"t{i}") for i in range(100)) if not backend.draw(r).ok)
    job = asyncio.ensure_future(backend.run(failing))
    await asyncio.sleep(0)
    clock.advance(0.99)
    await asyncio.sleep(0)
    assert not job.done()  # every duration is at least 1 s
    clock.advance(1.01)
    result = await asyncio.wait_for(job, 1)
    assert not result.ok and not result.crashed and not result.config_error
    assert "simulated failure" in result.error
    assert result.usage == usage  # wrong work is paid for too


async def test_a_passing_attempt_reports_success_and_its_cost() -> None:
    backend = FlakyBackend(p=1.0, duration=(0.0, 0.0))
    result = await backend.run(request(candidate=2))
    assert result.ok and "candidate 2" in result.summary
    assert result.usage.cost_usd == pytest.approx(0.01)


@pytest.mark.parametrize(
    "kwargs",
    [{"p": -0.1}, {"p": 1.5}, {"p": 0.5, "duration": (0.2, 0.1)}, {"p": 0.5, "duration": (-1, 1)}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FlakyBackend(**kwargs)  # type: ignore[arg-type]


async def run_goal(
    tmp_path: Path, backend: FlakyBackend, *, explore: int, limits: Limits
) -> tuple[Goal, SqlStore]:
    """One two-task goal through the real engine and SQLite store, without git."""
    store = SqlStore(f"sqlite:///{tmp_path / 'blitz.db'}")
    plan = Plan(
        summary="flaky",
        tasks=(
            TaskSpec(id="a", title="a", allow_empty=True),
            TaskSpec(id="b", title="b", depends_on=("a",), allow_empty=True),
        ),
    )
    project = Project(id="p-1", name="flaky", path=str(tmp_path))
    goal = Goal(id="g-1", project_id=project.id, title="flaky", explore=explore)
    store.write(project, goal)
    clock = SystemClock()
    board = BreakerBoard(clock)
    engine = Engine(
        store=store,
        clock=clock,
        router=Router(board),
        breakers=board,
        services=lambda _p, _g: Services(
            planner=FilePlanner(plan, ScriptedPlanner()),
            backend=backend,
            workspace=None,
            validator=None,
            limits=limits,
        ),
    )
    engine.start(project, goal, plan=plan)
    finished = await asyncio.wait_for(engine.run(), 30)
    return finished[goal.id], store


async def test_the_engine_keeps_the_winning_candidate_of_each_task(tmp_path: Path) -> None:
    backend = FlakyBackend(p=1.0, duration=(0.0, 0.01))
    goal, store = await run_goal(tmp_path, backend, explore=3, limits=Limits())
    try:
        assert goal.state is GoalState.SUCCEEDED
        tried = store.load_attempts(goal.id)
        assert sorted((a.task_id, a.candidate) for a in tried) == [
            (t, c) for t in "ab" for c in (1, 2, 3)
        ]
        assert sum(a.selected for a in tried) == 2
        assert store.usage(goal.id).cost_usd == pytest.approx(6 * 0.01)
    finally:
        await store.aclose()


async def test_failures_go_to_recovery_until_the_limits_say_stop(tmp_path: Path) -> None:
    backend = FlakyBackend(p=0.0, duration=(0.0, 0.0))
    goal, store = await run_goal(
        tmp_path, backend, explore=0, limits=Limits(max_recoveries_per_task=1)
    )
    try:
        assert goal.state is GoalState.FAILED
        tried = store.load_attempts(goal.id)
        # Task a fails, is retried once (the scripted planner's answer), fails again; b never runs.
        assert [(a.task_id, a.number, a.state) for a in tried] == [
            ("a", 1, AttemptState.FAILED),
            ("a", 2, AttemptState.FAILED),
        ]
    finally:
        await store.aclose()
