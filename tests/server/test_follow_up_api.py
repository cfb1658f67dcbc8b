"""A follow-up goal through the API (``POST /api/goals`` with ``follows``): it continues the
earlier goal's branch; refused with a problem naming the goal while that branch is busy (409) or
for an unknown goal (404); ``follows`` is in the goal's listing (real daemon, engine and git)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from server_helpers import AGENT, PLAN, Running, committed_tasks, make_repo, problem

pytestmark = pytest.mark.timeout(120)

MORE: dict[str, Any] = {"summary": "More", "tasks": [{"id": "more", "title": "Write more"}]}
SCENARIO: dict[str, Any] = {
    "agent": {**AGENT["agent"], "more": [[{"write": {"path": "more.txt", "content": "more\n"}}]]}
}


async def test_a_follow_up_through_the_api_continues_the_branch_and_is_refused_while_busy(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(SCENARIO)
    repo = make_repo(tmp_path, toml="require_plan_approval = true\n")
    project = await r.add_project(repo)
    first = await r.submit(project["id"], "Greet", plan=PLAN)
    await r.wait_goal(first["id"], ("awaiting_approval",))
    await r.json("POST", f"/api/goals/{first['id']}/approve", 202)
    done = await r.wait_goal(first["id"])
    assert done["state"] == "succeeded" and done["follows"] == ""

    unknown = await r.http.post(
        "/api/goals",
        json={"project": project["id"], "title": "More", "follows": "g-nope", "plan": MORE},
    )
    assert "no goal 'g-nope' to follow up" in problem(unknown, 404)["detail"]

    follow = await r.submit(project["id"], "Say more", plan=MORE, follows=first["id"])
    assert (follow["follows"], follow["branch"]) == (first["id"], done["branch"])
    await r.wait_goal(follow["id"], ("awaiting_approval",))  # it holds the branch meanwhile
    busy = await r.http.post(
        "/api/goals",
        json={"project": project["id"], "title": "Again", "follows": first["id"], "plan": MORE},
    )
    assert f"goal {follow['id']} is still awaiting_approval" in problem(busy, 409)["detail"]

    await r.json("POST", f"/api/goals/{follow['id']}/approve", 202)
    ended = await r.wait_goal(follow["id"])

    assert ended["state"] == "succeeded", ended["error"]
    assert committed_tasks(repo, done["branch"]) == ["hello", "world", "more"]
    listed = (await r.http.get("/api/goals")).json()
    assert {g["id"]: g["follows"] for g in listed} == {follow["id"]: first["id"], first["id"]: ""}
