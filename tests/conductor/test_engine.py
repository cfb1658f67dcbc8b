"""The engine end to end: real git repositories, real gates, the real SQLite store, driven through
:class:`blitz.app.App` by the scripted planner and backend.

Each test states a scenario (plan, what the agent does per attempt, what recovery answers), runs
the goal to its end and checks the store, the goal branch and the filesystem.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (
    UNITTEST,
    MakeApp,
    assert_engine_invariants,
    branch_commits,
    first_index,
    git,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    kinds,
    last_index,
    leftover_worktrees,
    make_repo,
    of_kind,
    run_one,
    sleeping_processes,
    snapshot,
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
    Plan,
    RecoveryAction,
    TaskSpec,
    TaskState,
)
from blitz.pr import pr_title
from blitz.testing.fake_github import FakeGitHub

pytestmark = pytest.mark.usefixtures("isolated_git")


SHELL_GATE = {"test": "test -f README.md", "timeout": 60}
NO_BUG_GATE = {"test": "! grep -q bug value.txt", "timeout": 60}
"""Passes on the base commit (value.txt says "start"), fails once a task writes "bug" into it."""


# -- the calculator repository --------------------------------------------------------------------

CALC = {
    "calc/__init__.py": "",
    "calc/core.py": "def add(a, b):\n    return a + b\n",
    "tests/__init__.py": "",
    "tests/test_core.py": (
        "import unittest\n\nfrom calc.core import add\n\n\n"
        "class AddTest(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n"
    ),
}


def operation(name: str, op: str, a: int, b: int, expected: int) -> list[list[dict[str, Any]]]:
    """One attempt writing calc/<name>.py and a unittest for it."""
    test = (
        f"import unittest\n\nfrom calc.{name} import {name}\n\n\n"
        f"class {name.title()}Test(unittest.TestCase):\n"
        f"    def test_{name}(self):\n        self.assertEqual({name}({a}, {b}), {expected})\n"
    )
    return [
        [
            write(f"calc/{name}.py", f"def {name}(a, b):\n    return a {op} b\n"),
            write(f"tests/test_{name}.py", test),
        ]
    ]


# -- 1. the happy path ----------------------------------------------------------------------------


async def test_parallel_tasks_commit_once_each_and_never_touch_the_checkout(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, files=CALC, gates={"test": UNITTEST, "timeout": 60})
    # The user's checkout has work in progress that blitz must neither use nor touch.
    (repo / "README.md").write_text("# repo\n\nhalf-written notes, not committed\n")
    (repo / "scratch.txt").write_text("untracked\n")
    checkout = snapshot(repo)
    status = git(repo, "status", "--porcelain")
    main = git(repo, "rev-parse", "main")
    app = apps({
        "summary": "Three operations, then the docs.",
        "tasks": [task("sub"), task("mul"), task("div"), task("docs", "sub", "mul", "div")],
        "agent": {
            "sub": operation("sub", "-", 5, 3, 2),
            "mul": operation("mul", "*", 3, 4, 12),
            "div": operation("div", "//", 8, 2, 4),
            "docs": [[{"append": {"path": "README.md", "content": "\n## Usage\n"}}]],
        },
    })  # fmt: skip

    _, goal = await run_one(app, repo, "Add operations", allow_dirty=True)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    assert app.store.get_goal(goal.id) == goal
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert {t.state for t in tasks.values()} == {TaskState.SUCCEEDED}
    assert all(t.attempts == 1 for t in tasks.values())

    commits = branch_commits(repo, goal.branch)
    assert sorted(t for c in commits for t in c.tasks) == ["div", "docs", "mul", "sub"]
    assert all(c.goals == (goal.id,) for c in commits)
    assert commits[-1].tasks == ("docs",)
    # The committed README is the one from main plus the task's edit: the dirty one never leaked.
    assert git(repo, "show", f"{goal.branch}:README.md") == "# repo\n\n## Usage"
    assert "scratch.txt" not in git(repo, "ls-tree", "-r", "--name-only", goal.branch)

    assert git(repo, "rev-parse", "main") == main
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert snapshot(repo) == checkout
    assert git(repo, "status", "--porcelain") == status

    events = goal_events(app, goal.id)
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    order = [
        first_index(events, "goal.created"),
        first_index(events, "plan.created"),
        first_index(events, "task.started"),
        first_index(events, "checkpoint.integrated"),
        last_index(events, "goal.succeeded"),
    ]
    assert order == sorted(order)
    assert kinds(events)[-1] == "goal.succeeded"
    assert sorted(e.task_id for e in of_kind(events, "task.succeeded")) == sorted(tasks)
    assert sorted(e.task_id for e in of_kind(events, "checkpoint.integrated")) == sorted(tasks)
    # The three independent tasks ran side by side; docs waited for all of them.
    first_finish = first_index(events, "attempt.finished")
    assert all(first_index(events, "task.started", t) < first_finish for t in ("sub", "mul", "div"))
    docs_start = first_index(events, "task.started", "docs")
    assert all(first_index(events, "task.succeeded", t) < docs_start for t in ("sub", "mul", "div"))
    for t in tasks.values():
        (attempt,) = app.store.load_attempts(goal.id, t.id)
        assert attempt.state is AttemptState.SUCCEEDED
        assert attempt.commit == t.commit
        assert [g.name for g in attempt.gates] == ["test"] and attempt.gates[0].passed
    assert_engine_invariants(app, repo, goal)


# -- 2-4. recovery --------------------------------------------------------------------------------


async def test_gate_failure_is_retried_with_guidance_and_the_root_cause_is_kept(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("value")],
        "agent": {"value": [[write("value.txt", "bug\n")], [write("value.txt", "fixed\n")]]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    (t,) = app.store.load_tasks(goal.id)
    assert t.state is TaskState.SUCCEEDED and t.attempts == 2 and t.recoveries == 1
    (recovery,) = app.store.load_recoveries(goal.id)
    assert recovery.task_id == "value" and recovery.action is RecoveryAction.RETRY
    assert recovery.root_cause.startswith("scripted: gate test failed")
    assert t.root_cause == recovery.root_cause
    assert "The previous attempt failed" in t.guidance and "gate test failed" in t.guidance
    first, second = app.store.load_attempts(goal.id, "value")
    assert first.state is AttemptState.FAILED and not first.gates[0].passed
    assert recovery.attempt_id == first.id
    assert second.state is AttemptState.SUCCEEDED and second.gates[0].passed
    assert git(repo, "show", f"{goal.branch}:value.txt") == "fixed"
    events = goal_events(app, goal.id)
    assert first_index(events, "recovery.planned", "value") < last_index(events, "task.started")
    assert_engine_invariants(app, repo, goal)


async def test_insert_recovery_runs_the_new_task_first_then_the_failed_one(
    tmp_path: Path, apps: MakeApp
) -> None:
    gate = {"test": "test ! -f feature.txt || test -f setup.txt", "timeout": 60}
    repo = make_repo(tmp_path, gates=gate)
    app = apps({
        "tasks": [task("feature"), task("after", "feature")],
        "agent": {
            "feature": [[write("feature.txt", "feature\n")]],  # the same on every attempt
            "setup": [[write("setup.txt", "setup\n")]],
            "after": [[write("after.txt", "after\n")]],
        },
        "recovery": {"feature": [{
            "root_cause": "feature.txt needs setup.txt", "action": "insert",
            "guidance": "setup.txt exists now", "tasks": [task("setup")],
        }]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["setup"].origin == "recovery:feature"
    assert tasks["feature"].depends_on == ("setup",)
    assert tasks["feature"].attempts == 2 and tasks["feature"].guidance == "setup.txt exists now"
    assert tasks["after"].attempts == 1
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [
        ("setup",),
        ("feature",),
        ("after",),
    ]
    events = goal_events(app, goal.id)
    (injected,) = of_kind(events, "task.injected")
    assert injected.task_id == "setup"
    # setup ran after feature failed, feature ran again after setup, after waited for feature.
    assert first_index(events, "task.failed", "feature") < first_index(
        events, "task.started", "setup"
    )
    assert first_index(events, "task.succeeded", "setup") < last_index(
        events, "task.started", "feature"
    )
    assert first_index(events, "task.succeeded", "feature") < first_index(
        events, "task.started", "after"
    )
    assert_engine_invariants(app, repo, goal)


async def test_replace_recovery_rewires_the_dependents_to_the_new_task(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("bad"), task("docs", "bad")],
        "agent": {
            "bad": [[write("value.txt", "bug\n")]],
            "fix": [[write("value.txt", "fixed\n")]],
            "docs": [[write("docs.txt", "docs\n")]],
        },
        "recovery": {"bad": [{
            "root_cause": "bad writes a bug", "action": "replace", "tasks": [task("fix")],
        }]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.REPLACED and tasks["bad"].reason == "replaced by fix"
    assert tasks["bad"].root_cause == "bad writes a bug"
    assert tasks["docs"].depends_on == ("fix",)
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("fix",), ("docs",)]
    events = goal_events(app, goal.id)
    assert first_index(events, "task.succeeded", "fix") < first_index(
        events, "task.started", "docs"
    )
    assert_engine_invariants(app, repo, goal)


async def test_skip_recovery_lets_the_dependents_go_on(tmp_path: Path, apps: MakeApp) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("bad"), task("docs", "bad")],
        "agent": {"bad": [[write("value.txt", "bug\n")]], "docs": [[write("docs.txt", "d\n")]]},
        "recovery": {"bad": [{"root_cause": "not worth it", "action": "skip"}]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.SKIPPED
    assert tasks["bad"].reason == "skipped by recovery: not worth it"
    assert tasks["docs"].state is TaskState.SUCCEEDED
    assert goal.state is GoalState.SUCCEEDED, goal.error
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("docs",)]
    assert of_kind(goal_events(app, goal.id), "task.skipped", "bad")
    assert_engine_invariants(app, repo, goal)


async def test_abort_recovery_fails_the_goal_and_cancels_running_work(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("bad"), task("slow"), task("later", "slow")],
        "agent": {
            "bad": [[write("value.txt", "bug\n")]],
            "slow": [[{"sleep": 30}, write("slow.txt", "slow\n")]],
        },
        "recovery": {"bad": [{"root_cause": "the goal is impossible", "action": "abort"}]},
    })  # fmt: skip

    _, goal = await asyncio.wait_for(run_one(app, repo), 20)

    assert goal.state is GoalState.FAILED
    assert "the goal is impossible" in goal.error
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["slow"].state is TaskState.CANCELLED
    assert tasks["later"].state is TaskState.CANCELLED
    (slow,) = app.store.load_attempts(goal.id, "slow")
    assert slow.state is AttemptState.CANCELLED
    assert branch_commits(repo, goal.branch) == []
    events = goal_events(app, goal.id)
    assert kinds(events)[-1] == "goal.failed"
    assert_engine_invariants(app, repo, goal)


# -- 5-7. failing for good ------------------------------------------------------------------------


async def test_exhausted_recoveries_block_the_dependents_and_fail_the_goal(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(
        tmp_path,
        files={"value.txt": "start\n"},
        gates=NO_BUG_GATE,
        limits={"max_recoveries_per_task": 1},  # the default is 2
    )
    retry = {"root_cause": "still buggy", "action": "retry", "guidance": "try harder"}
    app = apps({
        "tasks": [task("bad"), task("ok"), task("docs", "bad", "ok")],
        "agent": {"bad": [[write("value.txt", "bug\n")]], "ok": [[write("ok.txt", "ok\n")]]},
        "recovery": {"bad": [retry, retry, retry, retry]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.FAILED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.FAILED and tasks["bad"].attempts == 2
    assert len(app.store.load_recoveries(goal.id)) == 1
    assert tasks["ok"].state is TaskState.SUCCEEDED
    docs = tasks["docs"]
    assert docs.state is TaskState.SKIPPED and docs.attempts == 0
    assert docs.reason.startswith("blocked: ") and "'bad'" in docs.reason
    assert "bad" in goal.error and "docs" in goal.error
    events = goal_events(app, goal.id)
    assert of_kind(events, "recovery.exhausted", "bad")
    (deadlock,) = of_kind(events, "deadlock.detected")
    assert set(deadlock.data["blocked"]) == {"docs"}
    # The description is written even for a failed goal, and says what was left out.
    description = Path(goal.pr_url)
    assert description.is_file()
    assert "bad" in description.read_text() and "docs" in description.read_text()
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("ok",)]
    assert_engine_invariants(app, repo, goal)


async def test_a_task_that_changes_nothing_fails_unless_it_allows_that(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE, limits={"max_recoveries_per_task": 0})
    app = apps({
        "tasks": [task("noop"), task("look", allow_empty=True)],
        "agent": {"look": [[{"say": "all good, nothing to change"}]]},  # noop: no actions
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["noop"].state is TaskState.FAILED
    assert "changed no files" in tasks["noop"].reason
    (noop,) = app.store.load_attempts(goal.id, "noop")
    assert "changed no files" in noop.error
    look = tasks["look"]
    assert look.state is TaskState.SUCCEEDED and look.commit == ""
    assert goal.state is GoalState.FAILED
    assert branch_commits(repo, goal.branch) == []
    events = goal_events(app, goal.id)
    assert not of_kind(events, "checkpoint.integrated")
    assert of_kind(events, "task.succeeded", "look")[0].message == "succeeded (no change)"
    assert_engine_invariants(app, repo, goal)


async def test_crashes_are_retried_without_recovery_a_bounded_number_of_times(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE, limits={"max_crash_retries": 1})
    app = apps({
        "tasks": [task("flaky"), task("doomed")],
        "agent": {
            "flaky": [[{"crash": "backend died"}], [write("flaky.txt", "ok\n")]],
            "doomed": [[{"crash": "always down"}]],
        },
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    flaky, doomed = tasks["flaky"], tasks["doomed"]
    assert flaky.state is TaskState.SUCCEEDED and flaky.attempts == 2 and flaky.crashes == 0
    assert [a.state for a in app.store.load_attempts(goal.id, "flaky")] == [
        AttemptState.CRASHED,
        AttemptState.SUCCEEDED,
    ]
    assert doomed.state is TaskState.FAILED and doomed.attempts == 2
    assert doomed.reason == "crashed 2 times: always down"
    assert {a.state for a in app.store.load_attempts(goal.id, "doomed")} == {AttemptState.CRASHED}
    # Crashes are the machinery's fault: nobody asks the planner about them.
    assert app.store.load_recoveries(goal.id) == []
    events = goal_events(app, goal.id)
    assert not of_kind(events, "recovery.requested")
    assert of_kind(events, "task.crashed", "flaky")
    assert first_index(events, "task.requeued", "flaky") < last_index(
        events, "task.started", "flaky"
    )
    assert goal.state is GoalState.FAILED
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("flaky",)]
    assert_engine_invariants(app, repo, goal)


# -- 8-9. integration -----------------------------------------------------------------------------


async def test_a_conflicting_task_is_rerun_on_the_new_head(tmp_path: Path, apps: MakeApp) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "x = 0\n"}, gates=SHELL_GATE)
    app = apps({
        "tasks": [task("one"), task("two")],
        "agent": {  # both change the same line; on a re-run each adds its own file instead
            "one": [[write("value.txt", "x = 1\n")], [write("one.txt", "1\n")]],
            "two": [[write("value.txt", "x = 2\n")], [write("two.txt", "2\n")]],
        },
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    events = goal_events(app, goal.id)
    (conflict,) = of_kind(events, "checkpoint.conflict")
    loser = conflict.task_id
    winner = ({"one", "two"} - {loser}).pop()
    assert conflict.data["files"] == ["value.txt"]
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks[loser].attempts == 2 and tasks[loser].conflicts == 1
    assert tasks[winner].attempts == 1
    assert any("new goal branch head" in e.message for e in of_kind(events, "task.requeued", loser))
    assert not of_kind(events, "recovery.requested")
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [(winner,), (loser,)]
    assert git(repo, "show", f"{goal.branch}:value.txt") == f"x = {1 if winner == 'one' else 2}"
    assert git(repo, "show", f"{goal.branch}:{loser}.txt")
    assert_engine_invariants(app, repo, goal)


async def test_work_that_breaks_only_in_combination_fails_after_rebase(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(
        tmp_path,
        files=CALC,
        gates={"test": UNITTEST, "timeout": 60},
        limits={"max_recoveries_per_task": 0},
    )
    renamed_test = CALC["tests/test_core.py"].replace("add", "plus")
    double_test = (
        "import unittest\n\nfrom calc.double import double\n\n\n"
        "class DoubleTest(unittest.TestCase):\n"
        "    def test_double(self):\n        self.assertEqual(double(4), 8)\n"
    )
    app = apps({
        "tasks": [task("rename"), task("caller")],
        "agent": {
            "rename": [[
                write("calc/core.py", "def plus(a, b):\n    return a + b\n"),
                write("tests/test_core.py", renamed_test),
            ]],
            "caller": [[
                write("calc/double.py", "from calc.core import add\n\n\ndef double(x):\n"
                      "    return add(x, x)\n"),
                write("tests/test_double.py", double_test),
            ]],
        },
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.FAILED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    (failed,) = [t for t in tasks.values() if t.state is TaskState.FAILED]
    (succeeded,) = [t for t in tasks.values() if t.state is TaskState.SUCCEEDED]
    assert "passes alone but fails combined with work integrated meanwhile" in failed.reason
    (attempt,) = app.store.load_attempts(goal.id, failed.id)
    assert attempt.state is AttemptState.FAILED and not attempt.gates[0].passed
    # Validated again on the head it was rebased onto, which carries the other task's commit.
    assert attempt.base_sha == succeeded.commit
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [(succeeded.id,)]
    assert_engine_invariants(app, repo, goal)


# -- 10. a hanging gate ---------------------------------------------------------------------------


async def test_a_hanging_gate_times_out_and_leaves_no_process(
    tmp_path: Path, apps: MakeApp
) -> None:
    marker = f"600.{secrets.randbelow(10**9)}"  # a command line no other process has
    gate = {"test": f"test ! -f hang || sleep {marker}", "timeout": 2}
    repo = make_repo(tmp_path, gates=gate, limits={"max_recoveries_per_task": 0})
    app = apps({"tasks": [task("hang")], "agent": {"hang": [[write("hang", "\n")]]}})

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.FAILED
    (t,) = app.store.load_tasks(goal.id)
    assert t.state is TaskState.FAILED and "timed out" in t.reason
    (attempt,) = app.store.load_attempts(goal.id)
    assert attempt.gates[0].timed_out and attempt.gates[0].exit_code is None
    assert "timed out" in attempt.error
    assert sleeping_processes(marker) == []
    assert_engine_invariants(app, repo, goal)


# -- 11. several goals at once --------------------------------------------------------------------

ONE_TASK = {
    "tasks": [task("note")],
    "agent": {"note": [[{"sleep": 0.2}, write("note.txt", "note\n")]]},
}


async def test_two_goals_on_one_repository_run_on_separate_branches(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE)
    app = apps(ONE_TASK)
    engine = app.engine()
    first = await start_goal(app, engine, repo, "First goal")
    second = await start_goal(app, engine, repo, "Second goal")

    finished = await engine.run()

    assert set(finished) == {first.goal.id, second.goal.id}
    assert first.goal.branch != second.goal.branch
    for started in (first, second):
        goal = finished[started.goal.id]
        assert goal.state is GoalState.SUCCEEDED, goal.error
        (commit,) = branch_commits(repo, goal.branch)
        assert commit.goals == (goal.id,) and commit.tasks == ("note",)
        assert_engine_invariants(app, repo, goal)


async def test_goals_of_two_projects_run_in_one_engine(tmp_path: Path, apps: MakeApp) -> None:
    repos = [make_repo(tmp_path, name=name, gates=SHELL_GATE) for name in ("alpha", "beta")]
    app = apps(ONE_TASK)
    engine = app.engine()
    started = [await start_goal(app, engine, repo, f"Note in {repo.name}") for repo in repos]

    finished = await engine.run()

    assert started[0].project.id != started[1].project.id
    for repo, run in zip(repos, started, strict=True):
        goal = finished[run.goal.id]
        assert goal.state is GoalState.SUCCEEDED, goal.error
        assert goal.project_id == run.project.id
        assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("note",)]
        assert_engine_invariants(app, repo, goal)


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


# -- 14. the pull request -------------------------------------------------------------------------

TOKEN = "ghp_blitzTestToken0123456789abcdefABCDEF"


async def test_the_branch_is_pushed_and_one_pull_request_opened(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE)
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", "https://github.com/acme/calc.git")
    git(repo, "remote", "set-url", "--push", "origin", str(bare))

    with FakeGitHub(token=TOKEN) as github:
        app = apps(
            {"tasks": [task("note")], "agent": {"note": [[write("note.txt", "note\n")]]}},
            github_token=TOKEN,
            github_api_url=github.url,
        )
        _, goal = await run_one(app, repo, "Add a note")

    assert goal.state is GoalState.SUCCEEDED, goal.error
    assert git(bare, "rev-parse", f"refs/heads/{goal.branch}") == git(
        repo, "rev-parse", goal.branch
    )
    (pull,) = github.pulls
    assert goal.pr_url == pull["html_url"] == "https://github.com/acme/calc/pull/1"
    assert pull["head"]["ref"] == goal.branch and pull["base"]["ref"] == "main"
    assert pull["title"] == pr_title(goal)
    events = goal_events(app, goal.id)
    (written,) = of_kind(events, "pr.written")
    description = Path(written.data["path"]).read_text()
    assert description == pull["body"] + "\n"
    assert "Add a note" in pull["body"] and "Do note" in pull["body"]
    assert of_kind(events, "pr.pushed") and of_kind(events, "pr.opened")
    # The token reached GitHub and nothing else: not an event, not the store's files.
    for event in app.store.events(limit=100_000):
        assert TOKEN not in event.message + json.dumps(dict(event.data))
    assert_engine_invariants(app, repo, goal)
    await app.aclose()
    for path in app.settings.home.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


# -- 15. a rejected plan --------------------------------------------------------------------------


async def test_a_cyclic_plan_is_rejected_and_nothing_runs(tmp_path: Path, apps: MakeApp) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE)
    app = apps({"agent": {"a": [[write("a.txt", "a\n")]], "b": [[write("b.txt", "b\n")]]}})
    plan = Plan(
        summary="goes round",
        tasks=(
            TaskSpec(id="a", title="A", depends_on=("b",)),
            TaskSpec(id="b", title="B", depends_on=("a",)),
        ),
    )

    _, goal = await run_one(app, repo, plan=plan)

    assert goal.state is GoalState.FAILED
    assert "cycle: a -> b -> a" in goal.error
    events = goal_events(app, goal.id)
    (rejected,) = of_kind(events, "plan.rejected")
    assert "cycle: a -> b -> a" in rejected.message
    assert kinds(events)[-1] == "goal.failed"
    assert not of_kind(events, "task.started")
    assert app.store.load_tasks(goal.id) == []
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", "HEAD")
    if goal.branch and git(repo, "branch", "--list", goal.branch):
        assert branch_commits(repo, goal.branch) == []
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


async def test_without_scripted_answers_a_failing_task_stays_failed(
    tmp_path: Path, apps: MakeApp
) -> None:
    """The scripted planner retries once on its own; when that fails too it has no answer, so
    the task stays failed and the goal fails (it is not skipped into a success)."""
    repo = make_repo(tmp_path, gates=NO_BUG_GATE, limits={"max_recoveries_per_task": 5})
    app = apps({
        "tasks": [task("bad"), task("after", "bad")],
        "agent": {"bad": [[write("value.txt", "bug\n")]], "after": [[write("a.txt", "a\n")]]},
    })  # fmt: skip
    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.FAILED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.FAILED and tasks["bad"].attempts == 2
    assert tasks["after"].state is TaskState.SKIPPED and "bad" in tasks["after"].reason
    exhausted = of_kind(goal_events(app, goal.id), "recovery.exhausted", "bad")
    assert exhausted and "no further recovery" in exhausted[-1].message
