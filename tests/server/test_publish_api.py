"""Publishing through the API: a goal whose push failed is ``succeeded`` with publishing
pending in its answer, and ``POST /api/goals/{goal}/publish`` publishes it in the daemon."""

from __future__ import annotations

import asyncio
import shlex
import time
from pathlib import Path
from typing import Any

from server_helpers import AGENT, PLAN, Running, git, make_repo


def with_guarded_remote(repo: Path, root: Path) -> Path:
    """Give ``repo`` an ``origin``: a bare repository refusing pushes while ``deny`` exists."""
    bare = root / "origin.git"
    git(root, "init", "-q", "--bare", str(bare))
    hook = bare / "hooks" / "pre-receive"
    deny = shlex.quote(str(bare / "deny"))
    hook.write_text(f"#!/bin/sh\nif [ -e {deny} ]; then cat {deny} >&2; exit 1; fi\nexit 0\n")
    hook.chmod(0o755)
    git(repo, "remote", "add", "origin", str(bare))
    return bare


async def wait_published(r: Running, goal_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        goal: dict[str, Any] = await r.json("GET", f"/api/goals/{goal_id}")
        if goal["publish_state"] != "pending":
            return goal
        assert time.monotonic() < deadline, goal
        await asyncio.sleep(0.05)


async def test_a_goal_whose_push_failed_is_published_again_through_the_api(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(AGENT, publish_retry_for=0)
    repo = make_repo(tmp_path)
    bare = with_guarded_remote(repo, tmp_path)
    (bare / "deny").write_text("the remote is read-only today\n")
    project = await r.add_project(repo)

    submitted = await r.submit(project["id"], plan=PLAN)
    goal = await r.wait_goal(submitted["id"])

    assert goal["state"] == "succeeded", goal
    assert (goal["publish_state"], goal["publish_attempts"]) == ("pending", 1)
    assert "the remote is read-only today" in goal["publish_error"]
    (listed,) = await r.json("GET", "/api/goals")
    assert listed["publish_state"] == "pending"

    (bare / "deny").unlink()
    action = await r.json("POST", f"/api/goals/{goal['id']}/publish", 202)
    assert action == {"goal_id": goal["id"], "action": "publish", "applied": "engine"}
    published = await wait_published(r, goal["id"])

    assert published["state"] == "succeeded"
    assert (published["publish_state"], published["publish_error"]) == ("published", "")
    branch = published["branch"]
    assert git(bare, "rev-parse", f"refs/heads/{branch}") == git(repo, "rev-parse", branch)
    events = await r.json("GET", f"/api/goals/{goal['id']}/events")
    kinds = [e["kind"] for e in events]
    assert kinds.count("goal.succeeded") == 1 and "publish.failed" in kinds
    assert kinds.index("publish.failed") < kinds.index("pr.pushed")


async def test_publish_is_refused_for_a_goal_that_is_not_succeeded(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(AGENT)
    missing = await r.http.post("/api/goals/g-nope/publish")
    assert missing.status_code == 404
    project = await r.add_project(make_repo(tmp_path))
    failing = {"tasks": [{"id": "x", "title": "Nothing", "checks": [{"kind": "file_exists",
               "path": "never.txt"}]}]}  # fmt: skip
    goal = await r.wait_goal((await r.submit(project["id"], plan=failing))["id"])
    assert goal["state"] == "failed"
    refused = await r.http.post(f"/api/goals/{goal['id']}/publish")
    assert refused.status_code == 409 and "only a goal whose tasks all" in refused.text
