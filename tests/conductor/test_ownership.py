"""An engine and the leases of its goals (blitz/conductor/ownership.py), in this process over a
real SQL store and real repositories: it claims before it drives, releases what it finished, and
abandons a goal another process took over without writing to it again.

The other process is a second store on the same database with an owner of another host.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import pytest
import sqlalchemy as sa
from engine_helpers import (
    MakeApp,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    make_repo,
    task,
    wait_until,
    write,
)

from blitz import actions
from blitz.actions import GoalRequest
from blitz.conductor.ownership import GoalTaken
from blitz.domain import AttemptState, TaskState
from blitz.store.sql import SqlStore

pytestmark = pytest.mark.usefixtures("isolated_git")

QUICK = {"tasks": [task("a")], "agent": {"a": [[write("a.txt", "a\n")]]}}
HELD = {
    "tasks": [task("a")],
    "agent": {"a": [[{"run": "sleep 30"}, write("a.txt", "a\n")]]},
}
ELSEWHERE = "4242@another-host"  # another machine's process: assumed alive


def expire(store: SqlStore, goal_id: str) -> None:
    engine = sa.create_engine(store.url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE leases SET expires_at = 0 WHERE goal_id = :g"), {"g": goal_id})
    engine.dispose()


def snapshot(store: SqlStore, goal_id: str) -> tuple[object, ...]:
    return (
        store.get_goal(goal_id),
        store.load_tasks(goal_id),
        store.load_attempts(goal_id),
        len(store.events(limit=100_000)),
    )


async def test_a_goal_is_claimed_when_submitted_and_released_when_done(
    tmp_path: Path, apps: MakeApp
) -> None:
    app = apps(QUICK)
    engine = app.engine()
    submitted = await actions.new_goal(app, engine, make_repo(tmp_path), GoalRequest(title="x"))
    goal_id = submitted.goal.id
    lease = app.store.lease(goal_id)
    assert lease is not None and lease.owner == engine.ownership.owner and lease.epoch == 1
    assert app.store.get_goal(goal_id).runner == engine.ownership.owner  # type: ignore[union-attr]

    other = SqlStore(app.store.url)
    try:
        assert other.claim(goal_id, ELSEWHERE, 60).owner == engine.ownership.owner  # refused
        finished = await engine.run()
        assert finished[goal_id].state.value == "succeeded"
        released = other.lease(goal_id)
        assert released is not None and released.owner == "" and released.epoch == 1
        assert app.store.held() == set()
    finally:
        other.close()


async def test_resume_refuses_a_goal_another_process_holds(tmp_path: Path, apps: MakeApp) -> None:
    app = apps(HELD)
    driver = app.engine()
    submitted = await actions.new_goal(app, driver, make_repo(tmp_path), GoalRequest(title="x"))
    goal = submitted.goal
    # Another process: its own store on the same database, its own runner id.
    other = apps(HELD, home="other", database_url=app.store.url).engine()
    other.ownership.owner = ELSEWHERE
    with pytest.raises(GoalTaken, match=f"driven by another process \\({driver.ownership.owner}"):
        await other.resume(goal)
    assert other.runs == {}
    driver.cancel(goal.id)
    await driver.run()


async def test_resume_refuses_a_goal_this_engine_drives_and_the_goal_runs_once(
    tmp_path: Path, apps: MakeApp
) -> None:
    # A daemon looking for goals to take over read the lease of one submitted meanwhile: this
    # process's own, so it looked orphaned. Resumed again, the goal was planned twice and its
    # second plan queued tasks already queued: the engine failed and the daemon stopped (CI).
    app = apps(QUICK)
    engine = app.engine()
    submitted = await actions.new_goal(app, engine, make_repo(tmp_path), GoalRequest(title="x"))
    goal = submitted.goal
    run = engine.runs[goal.id]

    with pytest.raises(GoalTaken, match=f"goal {goal.id} is driven here already"):
        await engine.resume(goal)

    assert engine.runs[goal.id] is run
    finished = await engine.run()
    assert finished[goal.id].state.value == "succeeded"
    [attempt] = app.store.load_attempts(goal.id)
    assert attempt.state is AttemptState.SUCCEEDED


async def test_an_engine_whose_goal_was_taken_over_stops_driving_it_and_writes_nothing(
    tmp_path: Path, apps: MakeApp, hold_file: Path
) -> None:
    hold_file.touch()
    wait = f"while [ -e {shlex.quote(str(hold_file))} ]; do sleep 0.05; done"
    held = {"tasks": [task("a")], "agent": {"a": [[{"run": wait}, write("a.txt", "a\n")]]}}
    app = apps(held, lease_seconds=0.6)
    engine = app.engine()
    submitted = await actions.new_goal(app, engine, make_repo(tmp_path), GoalRequest(title="x"))
    goal_id = submitted.goal.id
    running = asyncio.ensure_future(engine.run())
    await wait_until(
        lambda: any(t.state is TaskState.RUNNING for t in app.store.load_tasks(goal_id))
    )
    other = SqlStore(app.store.url)
    try:
        expire(other, goal_id)
        taken = other.claim(goal_id, ELSEWHERE, 60)
        assert (taken.owner, taken.epoch) == (ELSEWHERE, 2)
        before = snapshot(other, goal_id)

        # The engine finds out at its next renewal or flush, cancels the attempt (its agent
        # still waits) and, with nothing else to drive, returns: the goal is not among those it
        # finished.
        finished = await asyncio.wait_for(running, 60)
        assert hold_file.exists()
        # Its cancelled attempt has unwound (its agent's process tree ended) before it returned:
        # nothing of it is left running (a daemon that exits leaves no agent behind).
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not left, left
        assert goal_id not in finished
        assert goal_id not in engine.runs
        assert app.store.lost() == {goal_id}
        assert snapshot(other, goal_id) == before  # nothing of the goal was written since
        [attempt] = other.load_attempts(goal_id)
        assert attempt.state is AttemptState.RUNNING  # as it was: the new owner settles it
        assert other.lease(goal_id) == taken
    finally:
        other.close()
