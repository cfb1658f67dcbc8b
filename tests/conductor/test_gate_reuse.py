"""Gate results are never computed twice, end to end: real repositories, real gates, the real
SQLite store shared by goals, by a restarted app, and by rebases onto validated trees."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import pytest
from engine_helpers import (
    MakeApp,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    make_repo,
    of_kind,
    run_one,
    start_goal,
    task,
    wait_until,
    write,
)

from blitz.domain import GoalState, TaskState
from blitz.events import EventKind

pytestmark = pytest.mark.usefixtures("isolated_git")


def _counting_gate(counter: Path, then: str = "true") -> str:
    """A gate that notes each run in ``counter``, outside the worktree (so it runs unconfined)."""
    return f"echo ran >> {shlex.quote(str(counter))}; test -f README.md; {then}"


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


SAME_WORK = {"tasks": [task("a")], "agent": {"a": [[write("a.txt", "a\n")]]}}


async def test_a_base_commit_and_a_tree_are_validated_once_across_goals_and_a_restart(
    tmp_path: Path, apps: MakeApp
) -> None:
    counter = tmp_path / "runs"
    repo = make_repo(
        tmp_path,
        gates={"test": _counting_gate(counter), "timeout": 60},
        sections={"sandbox": {"mode": "off"}},
    )
    first_app = apps(SAME_WORK)
    _, first = await run_one(first_app, repo, "First goal")
    assert first.state is GoalState.SUCCEEDED, first.error
    assert _runs(counter) == 2  # the baseline, and the attempt's tree
    await first_app.aclose()

    # A new app on the same home, as after a restart: the same base commit, and an agent that
    # makes the same tree.
    second_app = apps(SAME_WORK)
    _, second = await run_one(second_app, repo, "Second goal")
    assert second.state is GoalState.SUCCEEDED, second.error
    assert _runs(counter) == 2

    baseline = second_app.store.load_baseline(second.id)
    assert baseline is not None and [r.reused for r in baseline.results] == [True]
    events = goal_events(second_app, second.id)
    [recorded] = of_kind(events, EventKind.BASELINE_RECORDED)
    assert recorded.message == "base branch: all gates pass (reused)"
    [validated] = of_kind(events, EventKind.VALIDATION_PASSED)
    assert validated.message == "test: passed (reused)"
    [attempt] = second_app.store.load_attempts(second.id)
    assert [(g.name, g.passed, g.reused) for g in attempt.gates] == [("test", True, True)]


async def test_reuse_false_runs_the_gates_of_every_goal(tmp_path: Path, apps: MakeApp) -> None:
    counter = tmp_path / "runs"
    repo = make_repo(
        tmp_path,
        gates={"test": _counting_gate(counter), "timeout": 60, "reuse": False},
        sections={"sandbox": {"mode": "off"}},
    )
    app = apps(SAME_WORK)
    for title in ("First goal", "Second goal"):
        _, goal = await run_one(app, repo, title)
        assert goal.state is GoalState.SUCCEEDED, goal.error

    assert _runs(counter) == 4
    for goal in app.store.list_goals():
        [attempt] = app.store.load_attempts(goal.id)
        assert not any(g.reused for g in attempt.gates)


async def test_a_rebase_onto_an_already_validated_tree_is_not_validated_again(
    tmp_path: Path, apps: MakeApp, hold_file: Path
) -> None:
    repo = make_repo(tmp_path, gates={"test": "test -f README.md", "timeout": 60})
    # The first goal validates the tree of a then b, one after the other.
    in_order = {
        "tasks": [task("a"), task("b", "a")],
        "agent": {"a": [[write("a.txt", "a\n")]], "b": [[write("b.txt", "b\n")]]},
    }
    first_app = apps(in_order)
    _, first = await run_one(first_app, repo, "In order")
    assert first.state is GoalState.SUCCEEDED, first.error
    await first_app.aclose()

    # The second goal does the same work side by side: b waits until a is integrated, so b is
    # rebased onto a, which gives the tree the first goal validated.
    hold_file.touch()
    wait = f"while [ -e {shlex.quote(str(hold_file))} ]; do sleep 0.05; done"
    side_by_side = {
        "tasks": [task("a"), task("b")],
        "agent": {"a": [[write("a.txt", "a\n")]], "b": [[{"run": wait}, write("b.txt", "b\n")]]},
    }
    app = apps(side_by_side)
    engine = app.engine()
    started = await start_goal(app, engine, repo, "Side by side")
    running = asyncio.ensure_future(engine.run())
    tasks = lambda: {t.id: t.state for t in app.store.load_tasks(started.goal.id)}  # noqa: E731
    await wait_until(lambda: tasks().get("a") is TaskState.SUCCEEDED, timeout=60)
    hold_file.unlink()
    finished = await asyncio.wait_for(running, 120)
    second = finished[started.goal.id]
    assert second.state is GoalState.SUCCEEDED, second.error

    events = goal_events(app, second.id)
    b_validations = of_kind(events, EventKind.VALIDATION_PASSED, "b")
    # b alone (a tree never seen), then b rebased onto a (the first goal's final tree).
    assert [e.message for e in b_validations] == ["test: passed", "test: passed (reused)"]
    [attempt] = app.store.load_attempts(second.id, "b")
    assert [g.reused for g in attempt.gates] == [True]


async def test_goals_started_at_once_from_one_base_commit_run_its_baseline_once(
    tmp_path: Path, apps: MakeApp
) -> None:
    counter = tmp_path / "runs"
    repo = make_repo(
        tmp_path,
        # Slow enough that the goals' baselines overlap.
        gates={"test": _counting_gate(counter, "sleep 1"), "timeout": 60},
        sections={"sandbox": {"mode": "off"}},
    )
    app = apps(SAME_WORK)
    engine = app.engine()
    goals = [(await start_goal(app, engine, repo, f"Goal {n}")).goal for n in range(4)]
    finished = await engine.run()

    assert [finished[g.id].state for g in goals] == [GoalState.SUCCEEDED] * 4
    # One run on the base commit, one on the tree every goal's agent made: whichever goal got
    # there first ran it, and the others waited for its result or found it kept.
    assert _runs(counter) == 2
