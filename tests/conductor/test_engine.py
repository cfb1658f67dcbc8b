"""The engine end to end: real git repositories, real gates, the real SQLite store, driven through
:class:`blitz.app.App` by the scripted planner and backend.

Each test states a scenario (plan, what the agent does per attempt, what recovery answers), runs
the goal to its end and checks the store, the goal branch and the filesystem.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (
    CALC,
    SHELL_GATE,
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
    make_repo,
    of_kind,
    run_one,
    sleeping_processes,
    snapshot,
    start_goal,
    task,
    write,
)

from blitz.domain import (
    AttemptState,
    GoalState,
    Plan,
    TaskSpec,
    TaskState,
)
from blitz.pr import pr_title
from blitz.testing.fake_github import FakeGitHub

pytestmark = pytest.mark.usefixtures("isolated_git")


# -- the calculator repository --------------------------------------------------------------------


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
