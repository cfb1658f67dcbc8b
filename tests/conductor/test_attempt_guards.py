"""The guards an attempt runs after its agent, end to end with no sandbox: an agent that changes
the repository's refs (a branch, a push, a tag) fails and the local refs are put back; blitz's
own integration of another task meanwhile is not blamed; an agent that writes a known secret
into its change fails, and the secret is stored nowhere.

Real git, a real bare remote, the real SQLite store; the scripted planner and backend, whose
``run`` action runs a shell command in the worktree as an agent CLI would.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (
    MakeApp,
    branch_commits,
    git,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    make_repo,
    run_one,
    task,
    write,
)

from blitz.app import App
from blitz.domain import AttemptState, Goal, GoalState
from blitz.redact import REDACTED, register_secret

pytestmark = pytest.mark.usefixtures("isolated_git")

SANDBOX_OFF = {"sandbox": {"mode": "off"}}
"""These defences hold without the sandbox: it is off here, so the agent can reach the refs."""

ONE_TRY = {"max_recoveries_per_task": 0}
"""A failed task is not tried again: each test looks at one attempt."""


def agent(*actions: dict[str, Any]) -> dict[str, Any]:
    """A scenario of one task ``a`` whose agent does ``actions``."""
    return {"tasks": [task("a")], "agent": {"a": [list(actions)]}}


async def failed_attempt(app: App, repo: Path) -> tuple[Goal, str]:
    """Run the goal; it fails with one failed attempt, whose error is returned."""
    started, goal = await asyncio.wait_for(run_one(app, repo), 120)
    assert goal.state is GoalState.FAILED
    attempts = app.store.load_attempts(started.goal.id)
    assert [a.state for a in attempts] == [AttemptState.FAILED]
    return goal, attempts[0].error


async def test_an_agent_moving_main_fails_and_main_is_restored(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, limits=ONE_TRY, sections=SANDBOX_OFF)
    main = git(repo, "rev-parse", "main")
    evil = "git update-ref refs/heads/main $(git commit-tree HEAD^{tree} -p HEAD -m evil)"
    app = apps(agent(write("a.txt", "a\n"), {"run": evil}))
    _goal, error = await failed_attempt(app, repo)
    assert "refs/heads/main moved" in error and "(restored)" in error
    assert git(repo, "rev-parse", "main") == main


async def test_a_force_push_fails_naming_the_remote_ref(tmp_path: Path, apps: MakeApp) -> None:
    repo = make_repo(tmp_path, limits=ONE_TRY, sections=SANDBOX_OFF)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    git(repo, "fetch", "-q", "origin")
    tracked = git(repo, "rev-parse", "refs/remotes/origin/main")
    push = "git commit -q --allow-empty -m evil && git push -q --force origin HEAD:main"
    app = apps(agent(write("a.txt", "a\n"), {"run": push}))
    _goal, error = await failed_attempt(app, repo)
    assert "refs/remotes/origin/main moved" in error
    assert "the agent may have pushed; check the remote 'origin'" in error
    assert git(repo, "rev-parse", "refs/remotes/origin/main") == tracked  # put back locally
    assert git(remote, "rev-parse", "main") != tracked  # the push itself cannot be undone


async def test_a_created_tag_is_named_and_deleted(tmp_path: Path, apps: MakeApp) -> None:
    repo = make_repo(tmp_path, limits=ONE_TRY, sections=SANDBOX_OFF)
    app = apps(agent(write("a.txt", "a\n"), {"run": "git tag v9.9"}))
    _goal, error = await failed_attempt(app, repo)
    assert "refs/tags/v9.9 created at" in error and "(deleted again)" in error
    assert git(repo, "tag", "--list") == ""


async def test_blitz_integrating_another_task_meanwhile_is_not_blamed(
    tmp_path: Path, apps: MakeApp
) -> None:
    # "a" waits (up to 15 s) until the goal branch moves under it, which only "b"'s
    # integration does, and says in a.txt whether it saw that happen.
    wait = (
        "start=$(git rev-parse HEAD); i=0; "
        'while [ "$(git for-each-ref --format=\'%(objectname)\' refs/heads/blitz/)" = "$start" ]'
        " && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; "
        "[ $i -lt 300 ] && echo moved > a.txt || echo timeout > a.txt"
    )
    scenario = {
        "tasks": [task("a"), task("b")],
        "agent": {"a": [[{"run": wait}]], "b": [[{"sleep": 0.5}, write("b.txt", "b\n")]]},
    }
    repo = make_repo(tmp_path, limits=ONE_TRY, sections=SANDBOX_OFF)
    app = apps(scenario)
    started, goal = await asyncio.wait_for(run_one(app, repo), 120)
    attempts = app.store.load_attempts(started.goal.id)
    assert goal.state is GoalState.SUCCEEDED, [a.error for a in attempts]
    assert [a.state for a in attempts] == [AttemptState.SUCCEEDED] * 2
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("b",), ("a",)]
    assert git(repo, "show", f"{goal.branch}:a.txt") == "moved"


async def test_a_registered_secret_written_into_the_change_fails_and_is_stored_nowhere(
    tmp_path: Path, apps: MakeApp
) -> None:
    secret = "tok-" + secrets.token_hex(16)
    register_secret(secret)
    repo = make_repo(tmp_path, limits=ONE_TRY, sections=SANDBOX_OFF)
    app = apps(agent(write("config.py", f"API_KEY = {secret!r}\n")))
    goal, error = await failed_attempt(app, repo)
    assert "config.py" in error and f"API_KEY = '{REDACTED}'" in error
    assert secret not in error
    for event in goal_events(app, goal.id):
        assert secret not in event.message and secret not in str(event.data)
    await app.store.flush()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "home").rglob("blitz.db*"))
    assert stored and secret.encode() not in stored
    assert git(repo, "for-each-ref", "refs/heads/blitz/") != ""  # the goal branch is there
    assert secret not in git(repo, "log", "--all", "-p")  # and nothing with the secret landed
