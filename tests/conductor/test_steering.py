"""Steering a running engine: plan approval, retrying and skipping tasks (reopening an ended
goal), resuming a paused project, a daemon-style engine that takes goals while it runs, a gentle
shutdown that re-queues running work, and routing tasks by backend with a fallback.

Real git, real gates, the real SQLite store; the scripted planner and backend.
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
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    kinds,
    leftover_worktrees,
    make_repo,
    of_kind,
    task,
    wait_until,
    write,
)

from blitz.app import App
from blitz.breaker import backend_key
from blitz.domain import AttemptState, GoalState, Plan, TaskSpec, TaskState
from blitz.errors import UserError

pytestmark = pytest.mark.usefixtures("isolated_git")

GATE = {"test": "! grep -q bug value.txt", "timeout": 60}


def goal_state(app: App, goal_id: str) -> GoalState:
    goal = app.store.get_goal(goal_id)
    assert goal is not None
    return goal.state


# -- plan approval ------------------------------------------------------------------------------


APPROVAL_SCENARIO = {
    "tasks": [task("a"), task("b", "a")],
    "agent": {"a": [[write("a.txt", "a\n")]], "b": [[write("b.txt", "b\n")]]},
}


async def test_a_goal_waits_for_plan_approval_and_runs_once_approved(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(APPROVAL_SCENARIO)
    repo = make_repo(tmp_path, project={"require_plan_approval": True})
    project = await app.register(repo)
    assert project.require_plan_approval
    goal = await app.new_goal(project, "Two files")
    engine = app.engine(keep_alive=True)
    runner = asyncio.ensure_future(engine.run())
    engine.submit(project, goal)
    await wait_until(lambda: goal_state(app, goal.id) is GoalState.AWAITING_APPROVAL)
    await app.store.flush()
    # Nothing runs while it waits: the plan is stored, no attempt started.
    assert {t.id: t.state for t in app.store.load_tasks(goal.id)} == {
        "a": TaskState.PENDING,
        "b": TaskState.PENDING,
    }
    await asyncio.sleep(0.3)
    assert app.store.load_attempts(goal.id) == []
    with pytest.raises(UserError, match="no goal g-nope"):
        engine.approve("g-nope")

    engine.approve(goal.id)
    await wait_until(lambda: goal.id in engine.finished)
    engine.stop()
    await runner
    assert engine.finished[goal.id].state is GoalState.SUCCEEDED
    events = kinds(goal_events(app, goal.id))
    assert events.index("plan.awaiting_approval") < events.index("plan.approved")
    assert events.index("plan.approved") < events.index("task.started")
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("a",), ("b",)]
    with pytest.raises(UserError, match="not awaiting approval"):
        engine.approve(goal.id)


async def test_an_edited_plan_replaces_the_proposed_one(tmp_path: Path, apps: MakeApp) -> None:
    app = apps({**APPROVAL_SCENARIO, "agent": {"c": [[write("c.txt", "c\n")]]}})
    repo = make_repo(tmp_path, project={"require_plan_approval": True})
    project = await app.register(repo)
    goal = await app.new_goal(project, "Edited")
    engine = app.engine(keep_alive=True)
    runner = asyncio.ensure_future(engine.run())
    engine.submit(project, goal)
    await wait_until(lambda: goal_state(app, goal.id) is GoalState.AWAITING_APPROVAL)
    edited = Plan(summary="just c", tasks=(TaskSpec(id="c", title="Do c"),))
    engine.approve(goal.id, edited)
    await wait_until(lambda: goal.id in engine.finished)
    engine.stop()
    await runner
    assert engine.finished[goal.id].state is GoalState.SUCCEEDED
    assert [t.id for t in app.store.load_tasks(goal.id)] == ["c"]
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("c",)]
    assert "plan.edited" in kinds(goal_events(app, goal.id))


async def test_a_rejected_plan_cancels_the_goal_and_nothing_runs(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(APPROVAL_SCENARIO)
    repo = make_repo(tmp_path, project={"require_plan_approval": True})
    project = await app.register(repo)
    goal = await app.new_goal(project, "Rejected")
    engine = app.engine()
    engine.start(project, goal)
    runner = asyncio.ensure_future(engine.run())
    await wait_until(lambda: goal_state(app, goal.id) is GoalState.AWAITING_APPROVAL)
    engine.reject(goal.id, "too broad")
    finished = await runner
    assert finished[goal.id].state is GoalState.CANCELLED
    assert "too broad" in finished[goal.id].error
    assert app.store.load_attempts(goal.id) == []
    assert branch_commits(repo, goal.branch) == []


async def test_approval_by_a_stored_command_and_after_a_restart(
    tmp_path: Path, apps: MakeApp
) -> None:
    """A goal waiting for approval survives a restart; `blitz approve` from another process
    (a stored command) lets it run."""
    app = apps(APPROVAL_SCENARIO)
    repo = make_repo(tmp_path, project={"require_plan_approval": True})
    project = await app.register(repo)
    goal = await app.new_goal(project, "Restarted")
    first = app.engine(keep_alive=True)
    runner = asyncio.ensure_future(first.run())
    first.submit(project, goal)
    await wait_until(lambda: goal_state(app, goal.id) is GoalState.AWAITING_APPROVAL)
    await first.drain(1.0)
    await runner

    second = app.engine()
    stored = app.store.get_goal(goal.id)
    assert stored is not None
    await second.resume(stored)
    app.store.add_command(goal.id, "approve")
    finished = await asyncio.wait_for(second.run(), 60)
    assert finished[goal.id].state is GoalState.SUCCEEDED
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("a",), ("b",)]


# -- retry and skip -----------------------------------------------------------------------------

FAILING = {
    "tasks": [task("good"), task("bad"), task("after", "bad")],
    "agent": {
        "good": [[write("good.txt", "ok\n")]],
        "bad": [[write("value.txt", "bug\n")]],  # fails the gate on every attempt
        "after": [[write("after.txt", "after\n")]],
    },
    "recovery": {"bad": [{"root_cause": "writes a bug", "action": "retry", "guidance": "no"}]},
}


async def failed_goal(app: App, repo: Path) -> tuple[Any, Any]:
    project = await app.register(repo)
    goal = await app.new_goal(project, "Partly failing")
    engine = app.engine()
    engine.start(project, goal)
    finished = await engine.run()
    assert finished[goal.id].state is GoalState.FAILED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.FAILED
    assert tasks["after"].state is TaskState.SKIPPED
    return project, finished[goal.id]


async def test_skipping_the_failed_task_of_an_ended_goal_reopens_it_and_finishes_the_rest(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(FAILING)
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=GATE)
    _, goal = await failed_goal(app, repo)

    engine = app.engine()
    await engine.skip_task(goal.id, "bad")
    finished = await asyncio.wait_for(engine.run(), 60)
    assert finished[goal.id].state is GoalState.SUCCEEDED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.SKIPPED
    assert tasks["after"].state is TaskState.SUCCEEDED
    # The good task's commit is kept, not redone.
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("good",), ("after",)]
    events = kinds(goal_events(app, goal.id))
    assert "goal.reopened" in events
    assert_engine_invariants(app, repo, finished[goal.id])


async def test_retrying_a_failed_task_gives_it_new_attempts(tmp_path: Path, apps: MakeApp) -> None:
    scenario = dict(FAILING)
    # Attempts 1-2 write the bug; the third (after the person's retry) does it right.
    scenario["agent"] = {
        **FAILING["agent"],
        "bad": [
            [write("value.txt", "bug\n")],
            [write("value.txt", "bug again\n")],
            [write("value.txt", "fixed\n")],
        ],
    }
    app = apps(scenario)
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=GATE)
    _, goal = await failed_goal(app, repo)

    engine = app.engine()
    with pytest.raises(UserError, match="no task"):
        await engine.retry_task(goal.id, "nope")
    with pytest.raises(UserError, match="cannot be retried"):
        await engine.retry_task(goal.id, "good")
    await engine.retry_task(goal.id, "bad")
    finished = await asyncio.wait_for(engine.run(), 60)
    assert finished[goal.id].state is GoalState.SUCCEEDED
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [
        ("good",),
        ("bad",),
        ("after",),
    ]
    bad_attempts = app.store.load_attempts(goal.id, "bad")
    assert [a.state for a in bad_attempts][-1] is AttemptState.SUCCEEDED
    assert len(bad_attempts) == 3


async def test_a_task_of_a_running_goal_can_be_skipped(tmp_path: Path, apps: MakeApp) -> None:
    app = apps(
        {
            "tasks": [task("slow"), task("later", "slow"), task("dropped", "slow")],
            "agent": {
                "slow": [[{"sleep": 0.5}, write("slow.txt", "s\n")]],
                "later": [[write("later.txt", "l\n")]],
            },
        }
    )
    repo = make_repo(tmp_path)
    project = await app.register(repo)
    goal = await app.new_goal(project, "Skip one")
    engine = app.engine()
    engine.start(project, goal)
    runner = asyncio.ensure_future(engine.run())
    await wait_until(lambda: bool(engine.runs.get(goal.id) and engine.runs[goal.id].tasks))
    await engine.skip_task(goal.id, "dropped")
    with pytest.raises(UserError, match="only a pending, ready or failed task"):
        await engine.skip_task(goal.id, "dropped")
    finished = await asyncio.wait_for(runner, 60)
    assert finished[goal.id].state is GoalState.SUCCEEDED
    states = {t.id: t.state for t in app.store.load_tasks(goal.id)}
    assert states == {
        "slow": TaskState.SUCCEEDED,
        "later": TaskState.SUCCEEDED,
        "dropped": TaskState.SKIPPED,
    }


# -- the daemon's engine --------------------------------------------------------------------------


async def test_a_keep_alive_engine_takes_goals_while_it_runs_and_drains_gently(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(
        {
            "tasks": [task("one"), task("two")],
            "agent": {
                "one": [[write("one.txt", "1\n")]],
                "two": [[{"sleep": 30}, write("two.txt", "2\n")]],
            },
        }
    )
    repo = make_repo(tmp_path)
    project = await app.register(repo)
    engine = app.engine(keep_alive=True)
    runner = asyncio.ensure_future(engine.run())
    await asyncio.sleep(0.2)
    assert not runner.done()  # no goals, still running
    goal = await app.new_goal(project, "Submitted while running")
    engine.submit(project, goal)
    await wait_until(
        lambda: (
            any(t.state is TaskState.SUCCEEDED for t in app.store.load_tasks(goal.id))
            and any(t.state is TaskState.RUNNING for t in app.store.load_tasks(goal.id))
        )
    )
    await engine.drain(0.2)  # "two" sleeps for 30 s: interrupted and re-queued
    await asyncio.wait_for(runner, 10)
    await app.store.flush()
    states = {t.id: t.state for t in app.store.load_tasks(goal.id)}
    assert states["one"] is TaskState.SUCCEEDED
    assert states["two"] is TaskState.READY
    interrupted = app.store.load_attempts(goal.id, "two")
    assert [a.error for a in interrupted] == ["interrupted: blitz stopped"]
    assert leftover_worktrees(tmp_path / "home") == []
    assert goal_state(app, goal.id) is GoalState.RUNNING  # resumable, not cancelled


# -- routing ----------------------------------------------------------------------------------


async def test_tasks_route_to_the_fallback_backend_while_the_main_ones_breaker_is_open(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps({"tasks": [task("a")], "agent": {"a": [[write("a.txt", "a\n")]]}})
    agent = tmp_path / "agent.sh"
    agent.write_text("#!/bin/sh\nexit 3\n")
    agent.chmod(0o755)
    repo = make_repo(
        tmp_path,
        project={"backend": "flaky", "fallback_backend": "scripted"},
        sections={"backends.flaky": {"command": [str(agent), "{prompt}"]}},
    )
    project = await app.register(repo)
    assert project.fallback_backend == "scripted"
    goal = await app.new_goal(project, "Fallback")
    assert goal.backend == "flaky"
    engine = app.engine()
    breaker = engine.breakers.get(backend_key("flaky"))
    for _ in range(10):
        breaker.record_failure("down")
    assert not breaker.would_allow()
    engine.start(project, goal)
    finished = await asyncio.wait_for(engine.run(), 60)
    assert finished[goal.id].state is GoalState.SUCCEEDED
    attempts = app.store.load_attempts(goal.id)
    assert [a.backend for a in attempts] == ["scripted"]
    routed = of_kind(goal_events(app, goal.id), "task.routed")
    assert routed and "flaky" in routed[0].message


async def test_a_plan_can_send_one_task_to_another_backend(tmp_path: Path, apps: MakeApp) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import pathlib, sys\npathlib.Path('from_cli.txt').write_text(sys.argv[1][:20])\n"
    )
    app = apps(
        {
            "tasks": [task("a"), task("b", backend="mine")],
            "agent": {"a": [[write("a.txt", "a\n")]]},
        }
    )
    repo = make_repo(
        tmp_path,
        sections={"backends.mine": {"command": ["python3", str(agent), "{prompt}"]}},
    )
    project = await app.register(repo)
    goal = await app.new_goal(project, "Two backends")
    engine = app.engine()
    engine.start(project, goal)
    finished = await asyncio.wait_for(engine.run(), 60)
    assert finished[goal.id].state is GoalState.SUCCEEDED
    by_task = {a.task_id: a.backend for a in app.store.load_attempts(goal.id)}
    assert by_task == {"a": "scripted", "b": "mine"}
    assert (repo / "from_cli.txt").exists() is False  # written in the worktree, committed
    assert [c.tasks for c in branch_commits(repo, goal.branch)] in (
        [("a",), ("b",)],
        [("b",), ("a",)],
    )


async def test_an_unknown_backend_in_a_plan_fails_the_plan_with_the_known_names(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps({"tasks": [task("a", backend="nosuch")]})
    repo = make_repo(tmp_path)
    project = await app.register(repo)
    goal = await app.new_goal(project, "Bad backend")
    engine = app.engine()
    engine.start(project, goal)
    finished = await asyncio.wait_for(engine.run(), 60)
    assert finished[goal.id].state is GoalState.FAILED
    assert "unknown backend 'nosuch'" in finished[goal.id].error
    assert app.store.load_attempts(goal.id) == []


async def test_resuming_a_paused_project_lets_its_goal_run(tmp_path: Path, apps: MakeApp) -> None:
    app = apps({"tasks": [task("a")], "agent": {"a": [[write("a.txt", "a\n")]]}})
    repo = make_repo(tmp_path)
    project = await app.register(repo)
    goal = await app.new_goal(project, "Paused")
    engine = app.engine(keep_alive=True)
    engine.pause_project(project.id, "maintenance")
    runner = asyncio.ensure_future(engine.run())
    engine.submit(project, goal)
    await asyncio.sleep(0.5)
    assert app.store.load_attempts(goal.id) == []
    engine.resume_project(project.id)
    await wait_until(lambda: goal.id in engine.finished)
    engine.stop()
    await runner
    assert engine.finished[goal.id].state is GoalState.SUCCEEDED
    stored = app.store.get_project(project.id)
    assert stored is not None and not stored.paused


async def test_a_stored_request_that_does_not_apply_is_refused_in_the_log(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(APPROVAL_SCENARIO)
    repo = make_repo(tmp_path, project={"require_plan_approval": True})
    project = await app.register(repo)
    goal = await app.new_goal(project, "Refusals")
    engine = app.engine(keep_alive=True)
    runner = asyncio.ensure_future(engine.run())
    engine.submit(project, goal)
    await wait_until(lambda: goal_state(app, goal.id) is GoalState.AWAITING_APPROVAL)
    for kind in ("retry:nope", "skip:a", "frobnicate"):
        app.store.add_command(goal.id, kind)

    def refused() -> list[str]:
        return [e.message for e in of_kind(goal_events(app, goal.id), "command.refused")]

    await wait_until(lambda: len(refused()) == 3)
    engine.stop()
    await runner
    assert sorted(refused()) == [
        "`frobnicate` refused: unknown command 'frobnicate'",
        f"`retry:nope` refused: goal {goal.id} waits for its plan to be approved: approve it "
        "with an edited plan instead",
        f"`skip:a` refused: goal {goal.id} waits for its plan to be approved: approve it with "
        "an edited plan instead",
    ]
    assert app.store.load_attempts(goal.id) == []  # nothing started behind the approval
