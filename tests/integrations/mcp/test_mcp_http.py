"""``/mcp`` in the daemon: the official ``mcp`` client over streamable HTTP, with the daemon's
token, against a real ``blitz serve`` (the scripted planner and agent)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import httpx
import pytest
from mcp.client.session import ClientSession
from mcp_helpers import (
    SCENARIO,
    TOOLS,
    call,
    daemon,
    make_repo,
    over_http,
    scenario_file,
    wait_ended,
    wait_state,
)
from mcp_types import TextResourceContents

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

APPROVAL = "require_plan_approval = true\n"


async def wait_task(mcp: ClientSession, goal: str, task: str, state: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        status = await call(mcp, "goal_status", goal=goal)
        if any(t["id"] == task and t["state"] == state for t in status["tasks"]):
            return
        assert time.monotonic() < deadline, f"task {task} never {state}: {status}"
        await anyio.sleep(0.1)


async def test_goals_run_wait_for_approval_and_are_cancelled_over_http(tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    wait = {"run": f"while [ -e {hold} ]; do sleep 0.05; done"}
    scenario = {**SCENARIO, "agent": {**SCENARIO["agent"], "slow": [[wait]]}}
    repo = make_repo(tmp_path)
    make_repo(tmp_path, "gated", toml=APPROVAL)
    try:
        with daemon(tmp_path / "home", scenario_file(tmp_path, scenario)) as served:
            async with over_http(served.url, served.token) as mcp:
                assert {t.name for t in (await mcp.list_tools()).tools} == TOOLS
                await call(mcp, "add_project", path=str(repo))
                gated = await call(mcp, "add_project", path=str(tmp_path / "gated"))
                assert gated["require_plan_approval"] is True

                # A goal to its end.
                goal = await call(mcp, "submit_goal", project="repo", title="Greet the world")
                status = await wait_ended(mcp, goal["id"])
                assert status["state"] == "succeeded", status
                assert [t["state"] for t in status["tasks"]] == ["succeeded"] * 3
                diff = await mcp.read_resource(f"blitz://goals/{goal['id']}/tasks/hello/diff")
                [patch] = diff.contents
                assert isinstance(patch, TextResourceContents) and "+hello" in patch.text

                # A follow-up of it: on its branch.
                look = {"tasks": [{"id": "look", "title": "Look", "allow_empty": True}]}
                follow = await call(
                    mcp, "submit_goal", project="repo", title="Look again", plan=look,
                    follows=goal["id"],
                )  # fmt: skip
                assert follow["branch"] == status["branch"]
                assert (await wait_ended(mcp, follow["id"]))["state"] == "succeeded"

                # A plan that waits for approval, approved.
                waiting = await call(mcp, "submit_goal", project="gated", title="Greet, approved")
                await wait_state(mcp, waiting["id"], "awaiting_approval")
                status = await call(mcp, "goal_status", goal=waiting["id"])
                assert "approve_plan" in status["next"] and "reject_plan" in status["next"]
                assert {t["state"] for t in status["tasks"]} == {"pending"}
                done = await call(mcp, "approve_plan", goal=waiting["id"])
                assert done == {"goal_id": waiting["id"], "action": "approve", "applied": "engine"}
                assert (await wait_ended(mcp, waiting["id"]))["state"] == "succeeded"

                # Another, rejected.
                rejected = await call(mcp, "submit_goal", project="gated", title="Greet, no")
                await wait_state(mcp, rejected["id"], "awaiting_approval")
                await call(mcp, "reject_plan", goal=rejected["id"], reason="too big")
                final = await wait_ended(mcp, rejected["id"])
                assert final["state"] == "cancelled" and "too big" in final["error"]
                events = await call(mcp, "goal_events", goal=rejected["id"])
                kinds = [e["kind"] for e in events["events"]]
                assert "plan.rejected" in kinds and "task.started" not in kinds

                # A goal with its plan given, cancelled while its agent works.
                plan = {"summary": "Wait", "tasks": [{"id": "slow", "title": "Wait for it"}]}
                slow = await call(mcp, "submit_goal", project="repo", title="Wait", plan=plan)
                await wait_task(mcp, slow["id"], "slow", "running")
                done = await call(mcp, "cancel_goal", goal=slow["id"], reason="not needed")
                assert done["action"] == "cancel" and done["applied"] == "engine"
                final = await wait_ended(mcp, slow["id"])
                assert final["state"] == "cancelled" and "not needed" in final["error"]

                listed = await call(mcp, "list_goals", project="gated")
                assert {g["id"] for g in listed["goals"]} == {waiting["id"], rejected["id"]}
    finally:
        hold.unlink(missing_ok=True)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_the_endpoint_wants_the_daemons_token_as_a_bearer_token(tmp_path: Path) -> None:
    with daemon(tmp_path / "home", scenario_file(tmp_path)) as served:
        url = f"{served.url}/mcp"
        body = json.dumps(INITIALIZE)
        for headers, cookies, title in (
            ({}, {}, "token required"),
            ({"Authorization": "Bearer blitz_not-the-token"}, {}, "token invalid"),
            # The dashboard's cookie is not enough: a page elsewhere could make a browser send it.
            ({}, {"blitz_token": served.token}, "token required"),
        ):
            with httpx.Client(cookies=cookies, timeout=30) as http:
                refused = http.post(url, content=body, headers={**ACCEPT, **headers})
            assert refused.status_code == 401, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["title"] == title
            assert "WWW-Authenticate" in refused.headers
            assert served.token not in refused.text

        bearer = {**ACCEPT, "Authorization": f"Bearer {served.token}"}
        answered = httpx.post(url, content=body, headers=bearer, timeout=30)
        assert answered.status_code == 200, answered.text
        assert answered.json()["result"]["serverInfo"]["name"] == "blitz"
        # Stateless: no stream to open with a GET, no session to end with a DELETE.
        for method in ("GET", "DELETE"):
            other = httpx.request(method, url, headers=bearer, timeout=30)
            assert other.status_code == 405, (method, other.text)
