"""Publishing is a step that can be retried: real ``blitz`` processes push to a real bare remote
whose pre-receive hook refuses pushes on the test's say-so, and open pull requests on a fake
GitHub on 127.0.0.1 that can answer 401. Every task succeeded, so the goal succeeds whatever
publishing does: publishing is pending until a retry (by the same process with backoff, by
``blitz resume`` or by ``blitz publish``) gets through."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz, git, write_yaml

from blitz.testing.fake_github import FakeGitHub

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TOKEN = "ghp_blitzPublishTest0123456789abcdefABCD"
SCENARIO: dict[str, Any] = {
    "summary": "One note.",
    "tasks": [{"id": "note", "title": "Write a note"}],
    "agent": {"note": [[{"write": {"path": "note.txt", "content": "note\n"}}]]},
}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> Path:
    """A bare repository that ``origin`` pushes to (its fetch URL is on GitHub), with a
    pre-receive hook that refuses every push while ``<remote>/deny`` exists, saying what it
    holds, and refuses the first push only while ``<remote>/deny-once`` exists."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    hook = bare / "hooks" / "pre-receive"
    deny, once = shlex.quote(str(bare / "deny")), shlex.quote(str(bare / "deny-once"))
    hook.write_text(
        "#!/bin/sh\n"
        f"if [ -e {once} ]; then rm {once}; echo 'remote hiccup, try again' >&2; exit 1; fi\n"
        f"if [ -e {deny} ]; then cat {deny} >&2; exit 1; fi\n"
        "exit 0\n"
    )
    hook.chmod(0o755)
    git(repo, "remote", "add", "origin", "https://github.com/acme/calc.git")
    git(repo, "remote", "set-url", "--push", "origin", str(bare))
    return bare


def run_goal(
    home: Path, repo: Path, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    scenario = write_yaml(tmp_path / "scenario.yaml", SCENARIO)
    return blitz(
        home, "run", "Write a note", "--repo", repo, "--scenario", scenario, "--json", **env
    )


def status(home: Path, goal_id: str) -> dict[str, Any]:
    done = blitz(home, "status", goal_id, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def events(home: Path, goal_id: str) -> list[dict[str, Any]]:
    done = blitz(home, "events", goal_id, "--json", "--last", "0")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def pushed(remote: Path, branch: str) -> bool:
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        cwd=remote,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


def github_env(github: FakeGitHub, **extra: str) -> dict[str, str]:
    return {"GITHUB_TOKEN": TOKEN, "BLITZ_GITHUB_API_URL": github.url, **extra}


def test_a_push_that_fails_once_is_retried_by_the_process_and_the_pr_opened(
    repo: Path, home: Path, tmp_path: Path, remote: Path, github: FakeGitHub
) -> None:
    (remote / "deny-once").touch()

    done = run_goal(home, repo, tmp_path, **github_env(github))

    assert done.returncode == 0, (done.stdout, done.stderr)
    result = json.loads(done.stdout)
    goal = status(home, result["goal"])
    assert goal["state"] == "succeeded"
    assert goal["publish"] == {"state": "published", "error": "", "attempts": 1}
    assert pushed(remote, goal["branch"])
    (pull,) = github.pulls
    assert goal["pr"] == pull["html_url"]
    log = events(home, goal["id"])
    (failure,) = [e for e in log if e["kind"] == "publish.failed"]
    assert "remote hiccup" in failure["message"] and failure["data"]["retry_in"] == 1
    kinds = [e["kind"] for e in log]
    assert kinds.index("publish.failed") < kinds.index("pr.pushed") < kinds.index("pr.opened")
    assert kinds.count("goal.succeeded") == 1


def test_a_push_refused_for_good_leaves_the_goal_succeeded_with_publishing_pending(
    repo: Path, home: Path, tmp_path: Path, remote: Path
) -> None:
    (remote / "deny").write_text("the remote is being moved\n")

    done = run_goal(home, repo, tmp_path, BLITZ_PUBLISH_RETRY_FOR="0")

    assert done.returncode == 1, (done.stdout, done.stderr)
    goal_id = json.loads(done.stdout)["goal"]
    goal = status(home, goal_id)
    assert goal["state"] == "succeeded"
    assert [t["state"] for t in goal["tasks"]] == ["succeeded"]
    assert goal["publish"]["state"] == "pending" and goal["publish"]["attempts"] == 1
    assert "the remote is being moved" in goal["publish"]["error"]
    listed = blitz(home, "status")
    assert "publishing pending" in listed.stdout
    shown = blitz(home, "status", goal_id)
    assert f"blitz publish {goal_id}" in " ".join(shown.stdout.split())

    # resume takes it on (nothing else is unfinished) and tries again: still refused.
    again = blitz(home, "resume", "--json", BLITZ_PUBLISH_RETRY_FOR="0")
    assert again.returncode == 1, (again.stdout, again.stderr)
    assert status(home, goal_id)["publish"]["attempts"] == 2
    assert not pushed(remote, goal["branch"])

    # Once the remote takes pushes, `blitz publish` publishes it.
    (remote / "deny").unlink()
    published = blitz(home, "publish", goal_id)
    assert published.returncode == 0, (published.stdout, published.stderr)
    goal = status(home, goal_id)
    assert goal["state"] == "succeeded"
    assert goal["publish"] == {"state": "published", "error": "", "attempts": 2}
    assert pushed(remote, goal["branch"])
    kinds = [e["kind"] for e in events(home, goal_id)]
    assert kinds.count("goal.succeeded") == 1 and kinds.count("publish.failed") == 2
    assert "pr.pushed" in kinds
    nothing = blitz(home, "resume")
    assert nothing.returncode == 0 and "nothing to resume" in nothing.stdout


def test_a_refused_push_or_token_says_what_to_fix_and_blitz_publish_retries(
    repo: Path, home: Path, tmp_path: Path, remote: Path, github: FakeGitHub
) -> None:
    (remote / "deny").write_text("Permission to acme/calc.git denied to blitz-bot.\n")

    done = run_goal(home, repo, tmp_path, **github_env(github))

    assert done.returncode == 1, (done.stdout, done.stderr)
    goal_id = json.loads(done.stdout)["goal"]
    goal = status(home, goal_id)
    assert goal["state"] == "succeeded" and goal["publish"]["state"] == "pending"
    assert "git push was refused: check the credentials" in goal["publish"]["error"]
    assert goal["publish"]["attempts"] == 1  # not retried: a person must fix it
    assert not pushed(remote, goal["branch"])

    # The push goes through now, but GitHub refuses the token once: that says what to fix too.
    (remote / "deny").unlink()
    github.fail_next(1, status=401)
    refused = blitz(home, "publish", goal_id, "--json", **github_env(github))
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    answer = json.loads(refused.stdout)
    assert answer["publish_state"] == "pending" and answer["publish_attempts"] == 2
    error = answer["publish_error"]
    assert "GitHub rejected the token" in error and "GITHUB_TOKEN" in error
    assert TOKEN not in refused.stdout + json.dumps(status(home, goal_id))
    assert pushed(remote, goal["branch"]) and not github.pulls

    fixed = blitz(home, "publish", goal_id, "--json", **github_env(github))
    assert fixed.returncode == 0, (fixed.stdout, fixed.stderr)
    (pull,) = github.pulls
    assert json.loads(fixed.stdout)["pr"] == pull["html_url"]
    assert status(home, goal_id)["publish"]["state"] == "published"


def test_publish_refuses_a_goal_that_did_not_succeed(home: Path, tmp_path: Path) -> None:
    done = blitz(home, "publish", "g-nope")
    assert done.returncode == 2 and "no goal" in done.stderr
