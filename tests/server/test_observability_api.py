"""The daemon's breakers, metrics and OpenAPI routes, in process over a real engine, store and
git."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from server_helpers import AGENT, PLAN, Running, make_repo, problem

pytestmark = pytest.mark.timeout(120)


# -- breakers, metrics, openapi ------------------------------------------------------------------


async def test_breakers_are_listed_and_reset(serve: Any, tmp_path: Path) -> None:
    agent = {"agent": {"hello": [[{"crash": "the agent died"}], AGENT["agent"]["hello"][0]]}}
    r: Running = await serve(agent)
    repo = make_repo(tmp_path, toml="\n[breaker]\nthreshold = 1\ncooldown = 3600\n")
    project = await r.add_project(repo)
    plan = {"tasks": [{"id": "hello", "title": "Write hello"}]}
    goal = await r.submit(project["id"], plan=plan)
    key = f"project:{project['id']}"
    for _ in range(1200):
        breakers = {b["key"]: b for b in await r.json("GET", "/api/breakers")}
        if breakers.get(key, {}).get("state") == "open":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"breaker {key} never opened")
    assert breakers[key]["last_error"] and 3500 < breakers[key]["retry_in"] <= 3600
    assert (await r.json("GET", f"/api/goals/{goal['id']}"))["state"] == "running"

    closed = await r.json("POST", "/api/breakers/reset", json={"key": key})
    assert closed["state"] == "closed" and closed["retry_in"] is None
    assert (await r.wait_goal(goal["id"]))["state"] == "succeeded"
    problem(await r.http.post("/api/breakers/reset", json={}), 422)


async def test_metrics(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    project = await r.add_project(make_repo(tmp_path))
    goal = await r.submit(project["id"], plan=PLAN)
    await r.wait_goal(goal["id"])
    await asyncio.sleep(0.2)  # the hub sees the last events
    response = await r.http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'blitz_goals{state="succeeded"} 1.0' in text
    assert 'blitz_tasks{state="succeeded"} 3.0' in text
    assert 'blitz_attempt_duration_seconds_count{outcome="succeeded"} 3.0' in text
    assert 'blitz_cost_usd_total{project="repo"} 0.0' in text
    assert 'blitz_tokens_total{kind="input",project="repo"} 0.0' in text
    assert "blitz_event_stream_clients 0.0" in text


async def test_openapi_lists_the_routes(serve: Any) -> None:
    r: Running = await serve()
    schema = await r.json("GET", "/api/openapi.json")
    for path in ("/api/goals", "/api/goals/{goal}/approve", "/api/events", "/api/projects"):
        assert path in schema["paths"], path
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
