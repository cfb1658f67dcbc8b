"""The routes behind the dashboard's goal page: a goal's whole change (every file its branch
changed, and the patch) and its pull request (the description as published, where the branch
went), against real repositories and remotes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from server_helpers import AGENT, PLAN, Running, git, make_repo

from blitz.server.pull_request import without_credentials


async def finished(r: Running, repo: Path) -> dict[str, Any]:
    project = await r.add_project(repo)
    goal = await r.wait_goal((await r.submit(project["id"], plan=PLAN))["id"])
    assert goal["state"] == "succeeded", goal
    return goal


async def test_a_goals_changes_are_every_file_its_branch_changed(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(AGENT)
    repo = make_repo(tmp_path)
    goal = await finished(r, repo)

    changes = await r.json("GET", f"/api/goals/{goal['id']}/changes")

    assert changes["base"] == goal["base_sha"]
    assert changes["head"] == git(repo, "rev-parse", goal["branch"]).strip()
    assert changes["files"] == [{"path": "hello.txt", "added": 2, "removed": 0}]
    assert (changes["added"], changes["removed"], changes["truncated"]) == (2, 0, False)
    assert "+hello\n+world" in changes["diff"]
    assert changes["diff"] == git(repo, "diff", goal["base_sha"], goal["branch"])


async def test_the_changes_of_an_unknown_goal_are_a_404(serve: Any) -> None:
    r: Running = await serve(AGENT)
    for route in ("changes", "pull-request"):
        missing = await r.http.get(f"/api/goals/g-nope/{route}")
        assert missing.status_code == 404, missing.text


async def test_a_local_goals_pull_request_is_its_description_not_a_file(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(AGENT)
    goal = await finished(r, make_repo(tmp_path))
    assert goal["pr_url"].endswith("pull-request.md")  # what the page used to show

    response = await r.http.get(f"/api/goals/{goal['id']}/pull-request")
    pr = response.json()

    assert pr["written"] is True
    assert pr["description"].startswith("# blitz: Greet")
    assert "| `hello` |" in pr["description"]
    assert (pr["url"], pr["pushed"], pr["branch_url"]) == ("", False, "")
    # blitz.toml names the default remote, which this repository does not have
    assert (pr["remote"], pr["remote_url"]) == ("origin", "")
    assert pr["branch"] == goal["branch"]
    assert str(r.home) not in response.text  # no path on the daemon's machine


async def test_a_pushed_goal_says_where_its_branch_went(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    repo = make_repo(tmp_path, toml='remote = "origin"\n')
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))

    goal = await finished(r, repo)
    pr = await r.json("GET", f"/api/goals/{goal['id']}/pull-request")

    assert (pr["pushed"], pr["remote"], pr["remote_url"]) == (True, "origin", str(bare))
    assert (pr["url"], pr["branch_url"]) == ("", "")  # not GitHub: no pull request, no link
    assert git(bare, "rev-parse", goal["branch"]) == git(repo, "rev-parse", goal["branch"])


async def test_a_branch_pushed_to_github_is_linked(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    repo = make_repo(tmp_path, toml='remote = "origin"\n')
    # origin names GitHub (with a token in its address), but git pushes to a local bare
    # repository instead: a real push, and no network.
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    address = "https://x-access-token:ghp_notreal@github.com/octo/greeter.git"
    git(repo, "remote", "add", "origin", address)
    git(repo, "config", f"url.{bare}.pushInsteadOf", address)

    goal = await finished(r, repo)
    pr = await r.json("GET", f"/api/goals/{goal['id']}/pull-request")

    assert pr["pushed"] is True and pr["url"] == ""  # no GitHub token: no pull request
    assert pr["remote_url"] == "https://github.com/octo/greeter.git"
    assert pr["branch_url"] == f"https://github.com/octo/greeter/tree/{goal['branch']}"
    assert "ghp_notreal" not in json.dumps(pr)


def test_credentials_are_taken_out_of_remote_addresses() -> None:
    assert without_credentials("https://u:p@example.test/o/r.git") == "https://example.test/o/r.git"
    assert without_credentials("https://example.test/o/r.git") == "https://example.test/o/r.git"
    assert without_credentials("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert without_credentials("/srv/git/r.git") == "/srv/git/r.git"
