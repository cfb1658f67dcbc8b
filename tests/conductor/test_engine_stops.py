"""What stops or holds the engine's work, end to end: cancelling a goal, the circuit breaker,
a configuration error pausing the project, the goal's and the project's budgets. Real git
repositories, real gates, the real SQLite store, driven through :class:`blitz.app.App` by the
scripted planner and backend (tests/conductor/test_engine.py has the happy path).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (
    SHELL_GATE,
    MakeApp,
    assert_engine_invariants,
    branch_commits,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    kinds,
    leftover_worktrees,
    make_repo,
    of_kind,
    run_one,
    start_goal,
    task,
    write,
)

from blitz.app import App
from blitz.breaker import project_key
from blitz.conductor import Engine
from blitz.domain import (
    AttemptState,
    Goal,
    GoalState,
    TaskState,
)

pytestmark = pytest.mark.usefixtures("isolated_git")

# -- 12. cancelling -------------------------------------------------------------------------------

SLOW = {
    "tasks": [task("slow"), task("next", "slow")],
    "agent": {"slow": [[write("started.txt", "\n"), {"sleep": 30}, write("done.txt", "\n")]]},
}


async def _agent_working(app: App) -> None:
    """Wait until the slow task's agent has begun (and is asleep)."""
    while not any((w / "started.txt").exists() for w in leftover_worktrees(app.settings.home)):
        await asyncio.sleep(0.02)


async def _run_and_cancel(app: App, repo: Path, cancel: Callable[[Engine, Goal], None]) -> Goal:
    engine = app.engine()
    started = await start_goal(app, engine, repo)
    running = asyncio.ensure_future(engine.run())
    try:
        await asyncio.wait_for(_agent_working(app), 20)
        cancel(engine, started.goal)
        finished = await asyncio.wait_for(running, 20)
    finally:
        running.cancel()
    return finished[started.goal.id]


def _assert_cancelled(app: App, repo: Path, goal: Goal) -> None:
    assert goal.state is GoalState.CANCELLED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert {t.state for t in tasks.values()} == {TaskState.CANCELLED}
    (attempt,) = app.store.load_attempts(goal.id)
    assert attempt.state is AttemptState.CANCELLED
    assert kinds(goal_events(app, goal.id))[-1] == "goal.cancelled"
    assert branch_commits(repo, goal.branch) == []
    assert_engine_invariants(app, repo, goal)


async def test_cancel_stops_the_running_attempt(tmp_path: Path, apps: MakeApp) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE)
    app = apps(SLOW)

    def cancel(engine: Engine, goal: Goal) -> None:
        assert engine.cancel(goal.id)

    goal = await _run_and_cancel(app, repo, cancel)

    _assert_cancelled(app, repo, goal)
    assert goal.error == "cancelled by the user"


async def test_cancel_command_from_the_store_stops_the_goal(tmp_path: Path, apps: MakeApp) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE)
    app = apps(SLOW)

    goal = await _run_and_cancel(
        app, repo, lambda engine, goal: app.store.add_command(goal.id, "cancel")
    )

    _assert_cancelled(app, repo, goal)
    assert "blitz cancel" in goal.error


# -- 13. circuit breaker --------------------------------------------------------------------------


async def test_repeated_crashes_open_the_breaker_and_work_waits_for_the_cooldown(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(
        tmp_path,
        gates=SHELL_GATE,
        limits={"max_crash_retries": 5},
        breaker={"threshold": 2, "cooldown": 0.5},  # the default opens after 5, for 60 s
    )
    app = apps({
        "tasks": [task("flaky")],
        "agent": {"flaky": [[{"crash": "provider down"}], [{"crash": "provider down"}],
                            [write("flaky.txt", "ok\n")]]},
    })  # fmt: skip
    engine = app.engine()
    started = await start_goal(app, engine, repo)

    goal = (await engine.run())[started.goal.id]

    assert goal.state is GoalState.SUCCEEDED, goal.error
    (t,) = app.store.load_tasks(goal.id)
    assert t.state is TaskState.SUCCEEDED and t.attempts == 3
    key = project_key(started.project.id)
    every = app.store.events(limit=100_000)
    breaker = [e for e in every if e.kind.startswith("breaker.") and e.data.get("key") == key]
    assert kinds(breaker) == ["breaker.opened", "breaker.half_open", "breaker.closed"]
    starts = [e for e in every if e.kind == "task.started" and e.goal_id == goal.id]
    opened, half_open = breaker[0].id, breaker[1].id
    # Held back while open (waiting, never failed), then let through as the probe.
    assert [s.id < opened for s in starts] == [True, True, False]
    assert starts[2].id > half_open
    assert not [e for e in every if e.kind == "task.failed"]
    assert_engine_invariants(app, repo, goal)


# -- configuration errors pause the project ---------------------------------------------------


async def test_a_configuration_error_pauses_the_project_and_the_goal_resumes_after(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE)
    scenario = {
        "tasks": [task("one")],
        "agent": {
            "one": [
                [{"config_error": "the API key was rejected (401): check ANTHROPIC_API_KEY"}],
                [write("one.txt", "done\n")],
            ]
        },
    }
    app = apps(scenario)
    engine = app.engine(return_when_blocked=True)
    started = await start_goal(app, engine, repo)
    finished = await engine.run()

    # The run stopped for a person to act: nothing failed, the goal waits, the project is paused.
    assert started.goal.id not in finished
    assert "ANTHROPIC_API_KEY" in engine.blocked()[started.goal.id]
    await app.store.flush()
    project = app.store.get_project(started.project.id)
    assert project is not None and project.paused
    assert "API key was rejected" in project.pause_reason
    [one] = app.store.load_tasks(started.goal.id)
    assert one.state is TaskState.READY and one.recoveries == 0
    events = goal_events(app, started.goal.id)
    assert not of_kind(events, "task.failed") and not of_kind(events, "recovery.requested")
    paused = [e for e in app.store.events() if e.kind.value == "project.paused"]
    assert paused and "ANTHROPIC_API_KEY" in paused[-1].message

    # The user fixes the key and resumes the project; a new engine takes the goal over.
    app.store.write(dataclasses.replace(project, paused=False, pause_reason=""))
    await app.store.flush()
    resumed = app.engine()
    goal = app.store.get_goal(started.goal.id)
    assert goal is not None
    await resumed.resume(goal.evolve(runner=""))
    done = await resumed.run()
    assert done[started.goal.id].state is GoalState.SUCCEEDED
    assert_engine_invariants(app, repo, done[started.goal.id])


# -- budgets ------------------------------------------------------------------------------------


def spend(cost: float) -> dict[str, Any]:
    return {"spend": {"cost_usd": cost, "input": 1000, "output": 100, "cached": 500}}


async def test_reaching_the_goal_budget_stops_new_work(tmp_path: Path, apps: MakeApp) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE, budget={"goal_usd": 1.0}, max_parallel=1)
    app = apps({
        "tasks": [task("a"), task("b", "a"), task("c", "b")],
        "agent": {
            "a": [[spend(0.6), write("a.txt", "a\n")]],
            "b": [[spend(0.6), write("b.txt", "b\n")]],
            "c": [[spend(0.1), write("c.txt", "c\n")]],
        },
    })  # fmt: skip
    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.FAILED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["a"].state is TaskState.SUCCEEDED and tasks["b"].state is TaskState.SUCCEEDED
    assert tasks["c"].state is TaskState.SKIPPED and "budget" in tasks["c"].reason
    assert tasks["c"].attempts == 0  # it never started
    [exceeded] = of_kind(goal_events(app, goal.id), "budget.exceeded")
    assert "$1.00" in exceeded.message
    spent = app.store.usage(goal.id)
    assert spent.cost_usd == pytest.approx(1.2) and spent.cached_tokens == 1000
    assert_engine_invariants(app, repo, goal)


async def test_tasks_skipped_over_budget_skip_what_follows_them_once(
    tmp_path: Path, apps: MakeApp
) -> None:
    """A task skipped for the budget releases its dependents; each is skipped once (skipping
    one twice used to crash the engine)."""
    repo = make_repo(tmp_path, gates=SHELL_GATE, budget={"goal_usd": 1.0}, max_parallel=1)
    app = apps({
        "tasks": [task("a"), task("b", "a"), task("c", "b"), task("d", "c")],
        "agent": {"a": [[spend(1.5), write("a.txt", "a\n")]]},
    })  # fmt: skip
    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.FAILED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert [tasks[t].state for t in "abcd"] == [TaskState.SUCCEEDED] + [TaskState.SKIPPED] * 3
    skipped = [e.task_id for e in of_kind(goal_events(app, goal.id), "task.skipped")]
    assert skipped == ["b", "c", "d"]
    assert_engine_invariants(app, repo, goal)


async def test_reaching_the_project_budget_pauses_the_project(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE, budget={"project_usd": 0.5}, max_parallel=1)
    app = apps({
        "tasks": [task("a"), task("b", "a")],
        "agent": {"a": [[spend(0.7), write("a.txt", "a\n")]], "b": [[write("b.txt", "b\n")]]},
    })  # fmt: skip
    engine = app.engine(return_when_blocked=True)
    started = await start_goal(app, engine, repo)
    finished = await engine.run()

    assert started.goal.id not in finished  # waiting for the user to raise the budget
    project = app.store.get_project(started.project.id)
    assert project is not None and project.paused and "project_usd" in project.pause_reason
    tasks = {t.id: t for t in app.store.load_tasks(started.goal.id)}
    assert tasks["a"].state is TaskState.SUCCEEDED and tasks["b"].attempts == 0
    assert app.store.project_usage(started.project.id).cost_usd == pytest.approx(0.7)
