"""Best-of-N exploration through the engine: N candidates of a task in parallel worktrees, each
validated, the best one integrated, the others kept as refs, every candidate and the reason for
the winner recorded; first-that-passes mode; all candidates failing; explored tasks whose winners
conflict. Real git, real gates, the real SQLite store; the scripted planner and backend (a
candidate follows the scenario's ``<task>#<n>`` script).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (
    MakeApp,
    assert_engine_invariants,
    branch_commits,
    git,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    leftover_worktrees,
    make_repo,
    of_kind,
    write,
)

from blitz.app import App
from blitz.domain import AttemptState, GoalState, TaskState
from blitz.errors import UserError
from blitz.pr import describe

pytestmark = pytest.mark.usefixtures("isolated_git")

GATE = {"test": "! grep -q bug value.txt", "timeout": 60}


def spend(cost: float) -> dict[str, Any]:
    return {"spend": {"cost_usd": cost, "input": 100, "output": 10}}


async def run_goal(
    app: App, repo: Path, *, explore: int = 0, mode: str = "", title: str = "Explore"
) -> tuple[Any, Any]:
    project = await app.register(repo)
    goal = await app.new_goal(project, title, explore=explore, explore_mode=mode)
    engine = app.engine()
    engine.start(project, goal)
    finished = await asyncio.wait_for(engine.run(), 120)
    return goal, finished[goal.id]


async def test_the_best_passing_candidate_wins_and_the_others_are_kept_as_refs(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(
        {
            "tasks": [{"id": "fix", "title": "Fix the value"}],
            "agent": {
                "fix#1": [[write("value.txt", "bug\n"), spend(0.01)]],  # fails the gate
                "fix#2": [[write("value.txt", "fine\n" + "padding\n" * 30), spend(0.02)]],
                "fix#3": [[write("value.txt", "fine\n"), spend(0.03)]],  # smallest diff
            },
        }
    )
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=GATE)
    goal, finished = await run_goal(app, repo, explore=3)
    assert finished.state is GoalState.SUCCEEDED, finished.error

    attempts = app.store.load_attempts(goal.id, "fix")
    assert sorted(a.candidate for a in attempts) == [1, 2, 3]
    by_candidate = {a.candidate: a for a in attempts}
    assert by_candidate[3].selected and by_candidate[3].state is AttemptState.SUCCEEDED
    assert not by_candidate[1].selected and not by_candidate[2].selected
    assert by_candidate[1].state is AttemptState.FAILED
    assert by_candidate[2].state is AttemptState.FAILED
    assert "lost" in by_candidate[2].verdict and "diff" in by_candidate[2].verdict
    assert "won" in by_candidate[3].verdict

    # Exactly one commit for the task on the goal branch: the winner's content.
    commits = branch_commits(repo, goal.branch)
    assert [c.tasks for c in commits] == [("fix",)]
    assert git(repo, "show", f"{goal.branch}:value.txt") == "fine"
    # Every candidate's work is kept for inspection.
    refs = git(repo, "for-each-ref", "--format=%(refname)", f"refs/blitz/attempts/{goal.id}/")
    assert sorted(refs.splitlines()) == sorted(
        f"refs/blitz/attempts/{goal.id}/fix/{a.id}" for a in attempts
    )
    assert git(repo, "show", f"{by_candidate[1].ref}:value.txt") == "bug"

    explored = of_kind(goal_events(app, goal.id), "task.explored")
    assert len(explored) == 1
    data = explored[0].data
    assert data["winner"] == by_candidate[3].id
    assert {c["attempt"] for c in data["candidates"]} == {a.id for a in attempts}
    assert "fix" in explored[0].task_id

    # Budgets count every candidate.
    assert app.store.usage(goal.id).cost_usd == pytest.approx(0.06)
    assert leftover_worktrees(tmp_path / "home") == []
    assert_engine_invariants(app, repo, finished)

    # The PR description shows every candidate and why the winner won.
    text = describe(
        goal=finished,
        tasks=app.store.load_tasks(goal.id),
        attempts=app.store.load_attempts(goal.id),
        recoveries=(),
        scripted=True,
    )
    assert "Best of 3" in text
    for a in attempts:
        assert a.verdict.split(":")[0] in text


async def test_first_mode_takes_the_first_passing_candidate_and_cancels_the_rest(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(
        {
            "tasks": [{"id": "fix", "title": "Fix"}],
            "agent": {
                "fix#1": [[spend(0.05), {"sleep": 60}, write("value.txt", "slow\n")]],
                "fix#2": [[write("value.txt", "quick\n"), spend(0.01)]],
            },
        }
    )
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=GATE)
    goal, finished = await run_goal(app, repo, explore=2, mode="first")
    assert finished.state is GoalState.SUCCEEDED
    by_candidate = {a.candidate: a for a in app.store.load_attempts(goal.id, "fix")}
    assert by_candidate[2].selected
    assert by_candidate[1].state is AttemptState.CANCELLED
    assert git(repo, "show", f"{goal.branch}:value.txt") == "quick"
    # What the cancelled candidate spent before it was stopped still counts.
    assert by_candidate[1].usage.cost_usd == pytest.approx(0.05)
    assert app.store.usage(goal.id).cost_usd == pytest.approx(0.06)
    assert leftover_worktrees(tmp_path / "home") == []


async def test_when_every_candidate_fails_the_task_fails_with_each_reason_and_nothing_is_lost(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(
        {
            "tasks": [{"id": "fix", "title": "Fix"}],
            "agent": {
                "fix#1": [[write("value.txt", "bug one\n")]],
                "fix#2": [[{"fail": "I give up"}]],
            },
        }
    )
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=GATE)
    goal, finished = await run_goal(app, repo, explore=2)
    assert finished.state is GoalState.FAILED
    task = {t.id: t for t in app.store.load_tasks(goal.id)}["fix"]
    assert task.state is TaskState.FAILED
    assert "all 2 attempts failed" in task.reason
    assert "I give up" in task.reason
    attempts = app.store.load_attempts(goal.id, "fix")
    assert not any(a.selected for a in attempts)
    assert len(attempts) == 4  # two rounds: the first, and the retry recovery asked for
    kept = [a for a in attempts if a.ref]
    assert len(kept) == 2 and git(repo, "show", f"{kept[0].ref}:value.txt") == "bug one"
    assert branch_commits(repo, goal.branch) == []


async def test_a_plan_task_can_ask_for_its_own_number_of_attempts(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(
        {
            "tasks": [
                {"id": "plain", "title": "Plain"},
                {"id": "risky", "title": "Risky", "attempts": 2},
            ],
            "agent": {
                "plain": [[write("plain.txt", "p\n")]],
                "risky#1": [[write("risky.txt", "r1\n" * 5)]],
                "risky#2": [[write("risky.txt", "r2\n")]],
            },
        }
    )
    repo = make_repo(tmp_path)
    goal, finished = await run_goal(app, repo)
    assert finished.state is GoalState.SUCCEEDED
    attempts = app.store.load_attempts(goal.id)
    assert sorted((a.task_id, a.candidate) for a in attempts) == [
        ("plain", 0),
        ("risky", 1),
        ("risky", 2),
    ]
    assert git(repo, "show", f"{goal.branch}:risky.txt") == "r2"


async def test_winners_of_two_explored_tasks_that_conflict_are_rerun_not_lost(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(
        {
            "tasks": [{"id": "left", "title": "Left"}, {"id": "right", "title": "Right"}],
            "agent": {
                "left": [[write("shared.txt", "left\n")]],
                "right": [[{"sleep": 0.3}, write("shared.txt", "right\n")]],
            },
        }
    )
    repo = make_repo(tmp_path, files={"shared.txt": "start\n"})
    goal, finished = await run_goal(app, repo, explore=2)
    assert finished.state is GoalState.SUCCEEDED, finished.error
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["right"].conflicts == 1
    assert {c.tasks for c in branch_commits(repo, goal.branch)} == {("left",), ("right",)}
    assert of_kind(goal_events(app, goal.id), "checkpoint.conflict")


async def test_bad_exploration_settings_are_refused_before_the_goal_is_written(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps({"tasks": [{"id": "a", "title": "A"}]})
    repo = make_repo(tmp_path)
    project = await app.register(repo)
    with pytest.raises(UserError, match="between 1 and 10"):
        await app.new_goal(project, "Too many", explore=11)
    with pytest.raises(UserError, match='"all" or "first"'):
        await app.new_goal(project, "Bad mode", explore=2, explore_mode="fastest")
    with pytest.raises(UserError, match="unknown backend"):
        await app.new_goal(project, "Bad portfolio", explore=2, portfolio=["nosuch:model"])
    assert app.store.list_goals() == []
