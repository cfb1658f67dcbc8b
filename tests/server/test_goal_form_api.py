"""A new goal as the dashboard's form sends it: the plan as the text of a plan file (YAML or JSON,
read by the code that reads ``blitz run --plan``), and refusals in the API's terms that name the
field to change, never a command-line flag (real daemon, engine, store and git)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from server_helpers import AGENT, PLAN, Running, make_repo, problem

pytestmark = pytest.mark.timeout(120)

YAML_PLAN = """\
summary: Greet the world
tasks:
  - id: hello
    title: Write hello
  - id: world
    title: Append world
    depends_on: [hello]
"""


async def test_a_plan_written_as_yaml_or_json_text_is_read_as_a_plan_file_is(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(AGENT)
    project = await r.add_project(make_repo(tmp_path))

    from_yaml = await r.submit(project["id"], "From YAML", plan=YAML_PLAN)
    from_json = await r.submit(project["id"], "From JSON", plan=json.dumps(PLAN, indent=2))

    done = await r.wait_goal(from_yaml["id"])
    assert done["state"] == "succeeded" and done["summary"] == "Greet the world"
    assert {t["id"]: t["depends_on"] for t in done["tasks"]} == {
        "hello": [],
        "world": ["hello"],
    }
    assert [t["id"] for t in (await r.wait_goal(from_json["id"]))["tasks"]] == [
        "hello",
        "world",
        "review",
    ]


async def test_a_plan_text_that_is_wrong_says_where_under_the_plan_field(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(AGENT)
    project = await r.add_project(make_repo(tmp_path))

    async def refused(plan: str) -> list[str]:
        body = {"project": project["id"], "title": "Bad plan", "plan": plan}
        found = problem(await r.http.post("/api/goals", json=body), 422)
        assert found["title"] == "invalid plan"
        assert {e["field"] for e in found["errors"]} == {"plan"}
        return [e["message"] for e in found["errors"]]

    (syntax,) = await refused("tasks:\n  - {id: a, title: A\n  - id: b\n")
    assert syntax.startswith("not valid YAML: line 3, column ")
    (json_syntax,) = await refused('{"tasks": [{"id": "a", "title": "A"}')
    assert json_syntax.startswith("not valid YAML: line 1, column ")
    cycle = await refused(
        "tasks:\n  - {id: a, title: A, depends_on: [b]}\n  - {id: b, title: B, depends_on: [a]}\n"
    )
    assert any("a -> b -> a" in m for m in cycle)
    assert await refused("   \n") == ["the plan is empty"]
    assert await refused("- just\n- words\n") != []
    assert (await r.http.get("/api/goals")).json() == []


async def test_refusals_name_the_field_in_the_apis_terms(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    repo = make_repo(tmp_path)
    project = await r.add_project(repo)
    goal = {"project": project["id"], "title": "Greet"}

    no_planner = problem(await r.http.post("/api/goals", json=goal), 400)
    assert no_planner["title"] == "no planner"
    assert [e["field"] for e in no_planner["errors"]] == ["plan"]
    assert "--" not in no_planner["detail"] and "blitz.toml" in no_planner["detail"]

    (repo / "scratch.txt").write_text("work in progress\n")
    dirty = problem(await r.http.post("/api/goals", json={**goal, "plan": PLAN}), 400)
    assert [e["field"] for e in dirty["errors"]] == ["allow_dirty"]
    assert "scratch.txt" in dirty["detail"] and "--allow-dirty" not in dirty["detail"]
    allowed = await r.submit(project["id"], "Greet anyway", plan=PLAN, allow_dirty=True)
    assert (await r.wait_goal(allowed["id"]))["state"] == "succeeded"

    await r.json("POST", f"/api/projects/{project['id']}/pause", json={"reason": "freeze"})
    paused = problem(await r.http.post("/api/goals", json={**goal, "plan": PLAN}), 409)
    assert paused["detail"] == "project paused: freeze"
    assert paused["errors"] == [
        {"field": "project", "message": "paused (freeze): resume the project first"}
    ]
    assert "blitz projects resume" not in json.dumps(paused)

    embedded = {**goal, "plan": PLAN, "backend": "embedded"}
    await r.json("POST", f"/api/projects/{project['id']}/resume")
    (repo / "scratch.txt").unlink()
    no_model = problem(await r.http.post("/api/goals", json=embedded), 400)
    assert [e["field"] for e in no_model["errors"]] == ["backend"]
    assert "--model" not in no_model["detail"]
