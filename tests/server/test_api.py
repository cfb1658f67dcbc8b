"""The daemon's routes, in process (httpx's ASGI transport) over a real engine, store and git:
what they answer, and how they refuse bad requests (always a problem document, never a
traceback)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import (
    AGENT,
    PLAN,
    Running,
    committed_tasks,
    git,
    hold_first,
    make_repo,
    problem,
)

import blitz.server.app as server_app

pytestmark = pytest.mark.timeout(120)


# -- auth ----------------------------------------------------------------------------------------

PROTECTED = [
    ("GET", "/api/projects"),
    ("POST", "/api/projects"),
    ("GET", "/api/projects/x"),
    ("PATCH", "/api/projects/x"),
    ("POST", "/api/projects/x/pause"),
    ("POST", "/api/projects/x/resume"),
    ("DELETE", "/api/projects/x"),
    ("GET", "/api/goals"),
    ("POST", "/api/goals"),
    ("GET", "/api/goals/x"),
    ("GET", "/api/goals/x/events"),
    ("POST", "/api/goals/x/cancel"),
    ("POST", "/api/goals/x/approve"),
    ("POST", "/api/goals/x/reject"),
    ("POST", "/api/goals/x/tasks/t/retry"),
    ("POST", "/api/goals/x/tasks/t/skip"),
    ("GET", "/api/goals/x/tasks/t"),
    ("GET", "/api/goals/x/attempts/a"),
    ("GET", "/api/breakers"),
    ("POST", "/api/breakers/reset"),
    ("GET", "/api/workspaces"),
    ("POST", "/api/workspaces/prune"),
    ("GET", "/api/events"),
    ("GET", "/metrics"),
    ("GET", "/api/openapi.json"),
]


async def test_every_route_but_health_wants_the_token(serve: Any) -> None:
    r: Running = await serve()
    anonymous = httpx.AsyncClient(transport=r.http._transport, base_url="http://blitz.test")
    async with anonymous:
        health = await anonymous.get("/api/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "version": server_app.VERSION}
        for method, path in PROTECTED:
            missing = problem(await anonymous.request(method, path), 401)
            assert missing["title"] == "token required", path
            wrong = await anonymous.request(
                method, path, headers={"Authorization": "Bearer blitz_not-the-token"}
            )
            assert problem(wrong, 401)["title"] == "token invalid", path
            assert wrong.headers["www-authenticate"].startswith("Bearer")
            # Only the event stream takes the token in the query (an EventSource cannot send
            # headers); elsewhere it would end up in logs and browser history.
            if path != "/api/events":
                query = await anonymous.request(method, path, params={"token": r.token})
                assert problem(query, 401)["title"] == "token required", path
        # No CORS headers unless an origin was allowed explicitly.
        preflight = await anonymous.options(
            "/api/projects",
            headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers


async def test_login_sets_a_cookie_that_authenticates(serve: Any) -> None:
    r: Running = await serve()
    browser = httpx.AsyncClient(transport=r.http._transport, base_url="http://blitz.test")
    async with browser:
        problem(await browser.post("/api/login", json={"token": "blitz_wrong"}), 401)
        problem(await browser.post("/api/login", json={}), 422)
        done = await browser.post("/api/login", json={"token": r.token})
        assert done.status_code == 204
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert (await browser.get("/api/projects")).json() == []
        assert (await browser.post("/api/logout")).status_code == 204
        problem(await browser.get("/api/projects"), 401)


async def test_a_new_token_replaces_the_old_one_at_once(serve: Any) -> None:
    r: Running = await serve()
    assert (await r.http.get("/api/projects")).status_code == 200
    new = r.daemon.tokens.rotate()
    problem(await r.http.get("/api/projects"), 401)
    ok = await r.http.get("/api/projects", headers={"Authorization": f"Bearer {new}"})
    assert ok.status_code == 200
    stored = r.daemon.tokens.path
    assert stored.stat().st_mode & 0o777 == 0o600
    assert new not in stored.read_text() and r.token not in stored.read_text()


# -- errors --------------------------------------------------------------------------------------


async def test_unknown_routes_ids_and_methods_are_problems(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    assert "no route" in problem(await r.http.get("/api/nothing"), 404)["detail"]
    problem(await r.http.delete("/api/goals"), 405)
    assert "no goal 'g-nope'" in problem(await r.http.get("/api/goals/g-nope"), 404)["detail"]
    problem(await r.http.get("/api/projects/nope"), 404)
    problem(await r.http.post("/api/goals/g-nope/cancel"), 404)
    problem(await r.http.post("/api/breakers/reset", json={"key": "backend:nope"}), 404)
    problem(await r.http.get("/api/goals", params={"project": "nope"}), 404)
    problem(await r.http.get("/api/events", params={"goal": "g-nope"}), 404)

    project = await r.add_project(make_repo(tmp_path))
    goal = await r.submit(project["id"], plan=PLAN)
    await r.wait_goal(goal["id"])
    problem(await r.http.get(f"/api/goals/{goal['id']}/tasks/nope"), 404)
    problem(await r.http.get(f"/api/goals/{goal['id']}/attempts/a-nope"), 404)
    problem(await r.http.post(f"/api/goals/{goal['id']}/tasks/nope/retry"), 404)
    ended = problem(await r.http.post(f"/api/goals/{goal['id']}/cancel"), 409)
    assert "already ended (succeeded)" in ended["detail"]


async def test_malformed_bodies_name_the_problem(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    project = await r.add_project(make_repo(tmp_path))
    post = r.http.post
    broken = await post(
        "/api/goals", content=b'{"project": ', headers={"Content-Type": "application/json"}
    )
    assert "malformed JSON" in problem(broken, 400)["detail"]

    missing = problem(await post("/api/goals", json={"project": project["id"]}), 422)
    assert {"field": "body.title", "message": "Field required"} in missing["errors"]
    assert "body.title" in missing["detail"]

    typo = problem(await post("/api/goals", json={"project": "x", "title": "t", "backnd": ""}), 422)
    assert [e["field"] for e in typo["errors"]] == ["body.backnd"]

    wrong_type = problem(
        await post("/api/goals", json={**_goal(project), "max_parallel": "x"}), 422
    )
    assert wrong_type["errors"][0]["field"] == "body.max_parallel"

    cycle = {
        "tasks": [
            {"id": "a", "title": "A", "depends_on": ["b"]},
            {"id": "b", "title": "B", "depends_on": ["a"]},
        ]
    }
    bad_plan = problem(await post("/api/goals", json={**_goal(project), "plan": cycle}), 422)
    assert bad_plan["title"] == "invalid plan" and "cycle" in bad_plan["detail"]
    assert bad_plan["errors"][0]["field"] == "plan"

    unknown_key = {"tasks": [{"id": "a", "title": "A", "depend_on": []}]}
    typo_plan = problem(await post("/api/goals", json={**_goal(project), "plan": unknown_key}), 422)
    assert "depend_on" in typo_plan["detail"]

    no_planner = problem(await post("/api/goals", json=_goal(project)), 400)
    assert "no model is configured" in no_planner["detail"]

    relative = problem(await post("/api/projects", json={"path": "repo"}), 422)
    assert relative["errors"][0]["field"] == "body.path"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert (
        "not a git repository"
        in problem(await post("/api/projects", json={"path": str(plain)}), 400)["detail"]
    )
    assert (
        "does not exist"
        in problem(await post("/api/projects", json={"path": str(tmp_path / "nowhere")}), 400)[
            "detail"
        ]
    )
    problem(await r.http.get("/api/goals", params={"state": "sleeping"}), 422)
    # Nothing was started by any of this.
    assert await r.json("GET", "/api/goals") == []


def _goal(project: dict[str, Any]) -> dict[str, Any]:
    return {"project": project["id"], "title": "Greet"}


# -- projects ------------------------------------------------------------------------------------


async def test_projects_add_list_patch_pause_resume_remove(
    hold_file: Path, serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(hold_first(AGENT, "hello", hold_file))
    (hold_file).touch()
    bare = make_repo(tmp_path, "bare", toml=None)
    configured = make_repo(tmp_path, "configured", toml="max_parallel = 2\n")

    added = await r.json("POST", "/api/projects", 201, json={"path": str(bare), "name": "b"})
    assert added["name"] == "b" and added["path"] == str(bare) and added["config_file"] == ""
    again = await r.json("POST", "/api/projects", 200, json={"path": str(bare)})
    assert again["id"] == added["id"]
    second = await r.add_project(configured)
    assert second["max_parallel"] == 2 and second["config_file"].endswith("blitz.toml")
    assert second["gates"]["test"]

    listed = await r.json("GET", "/api/projects")
    assert [p["name"] for p in listed] == ["b", "configured"]
    assert (await r.json("GET", "/api/projects/b"))["id"] == added["id"]
    assert (await r.json("GET", f"/api/projects/{added['id']}"))["name"] == "b"

    patched = await r.json(
        "PATCH",
        "/api/projects/b",
        json={"name": "bee", "max_parallel": 3, "gates": {"lint": "true"}, "model": "m"},
    )
    assert (patched["name"], patched["max_parallel"], patched["model"]) == ("bee", 3, "m")
    assert patched["gates"]["lint"] == "true"
    assert (await r.json("GET", "/api/projects/bee"))["max_parallel"] == 3
    problem(await r.http.patch("/api/projects/bee", json={"max_parallel": 0}), 422)
    unknown = problem(await r.http.patch("/api/projects/bee", json={"colour": "red"}), 422)
    assert unknown["errors"][0]["field"] == "body.colour"
    bad_backend = problem(
        await r.http.patch("/api/projects/bee", json={"backend": "telepathy"}), 422
    )
    assert "unknown backend 'telepathy'" in bad_backend["detail"]
    taken = problem(await r.http.patch("/api/projects/bee", json={"name": "configured"}), 409)
    assert "another project" in taken["detail"]
    # blitz.toml decides these settings whenever blitz reads it: refused, naming the file.
    by_file = problem(await r.http.patch("/api/projects/configured", json={"max_parallel": 8}), 409)
    assert (
        "max_parallel" in by_file["detail"] and str(configured / "blitz.toml") in by_file["detail"]
    )
    renamed = await r.json("PATCH", "/api/projects/configured", json={"name": "conf"})
    assert renamed["name"] == "conf"

    paused = await r.json("POST", "/api/projects/conf/pause", json={"reason": "release freeze"})
    assert paused["paused"] is True and paused["pause_reason"] == "release freeze"
    refused = problem(await r.http.post("/api/goals", json={**_goal(paused), "plan": PLAN}), 409)
    assert refused["detail"] == "project paused: release freeze"
    assert await r.json("GET", "/api/goals") == []
    resumed = await r.json("POST", "/api/projects/conf/resume")
    assert resumed["paused"] is False and resumed["pause_reason"] == ""

    goal = await r.submit("conf", plan=PLAN)
    await r.wait_goal(goal["id"], ("running",))
    busy = problem(await r.http.delete("/api/projects/conf"), 409)
    assert goal["id"] in busy["detail"]
    (hold_file).unlink()
    assert (await r.wait_goal(goal["id"]))["state"] == "succeeded"
    assert (await r.http.delete("/api/projects/conf")).status_code == 204
    problem(await r.http.get("/api/projects/conf"), 404)
    assert [p["name"] for p in await r.json("GET", "/api/projects")] == ["bee"]
    assert (configured / ".git").is_dir()  # the repository itself is untouched


# -- goals, tasks, attempts ----------------------------------------------------------------------


async def test_a_goal_from_submit_to_its_attempts(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    repo = make_repo(tmp_path)
    project = await r.add_project(repo)
    goal = await r.submit(project["name"], "Greet the world", plan=PLAN)
    assert goal["state"] == "planning" and goal["project"] == "repo"
    assert goal["id"].startswith("g-") and goal["branch"] and goal["driven_here"] is True

    final = await r.wait_goal(goal["id"])
    assert final["state"] == "succeeded", final
    assert final["progress"] == {"done": 3, "total": 3, "by_state": {"succeeded": 3}}
    assert [t["id"] for t in final["tasks"]] == ["hello", "world", "review"]
    assert {t["state"] for t in final["tasks"]} == {"succeeded"}
    assert final["summary"] == "Greet the world"
    assert final["pr_url"].endswith("pull-request.md")
    assert set(final["usage"]) == {"input_tokens", "output_tokens", "cached_tokens", "cost_usd"}
    assert committed_tasks(repo, final["branch"]) == ["hello", "world"]
    assert git(repo, "show", f"{final['branch']}:hello.txt") == "hello\nworld\n"

    listed = await r.json("GET", "/api/goals", params={"state": "succeeded", "project": "repo"})
    assert [g["id"] for g in listed] == [goal["id"]]
    assert listed[0]["progress"]["done"] == 3 and listed[0]["age_seconds"] >= 0
    assert await r.json("GET", "/api/goals", params={"state": "running"}) == []
    by_prefix = await r.json("GET", f"/api/goals/{goal['id'][:6]}")
    assert by_prefix["id"] == goal["id"]

    task = await r.json("GET", f"/api/goals/{goal['id']}/tasks/world")
    assert task["instructions"] == "Append world" and task["depends_on"] == ["hello"]
    assert task["commit"] and len(task["attempts_list"]) == 1
    attempt_id = task["attempts_list"][0]["id"]
    attempt = await r.json("GET", f"/api/goals/{goal['id']}/attempts/{attempt_id}")
    assert attempt["state"] == "succeeded" and attempt["task_id"] == "world"
    assert "+world" in attempt["diff"] and attempt["duration"] >= 0
    assert [m["message"] for m in attempt["transcript"]] == ["append hello.txt"]
    assert [g["name"] for g in attempt["gates"]] == ["test"]
    assert attempt["gates"][0]["passed"] is True and "OK" in attempt["gates"][0]["output"]

    log = await r.json("GET", f"/api/goals/{goal['id']}/events")
    kinds = [e["kind"] for e in log]
    assert kinds[0] == "goal.created" and kinds[-1] == "goal.succeeded"
    assert [e["id"] for e in log] == sorted(e["id"] for e in log)
    later = await r.json("GET", f"/api/goals/{goal['id']}/events", params={"after": log[-2]["id"]})
    assert [e["id"] for e in later] == [log[-1]["id"]]


async def test_cancel_a_running_goal(hold_file: Path, serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(hold_first(AGENT, "hello", hold_file))
    (hold_file).touch()
    project = await r.add_project(make_repo(tmp_path))
    goal = await r.submit(project["id"], plan=PLAN)
    await _wait_task(r, goal["id"], "hello", "running")
    done = await r.json("POST", f"/api/goals/{goal['id']}/cancel", 202, json={"reason": "no"})
    assert done == {"goal_id": goal["id"], "action": "cancel", "applied": "engine"}
    final = await r.wait_goal(goal["id"])
    assert final["state"] == "cancelled"
    assert {t["state"] for t in final["tasks"]} == {"cancelled"}
    problem(await r.http.post(f"/api/goals/{goal['id']}/cancel"), 409)


async def test_retry_and_skip_a_failed_task(serve: Any, tmp_path: Path) -> None:
    agent = {
        "agent": {
            "hello": [[{"fail": "cannot find the greeting"}], AGENT["agent"]["hello"][0]],
            "world": AGENT["agent"]["world"],
            "lonely": [[{"fail": "no"}]],
        }
    }
    r: Running = await serve(agent)
    repo = make_repo(tmp_path, toml="\n[limits]\nmax_recoveries_per_task = 0\n")
    project = await r.add_project(repo)
    goal = await r.submit(project["id"], plan=PLAN)
    failed = await r.wait_goal(goal["id"])
    assert failed["state"] == "failed"
    states = {t["id"]: t["state"] for t in failed["tasks"]}
    assert states == {"hello": "failed", "world": "skipped", "review": "skipped"}

    retried = await r.json("POST", f"/api/goals/{goal['id']}/tasks/hello/retry", 202)
    assert retried["applied"] == "engine"
    final = await r.wait_goal(goal["id"], ("succeeded",))
    assert committed_tasks(repo, final["branch"]) == ["hello", "world"]

    other = await r.submit(
        project["id"],
        "Two",
        plan={"tasks": [{"id": "lonely", "title": "L"}, {"id": "after", "title": "A",
              "depends_on": ["lonely"], "allow_empty": True}]},
    )  # fmt: skip
    assert (await r.wait_goal(other["id"]))["state"] == "failed"
    wrong = problem(await r.http.post(f"/api/goals/{goal['id']}/tasks/hello/retry"), 409)
    assert "already ended (succeeded)" in wrong["detail"]  # nothing to retry
    await r.json("POST", f"/api/goals/{other['id']}/tasks/lonely/skip", 202)
    final = await r.wait_goal(other["id"], ("succeeded",))
    assert {t["id"]: t["state"] for t in final["tasks"]} == {
        "lonely": "skipped",
        "after": "succeeded",
    }


async def _wait_task(r: Running, goal_id: str, task_id: str, state: str) -> None:
    for _ in range(1200):
        goal = await r.json("GET", f"/api/goals/{goal_id}")
        if any(t["id"] == task_id and t["state"] == state for t in goal["tasks"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never {state}")


# -- secrets, shutdown, the dashboard's files ----------------------------------------------------


async def test_secrets_never_leave_the_server(serve: Any, tmp_path: Path) -> None:
    secret = "very-secret-github-token-1234"
    agent = {
        "agent": {"hello": [[{"say": f"found {secret} in the env"}, *AGENT["agent"]["hello"][0]]]}
    }
    r: Running = await serve(agent, github_token=secret)
    project = await r.add_project(make_repo(tmp_path))
    plan = {"tasks": [{"id": "hello", "title": f"Use {secret}"}]}
    goal = await r.submit(project["id"], f"Greet with {secret}", plan=plan)
    final = await r.wait_goal(goal["id"])
    task = await r.json("GET", f"/api/goals/{goal['id']}/tasks/hello")
    attempt_id = task["attempts_list"][0]["id"]
    responses = [
        await r.http.get(f"/api/goals/{goal['id']}"),
        await r.http.get("/api/goals"),
        await r.http.get(f"/api/goals/{goal['id']}/tasks/hello"),
        await r.http.get(f"/api/goals/{goal['id']}/attempts/{attempt_id}"),
        await r.http.get(f"/api/goals/{goal['id']}/events"),
        await r.http.get("/api/projects"),
        await r.http.get("/metrics"),
    ]
    for response in responses:
        assert response.status_code == 200
        assert secret not in response.text, response.url
    assert "[redacted]" in final["title"]
    attempt = responses[3].json()
    assert any("[redacted]" in m["message"] for m in attempt["transcript"])


async def test_no_new_work_while_shutting_down(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    project = await r.add_project(make_repo(tmp_path))
    r.daemon.draining = True
    refused = problem(await r.http.post("/api/goals", json={**_goal(project), "plan": PLAN}), 503)
    assert refused["title"] == "shutting down"
    health = await r.http.get("/api/health")
    assert health.json()["status"] == "draining"
    r.daemon.draining = False


async def test_the_dashboard_is_served_or_explained(
    serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r: Running = await serve()
    anonymous = httpx.AsyncClient(transport=r.http._transport, base_url="http://blitz.test")
    async with anonymous:
        monkeypatch.setattr(server_app, "STATIC", tmp_path / "no-build")
        page = await anonymous.get("/")
        assert page.status_code == 200 and "not built" in page.text and "npm run build" in page.text
        assert "not built" in (await anonymous.get("/goals/g-1")).text

        build = tmp_path / "build"
        (build / "assets").mkdir(parents=True)
        (build / "index.html").write_text("<html>dashboard</html>")
        (build / "assets" / "app.js").write_text("console.log('hi')")
        (tmp_path / "secret.txt").write_text("outside")
        monkeypatch.setattr(server_app, "STATIC", build)
        assert (await anonymous.get("/")).text == "<html>dashboard</html>"
        script = await anonymous.get("/assets/app.js")
        assert script.text == "console.log('hi')" and "javascript" in script.headers["content-type"]
        # Client-side routes get the index; missing assets and /api paths do not.
        assert (await anonymous.get("/goals/g-1/tasks/a")).text == "<html>dashboard</html>"
        problem(await anonymous.get("/assets/missing.js"), 404)
        problem(await anonymous.get("/api/nothing"), 404)
        escape = await anonymous.get("/..%2Fsecret.txt")
        assert "outside" not in escape.text


def test_token_file_is_private(tmp_path: Path) -> None:
    from blitz.server.auth import TokenStore

    tokens = TokenStore.of_home(tmp_path)
    assert tokens.ensure() is not None and tokens.ensure() is None
    first = tokens.rotate()
    assert tokens.check(first) and tokens.check(first)  # the second from memory
    assert not tokens.check(first + "x") and not tokens.check("")
    second = tokens.rotate()
    assert tokens.check(second) and not tokens.check(first)
    assert oct(os.stat(tokens.path).st_mode & 0o777) == oct(0o600)
    text = tokens.path.read_text()
    assert first not in text and second not in text and '"scheme": "scrypt"' in text
