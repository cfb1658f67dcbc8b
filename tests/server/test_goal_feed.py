"""Following a goal inside the daemon (blitz.server.goal_feed): its events from the store's log as
they are written, through the daemon's event hub, each batch with the goal's summary; from the
plan waiting for approval to the end (real daemon, engine, store and git)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from server_helpers import AGENT, PLAN, Running, make_repo

from blitz.domain import GoalState
from blitz.errors import NotFound
from blitz.events import EventKind
from blitz.goal_summary import Action
from blitz.server.goal_feed import GoalUpdate, follow_goal

pytestmark = pytest.mark.timeout(120)


async def test_a_goal_is_followed_from_its_plan_to_its_end_each_event_once(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(AGENT)
    repo = make_repo(tmp_path, toml="require_plan_approval = true\n")
    project = await r.add_project(repo)
    goal = await r.submit(project["id"], "Greet", plan=PLAN)
    updates: list[GoalUpdate] = []
    waited = []

    async def follow() -> None:
        async for update in follow_goal(r.daemon.hub, goal["id"]):
            updates.append(update)
            if update.summary.state is GoalState.AWAITING_APPROVAL and not waited:
                waited.append(update.summary)
                await r.json("POST", f"/api/goals/{goal['id']}/approve", 202)

    await asyncio.wait_for(follow(), 90)  # a bound for a hang, not a timing claim

    (asked,) = waited
    assert [s.action for s in asked.steps] == [Action.APPROVE, Action.REJECT]
    assert "the plan (3 tasks) waits for approval" in asked.line()
    last = updates[-1]
    assert last.ended and not any(u.ended for u in updates[:-1])
    assert EventKind.GOAL_SUCCEEDED in {e.kind for e in last.events}
    assert last.summary.state is GoalState.SUCCEEDED
    assert last.summary.line().startswith(f"{goal['id']} succeeded: 3/3 tasks done; ")
    # Every event of the goal came once, in order, none left out (up to its end).
    followed = [e.id for u in updates for e in u.events]
    stored = [e.id for e in r.daemon.app.store.events(goal_id=goal["id"], limit=100_000)]
    assert followed == stored[: len(followed)]
    assert all(e.goal_id == goal["id"] for u in updates for e in u.events)
    assert updates[0].events[0].kind is EventKind.GOAL_CREATED

    # Followed again from the start of an ended goal: what the store holds, then it stops.
    again = [u async for u in follow_goal(r.daemon.hub, goal["id"])]
    assert [e.id for u in again for e in u.events][: len(followed)] == followed
    assert again[-1].ended


async def test_following_an_unknown_goal_says_so(serve: Any) -> None:
    r: Running = await serve()
    with pytest.raises(NotFound, match="no goal 'g-nope'"):
        await anext(follow_goal(r.daemon.hub, "g-nope"))
