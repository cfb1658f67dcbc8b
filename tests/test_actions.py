"""The actions a person may take (blitz/actions.py), driven directly: a real SQL store, real
engines and real git repositories, with and without an engine in the calling process."""

from __future__ import annotations

import asyncio
import os
from functools import partial
from pathlib import Path

import pytest
from engine_helpers import (
    MakeApp,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    kinds,
    make_repo,
    task,
    wait_until,
    write,
)

from blitz import actions
from blitz.actions import Applied, Conflict, GoalRequest, NotFound, ProjectPaused
from blitz.app import App
from blitz.conductor import Engine
from blitz.domain import GoalState, TaskState
from blitz.errors import ConfigError, PlanError, RepositoryError, UserError
from blitz.planner import parse_plan

pytestmark = pytest.mark.usefixtures("isolated_git")

SCENARIO = {
    "tasks": [task("a"), task("b", "a")],
    "agent": {"a": [[write("a.txt", "a\n")]], "b": [[write("b.txt", "b\n")]]},
}

HELD = {
    "tasks": [task("a")],
    "agent": {"a": [[{"run": "sleep 30"}, write("a.txt", "a\n")]]},
}
"""A goal whose only task runs long enough to be steered."""


def state(app: App, goal_id: str) -> GoalState:
    goal = app.store.get_goal(goal_id)
    assert goal is not None
    return goal.state


async def running(app: App, repo: Path, title: str = "Work") -> tuple[Engine, str, asyncio.Future]:
    """A keep-alive engine of this process driving a new goal of ``repo``."""
    engine = app.engine(keep_alive=True)
    loop = asyncio.ensure_future(engine.run())
    submitted = await actions.new_goal(app, engine, repo, GoalRequest(title=title))
    return engine, submitted.goal.id, loop


async def stopped(engine: Engine, loop: asyncio.Future) -> None:
    engine.stop()
    await asyncio.wait_for(loop, 30)


# -- projects -----------------------------------------------------------------------------------


async def test_register_creates_once_and_reads_blitz_toml_every_time(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(SCENARIO)
    repo = make_repo(tmp_path)
    first = await actions.register(app, repo)
    again = await actions.register(app, repo)
    assert first.created and not again.created
    assert again.project.id == first.project.id and first.project.name == "repo"
    other = make_repo(tmp_path / "elsewhere")  # the same directory name: a new unique name
    assert (await actions.register(app, other)).project.name == "repo-2"
    with pytest.raises(RepositoryError, match="does not exist"):
        await actions.register(app, tmp_path / "nowhere")
    added = [e for e in app.store.events(after=0, limit=100) if e.kind.value == "project.added"]
    assert len(added) == 2


async def test_pause_and_resume_without_an_engine_write_the_store(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(SCENARIO)
    project = (await actions.register(app, make_repo(tmp_path))).project
    paused = await actions.pause(app, None, project.name, "release freeze")
    assert paused.paused and paused.pause_reason == "release freeze"
    with pytest.raises(ProjectPaused, match="resume it with `blitz projects resume repo`"):
        await actions.new_goal(app, app.engine(), Path(project.path), GoalRequest(title="x"))
    assert app.store.list_goals() == []
    resumed = await actions.resume(app, None, project.id)
    assert not resumed.paused and resumed.pause_reason == ""
    events = [(e.kind.value, e.message) for e in app.store.events(after=0, limit=100)]
    assert ("project.paused", "release freeze") in events and ("project.resumed", "") in events
    with pytest.raises(NotFound, match="no project 'nope'"):
        await actions.pause(app, None, "nope", "why")


async def test_pause_with_an_engine_goes_through_it(tmp_path: Path, apps: MakeApp) -> None:
    app = apps(SCENARIO)
    project = (await actions.register(app, make_repo(tmp_path))).project
    engine = app.engine()
    paused = await actions.pause(app, engine, project.id, "quota")
    assert paused.paused
    messages = [e.message for e in app.store.events(after=0, limit=100)]
    assert "repo paused: quota" in messages
    assert not (await actions.resume(app, engine, project.id)).paused


async def test_a_project_with_unfinished_goals_is_not_removed(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(HELD)
    repo = make_repo(tmp_path)
    engine, goal_id, loop = await running(app, repo)
    with pytest.raises(Conflict, match=rf"unfinished goals \({goal_id}\); cancel them first"):
        await actions.remove(app, None, "repo")
    with pytest.raises(Conflict, match="unfinished goals"):
        await actions.remove(app, engine, "repo")
    await actions.cancel(app, engine, goal_id, "done with it")
    await wait_until(lambda: goal_id in engine.finished)
    await stopped(engine, loop)
    removed = await actions.remove(app, None, "repo")
    assert app.store.get_project(removed.id) is None
    assert repo.is_dir()  # the repository itself is untouched


# -- new goals ----------------------------------------------------------------------------------


async def test_a_new_goal_runs_in_the_engine_it_is_submitted_to(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(SCENARIO)
    engine = app.engine()
    submitted = await actions.new_goal(app, engine, make_repo(tmp_path), GoalRequest(title="Two"))
    assert state(app, submitted.goal.id) is GoalState.PLANNING
    finished = await engine.run()
    assert finished[submitted.goal.id].state is GoalState.SUCCEEDED


async def test_a_new_goal_needs_a_planner_or_a_plan(tmp_path: Path, apps: MakeApp) -> None:
    app = apps({"agent": SCENARIO["agent"]})  # no scripted plan, no model
    repo = make_repo(tmp_path)
    with pytest.raises(ConfigError, match="send a plan"):
        await actions.new_goal(
            app, app.engine(), repo, GoalRequest(title="x"), no_planner_hint="send a plan"
        )
    bad = GoalRequest(title="x", plan=partial(parse_plan, {"tasks": [task("a", "a")]}))
    with pytest.raises(PlanError):
        await actions.new_goal(app, app.engine(), repo, bad)
    assert app.store.list_goals() == []
    plan = {"summary": "one", "tasks": [task("a")]}
    engine = app.engine()
    good = GoalRequest(title="planned by hand", plan=partial(parse_plan, plan))
    submitted = await actions.new_goal(app, engine, repo, good)
    assert (await engine.run())[submitted.goal.id].state is GoalState.SUCCEEDED
    with pytest.raises(UserError, match="the goal is empty"):
        await actions.new_goal(app, app.engine(), repo, GoalRequest(title="  ", plan=good.plan))


# -- cancel -------------------------------------------------------------------------------------


async def test_cancel_a_goal_nobody_drives_in_the_store(tmp_path: Path, apps: MakeApp) -> None:
    app = apps(SCENARIO)
    project = await app.register(make_repo(tmp_path))
    goal = await app.new_goal(project, "Left behind")  # written, never run
    done = await actions.cancel(app, None, goal.id[:6], "cancelled by `blitz cancel`")
    assert done.applied is Applied.STORE and done.goal.state is GoalState.CANCELLED
    assert state(app, goal.id) is GoalState.CANCELLED
    assert kinds(goal_events(app, goal.id))[-1] == "goal.cancelled"
    with pytest.raises(Conflict, match=rf"goal {goal.id} already ended \(cancelled\)"):
        await actions.cancel(app, None, goal.id, "again")
    with pytest.raises(NotFound, match="no goal 'g-nope'"):
        await actions.cancel(app, None, "g-nope", "why")


async def test_cancel_in_the_engine_that_drives_the_goal(tmp_path: Path, apps: MakeApp) -> None:
    app = apps(HELD)
    engine, goal_id, loop = await running(app, make_repo(tmp_path))
    await wait_until(
        lambda: any(t.state is TaskState.RUNNING for t in app.store.load_tasks(goal_id))
    )
    done = await actions.cancel(app, engine, goal_id, "cancelled from the API")
    assert done.applied is Applied.ENGINE
    await wait_until(lambda: goal_id in engine.finished)
    assert engine.finished[goal_id].state is GoalState.CANCELLED
    with pytest.raises(Conflict, match="already ended"):
        await actions.cancel(app, engine, goal_id, "again")
    await stopped(engine, loop)


async def test_cancel_is_queued_for_the_process_that_drives_the_goal(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(HELD)
    driver, goal_id, loop = await running(app, make_repo(tmp_path))
    goal = app.store.get_goal(goal_id)
    assert goal is not None and goal.runner.startswith(f"{os.getpid()}@")  # alive: this process
    # Another engine (the daemon's, say) and a CLI without one both leave it to its driver.
    bystander = app.engine()
    assert (await actions.cancel(app, bystander, goal_id, "x")).applied is Applied.QUEUED
    assert (await actions.cancel(app, None, goal_id, "y")).applied is Applied.QUEUED
    await wait_until(lambda: goal_id in driver.finished)
    assert driver.finished[goal_id].state is GoalState.CANCELLED
    await stopped(driver, loop)


# -- approve, reject, retry, skip ---------------------------------------------------------------


async def test_approve_checks_the_goal_waits_then_runs_it(tmp_path: Path, apps: MakeApp) -> None:
    app = apps(SCENARIO)
    repo = make_repo(tmp_path, project={"require_plan_approval": True})
    engine, goal_id, loop = await running(app, repo)
    await wait_until(lambda: state(app, goal_id) is GoalState.AWAITING_APPROVAL)
    edited = partial(parse_plan, {"tasks": [task("a")]})
    with pytest.raises(
        UserError, match="an edited plan is given to the process that drives the goal"
    ):
        await actions.approve(app, None, goal_id, edited)
    assert (await actions.approve(app, engine, goal_id, edited)).applied is Applied.ENGINE
    await wait_until(lambda: goal_id in engine.finished)
    assert engine.finished[goal_id].state is GoalState.SUCCEEDED
    await app.store.flush()
    assert [t.id for t in app.store.load_tasks(goal_id)] == ["a"]
    with pytest.raises(Conflict, match=f"goal {goal_id} is succeeded, not awaiting approval"):
        await actions.approve(app, engine, goal_id)
    await stopped(engine, loop)


async def test_approve_and_reject_without_an_engine_are_queued(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(SCENARIO)
    repo = make_repo(tmp_path, project={"require_plan_approval": True})
    engine, goal_id, loop = await running(app, repo)
    await wait_until(lambda: state(app, goal_id) is GoalState.AWAITING_APPROVAL)
    assert (await actions.reject(app, None, goal_id, "too broad")).applied is Applied.QUEUED
    await wait_until(lambda: goal_id in engine.finished)
    assert engine.finished[goal_id].state is GoalState.CANCELLED
    assert "too broad" in engine.finished[goal_id].error
    await stopped(engine, loop)


async def test_approve_without_an_engine_needs_a_process_driving_the_goal(
    tmp_path: Path, apps: MakeApp
) -> None:
    """Nothing takes up a goal that waits for approval by itself: with its planner gone, a
    queued approval would wait for ever, so it is refused with where to approve instead."""
    app = apps(SCENARIO)
    repo = make_repo(tmp_path, project={"require_plan_approval": True})
    engine, goal_id, loop = await running(app, repo)
    await wait_until(lambda: state(app, goal_id) is GoalState.AWAITING_APPROVAL)
    await stopped(engine, loop)
    with pytest.raises(UserError, match=f"no process drives goal {goal_id} now") as refused:
        await actions.approve(app, None, goal_id)
    assert f"blitz approve {goal_id} --server URL" in str(refused.value)
    assert app.store.take_commands([goal_id]) == []


async def test_retry_and_skip_name_a_task_of_a_goal_that_can_reopen(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(SCENARIO)
    engine = app.engine()
    submitted = await actions.new_goal(app, engine, make_repo(tmp_path), GoalRequest(title="t"))
    goal_id = submitted.goal.id
    assert (await engine.run())[goal_id].state is GoalState.SUCCEEDED
    with pytest.raises(NotFound, match=f"goal {goal_id} has no task 'zz'"):
        await actions.retry(app, engine, goal_id, "zz")
    with pytest.raises(Conflict, match=r"already ended \(succeeded\)"):
        await actions.skip(app, engine, goal_id, "a")
    queued = await actions.retry(app, None, goal_id, "a")  # left for whoever drives it
    assert queued.applied is Applied.QUEUED
    assert [c.kind for c in app.store.take_commands([goal_id])] == ["retry:a"]
