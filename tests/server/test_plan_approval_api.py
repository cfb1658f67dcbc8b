"""Plan approval through the daemon's routes, in process over a real engine, store and git: a
goal waits for approval, a rejected plan cancels it, an edited plan runs instead."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from server_helpers import AGENT, PLAN, Running, committed_tasks, git, make_repo, problem

pytestmark = pytest.mark.timeout(120)


# -- plan approval -------------------------------------------------------------------------------

APPROVAL = "require_plan_approval = true\n"


async def test_a_goal_waits_for_approval_then_runs(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    repo = make_repo(tmp_path, toml=APPROVAL)
    project = await r.add_project(repo)
    assert project["require_plan_approval"] is True
    goal = await r.submit(project["id"], plan=PLAN)
    waiting = await r.wait_goal(goal["id"], ("awaiting_approval",))
    assert {t["state"] for t in waiting["tasks"]} == {"pending"}
    await asyncio.sleep(0.3)  # nothing starts while it waits
    assert (await r.json("GET", f"/api/goals/{goal['id']}"))["state"] == "awaiting_approval"
    assert not committed_tasks(repo, waiting["branch"])
    problem(await r.http.post(f"/api/goals/{goal['id']}/tasks/hello/retry"), 409)

    done = await r.json("POST", f"/api/goals/{goal['id']}/approve", 202)
    assert done["applied"] == "engine"
    final = await r.wait_goal(goal["id"])
    assert final["state"] == "succeeded"
    assert committed_tasks(repo, final["branch"]) == ["hello", "world"]
    again = problem(await r.http.post(f"/api/goals/{goal['id']}/approve"), 409)
    assert "not awaiting approval" in again["detail"]


async def test_a_rejected_plan_cancels_the_goal(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    project = await r.add_project(make_repo(tmp_path, toml=APPROVAL))
    goal = await r.submit(project["id"], plan=PLAN)
    await r.wait_goal(goal["id"], ("awaiting_approval",))
    body = {"reason": "too big"}
    done = await r.json("POST", f"/api/goals/{goal['id']}/reject", 202, json=body)
    assert done["action"] == "reject"
    final = await r.wait_goal(goal["id"])
    assert final["state"] == "cancelled" and "too big" in final["error"]
    kinds = [e["kind"] for e in await r.json("GET", f"/api/goals/{goal['id']}/events")]
    assert "plan.rejected" in kinds and "task.started" not in kinds


async def test_an_edited_plan_runs_instead(serve: Any, tmp_path: Path) -> None:
    agent = {"agent": {"only": [[{"write": {"path": "edited.txt", "content": "edited\n"}}]]}}
    r: Running = await serve(agent)
    repo = make_repo(tmp_path, toml=APPROVAL)
    project = await r.add_project(repo)
    goal = await r.submit(project["id"], plan=PLAN)
    await r.wait_goal(goal["id"], ("awaiting_approval",))
    bad = {"tasks": [{"id": "only", "title": "Only", "depends_on": ["ghost"]}]}
    invalid = problem(await r.http.post(f"/api/goals/{goal['id']}/approve", json=bad), 422)
    assert "ghost" in invalid["detail"]
    edited = {"summary": "Just one", "tasks": [{"id": "only", "title": "Write the edit"}]}
    await r.json("POST", f"/api/goals/{goal['id']}/approve", 202, json=edited)
    final = await r.wait_goal(goal["id"])
    assert final["state"] == "succeeded", final
    assert [t["id"] for t in final["tasks"]] == ["only"]
    assert committed_tasks(repo, final["branch"]) == ["only"]
    assert git(repo, "show", f"{final['branch']}:edited.txt") == "edited\n"


async def test_an_edited_plan_may_be_the_text_of_a_plan_file(serve: Any, tmp_path: Path) -> None:
    """YAML (or JSON) text, as ``blitz run --plan`` reads a file: what the dashboard's plan box
    sends; a mistake in it is a 422 on the ``plan`` field, saying where."""
    agent = {"agent": {"only": [[{"write": {"path": "edited.txt", "content": "edited\n"}}]]}}
    r: Running = await serve(agent)
    repo = make_repo(tmp_path, toml=APPROVAL)
    project = await r.add_project(repo)
    goal = await r.submit(project["id"], plan=PLAN)
    await r.wait_goal(goal["id"], ("awaiting_approval",))
    route = f"/api/goals/{goal['id']}/approve"

    broken = problem(await r.http.post(route, json={"plan": "tasks:\n  - id: [only\n"}), 422)
    assert "not valid YAML: line 3" in broken["detail"], broken
    assert [e["field"] for e in broken["errors"]] == ["plan"]
    both = {"plan": "tasks: []\n", "tasks": [{"id": "only", "title": "Only"}]}
    assert "not both" in problem(await r.http.post(route, json=both), 422)["detail"]
    waiting = await r.json("GET", f"/api/goals/{goal['id']}")
    assert waiting["state"] == "awaiting_approval"  # nothing was approved

    text = "summary: Just one\ntasks:\n  - id: only\n    title: Write the edit\n"
    await r.json("POST", route, 202, json={"plan": text})
    final = await r.wait_goal(goal["id"])
    assert final["state"] == "succeeded", final
    assert [t["id"] for t in final["tasks"]] == ["only"]
    assert git(repo, "show", f"{final['branch']}:edited.txt") == "edited\n"
