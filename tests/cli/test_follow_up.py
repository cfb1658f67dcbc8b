"""``blitz run --follows``: a follow-up goal from the command line, killed (SIGKILL) after it
pushed the branch and before it updated the pull request, then ``blitz resume``-d by a new
process: the same branch, the same pull request (fake GitHub), its description updated once."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz, git, write_yaml

from blitz.testing.fake_github import FakeGitHub

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TOKEN = "ghp_blitzFollowUpCli0123456789abcdefABCD"
SCENARIO: dict[str, Any] = {
    "summary": "One line of notes.",
    "tasks": [{"id": "note", "title": "Write a line"}],
    "agent": {"note": [[{"append": {"path": "notes.txt", "content": "a line\n"}}]]},
}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as fake:
        yield fake


def status(home: Path, goal_id: str) -> dict[str, Any]:
    done = blitz(home, "status", goal_id, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_follow_up_killed_after_its_push_is_resumed_into_the_same_pull_request(
    repo: Path, home: Path, tmp_path: Path, github: FakeGitHub
) -> None:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", "https://github.com/acme/notes.git")
    git(repo, "remote", "set-url", "--push", "origin", str(bare))
    scenario = write_yaml(tmp_path / "scenario.yaml", SCENARIO)
    env = {"GITHUB_TOKEN": TOKEN, "BLITZ_GITHUB_API_URL": github.url}
    common = ("--repo", repo, "--scenario", scenario, "--json")

    first = blitz(home, "run", "Start the notes", *common, **env)
    assert first.returncode == 0, (first.stdout, first.stderr)
    earlier = status(home, json.loads(first.stdout)["goal"])
    (pull,) = github.pulls

    killed = blitz(
        home, "run", "Add a second line", "--follows", earlier["id"], *common,
        BLITZ_CRASH_AT="after_push", **env,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)
    assert len(github.pulls) == 1 and "blitz:follow-up" not in github.pulls[0]["body"]

    resumed = blitz(home, "resume", "--scenario", scenario, "--json", **env)
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    assert json.loads(resumed.stdout)["state"] == "succeeded"

    goals = blitz(home, "status", "--json")
    assert goals.returncode == 0, goals.stderr
    (follow_id,) = [g["id"] for g in json.loads(goals.stdout) if g["id"] != earlier["id"]]
    follow = status(home, follow_id)
    assert follow["follows"] == earlier["id"]
    assert follow["branch"] == earlier["branch"]
    assert follow["pr"] == earlier["pr"] == pull["html_url"]
    assert len(github.pulls) == 1
    body = github.pulls[0]["body"]
    assert body.count(f"<!-- blitz:follow-up {follow_id} -->") == 1
    assert "## Follow-up: Add a second line" in body
    branch = earlier["branch"]
    assert git(bare, "rev-parse", f"refs/heads/{branch}") == git(repo, "rev-parse", branch)
    assert git(repo, "show", f"{branch}:notes.txt") == "a line\na line\n"

    # The text view says what it continues.
    shown = blitz(home, "status", follow_id)
    assert f"following goal {earlier['id']}" in shown.stdout
