"""Running an ended goal again through the API (``POST /api/goals/{goal}/rerun``): a new goal
with the same project, title and settings, with the plan the goal ran (what recovery added left
out) or planned afresh; refused while the goal runs (real daemon, engine, store and git)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import AGENT, PLAN, Running, committed_tasks, make_repo, problem

pytestmark = pytest.mark.timeout(120)

RECOVERED_PLAN: dict[str, Any] = {
    "summary": "A task that needs recovery",
    "tasks": [
        {"id": "flaky", "title": "Write flaky.txt"},
        {"id": "after", "title": "Look at it", "depends_on": ["flaky"], "allow_empty": True},
    ],
}

FLAKY: dict[str, Any] = {
    "agent": {
        # every goal's first attempt at flaky fails; recovery inserts prep before it
        "flaky": [
            [{"fail": "flaky.txt needs prep.txt"}],
            [{"write": {"path": "flaky.txt", "content": "ok\n"}}],
        ],
        "prep": [[{"write": {"path": "prep.txt", "content": "prepared\n"}}]],
    },
    "recovery": {
        "flaky": [
            {
                "root_cause": "prep.txt must exist before flaky.txt",
                "action": "insert",
                "tasks": [{"id": "prep", "title": "Prepare the ground"}],
            }
        ]
    },
}


def _plan_of(goal: dict[str, Any]) -> dict[str, list[str]]:
    return {t["id"]: t["depends_on"] for t in goal["tasks"] if t["origin"] == "plan"}


async def test_a_goal_runs_again_with_the_plan_it_ran_without_recoverys_tasks(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(FLAKY)
    # Goals wait for approval after planning: the plan a goal starts with can be read then.
    repo = make_repo(tmp_path, toml="require_plan_approval = true\n")
    project = await r.add_project(repo)
    first = await r.submit(project["id"], "Write flaky", plan=RECOVERED_PLAN, max_parallel=1)
    await r.wait_goal(first["id"], ("awaiting_approval",))
    await r.json("POST", f"/api/goals/{first['id']}/approve", 202)
    done = await r.wait_goal(first["id"])
    assert done["state"] == "succeeded"
    assert "prep" in {t["id"] for t in done["tasks"]}
    assert "prep" in _plan_of(done)["flaky"]  # recovery made flaky wait for prep

    again = await r.json("POST", f"/api/goals/{first['id']}/rerun", 201)

    assert again["id"] != first["id"] and again["branch"] != done["branch"]
    assert (again["title"], again["project_id"]) == ("Write flaky", project["id"])
    planned = await r.wait_goal(again["id"], ("awaiting_approval",))
    assert [t["id"] for t in planned["tasks"]] == ["flaky", "after"]
    assert _plan_of(planned) == {"flaky": [], "after": ["flaky"]}
    assert planned["summary"] == "A task that needs recovery"
    await r.json("POST", f"/api/goals/{again['id']}/approve", 202)
    rerun = await r.wait_goal(again["id"])
    assert rerun["state"] == "succeeded"
    assert "prep" in _plan_of(rerun)["flaky"]  # recovered the same way again
    assert committed_tasks(repo, rerun["branch"]) == ["prep", "flaky"]
    listed = (await r.http.get("/api/goals")).json()
    assert [g["id"] for g in listed] == [again["id"], first["id"]]


async def test_a_goal_runs_again_planned_afresh(serve: Any, tmp_path: Path) -> None:
    # The scripted planner plans every goal with PLAN.
    r: Running = await serve({**PLAN, **AGENT})
    project = await r.add_project(make_repo(tmp_path))
    own_plan = {"tasks": [{"id": "hello", "title": "Only hello"}]}
    first = await r.submit(project["id"], "Greet", plan=own_plan)
    assert (await r.wait_goal(first["id"]))["state"] == "succeeded"

    same = await r.json("POST", f"/api/goals/{first['id']}/rerun", 201, json={})
    assert [t["id"] for t in (await r.wait_goal(same["id"]))["tasks"]] == ["hello"]
    planned = await r.json("POST", f"/api/goals/{first['id']}/rerun", 201, json={"replan": True})
    await r.wait_goal(planned["id"], ("running", "succeeded"))
    replanned = await r.json("GET", f"/api/goals/{planned['id']}")
    assert [t["id"] for t in replanned["tasks"]] == ["hello", "world", "review"]
    for goal in (same, planned):
        assert (await r.wait_goal(goal["id"]))["state"] == "succeeded"


async def test_only_an_ended_goal_runs_again_and_refusals_say_what_to_change(
    serve: Any, tmp_path: Path
) -> None:
    hold = {"agent": {"hello": [[{"sleep": 30}]]}}
    r: Running = await serve(hold)
    repo = make_repo(tmp_path)
    project = await r.add_project(repo)
    running = await r.submit(project["id"], plan=PLAN)
    await r.wait_goal(running["id"], ("running",))
    refused = problem(await r.http.post(f"/api/goals/{running['id']}/rerun"), 409)
    assert "only an ended goal runs again" in refused["detail"]
    await r.json("POST", f"/api/goals/{running['id']}/cancel", 202)
    assert (await r.wait_goal(running["id"]))["state"] == "cancelled"

    no_planner = problem(
        await r.http.post(f"/api/goals/{running['id']}/rerun", json={"replan": True}), 400
    )
    assert no_planner["errors"][0]["field"] == "plan"
    assert "--" not in no_planner["detail"]  # no command-line flag

    (repo / "scratch.txt").write_text("work in progress\n")
    dirty = problem(await r.http.post(f"/api/goals/{running['id']}/rerun"), 400)
    assert dirty["errors"] == [
        {
            "field": "allow_dirty",
            "message": "the repository has uncommitted changes (scratch.txt); commit or stash "
            "them, or go ahead without them",
        }
    ]
    assert "--allow-dirty" not in dirty["detail"] and "scratch.txt" in dirty["detail"]
    anyway = await r.json(
        "POST", f"/api/goals/{running['id']}/rerun", 201, json={"allow_dirty": True}
    )
    assert anyway["title"] == running["title"]
    await r.json("POST", f"/api/goals/{anyway['id']}/cancel", 202)
    assert problem(await r.http.post("/api/goals/g-nothing/rerun"), 404)
    assert problem(await r.http.post(f"/api/goals/{anyway['id']}/rerun", json={"x": 1}), 422)
    await r.wait_goal(anyway["id"])


async def test_running_a_goal_again_wants_the_token(serve: Any) -> None:
    r: Running = await serve()
    anonymous = httpx.AsyncClient(transport=r.http._transport, base_url="http://blitz.test")
    async with anonymous:
        refused = problem(await anonymous.post("/api/goals/g-1/rerun"), 401)
        assert refused["title"] == "token required"
