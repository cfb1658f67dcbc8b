"""The warm worktree pools through the daemon's API: listed after a goal ran, then emptied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server_helpers import AGENT, PLAN, Running, git, make_repo


async def test_the_pool_is_listed_and_pruned_through_the_api(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    repo = make_repo(tmp_path, toml="max_parallel = 1\n")
    project = await r.add_project(repo)
    assert await r.json("GET", "/api/workspaces") == []
    goal = await r.submit(project["name"], "Greet the world", plan=PLAN)
    assert (await r.wait_goal(goal["id"]))["state"] == "succeeded"

    listed = await r.json("GET", "/api/workspaces")
    # The baseline and three tasks ran one after the other: one warm worktree did for all.
    assert [(w["project"], w["name"], w["kind"], w["busy"]) for w in listed] == [
        ("repo", "pool-1", "pooled", False)
    ]
    assert listed[0]["head"] and Path(listed[0]["path"]).is_dir()
    assert await r.json("GET", "/api/workspaces", params={"project": "repo"}) == listed
    await r.json("GET", "/api/workspaces", 404, params={"project": "nope"})

    pruned = await r.json("POST", "/api/workspaces/prune", json={"project": "repo"})
    assert pruned == [{"project": "repo", "removed": ["pool-1"], "busy": []}]
    assert await r.json("GET", "/api/workspaces") == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert await r.json("POST", "/api/workspaces/prune") == [
        {"project": "repo", "removed": [], "busy": []}
    ]
