"""The hooks of the user's repository never stop blitz's commits.

A pre-commit or commit-msg hook may be interactive, slow, or need tools a worktree lacks; blitz's
checks are its gates (docs/architecture.md, "Decisions worth knowing"). Every hook below fails,
and notes that it ran, in the two places a repository keeps hooks: ``.git/hooks`` and a
committed directory named by ``core.hooksPath`` (husky's layout). Each test first shows that the
hooks are live: a plain ``git commit`` in the checkout is refused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from engine_helpers import MakeApp, branch_commits, git, make_repo, run_one, task, write

from blitz import git as blitz_git
from blitz.domain import GoalState

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("isolated_git")]

FAILING_HOOKS = (
    "pre-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-merge-commit",
    "pre-rebase",
    "post-rewrite",
    "post-checkout",
    "reference-transaction",
)
"""Every hook a local commit, a rebase, a checkout or a ref update can run."""

LAYOUTS = ("git-dir", "hooks-path")


def install_failing_hooks(repo: Path, layout: str, ran: Path) -> None:
    """Make every hook of :data:`FAILING_HOOKS` append its name to ``ran`` and fail."""
    if layout == "git-dir":
        hooks = repo / ".git" / "hooks"
    else:
        hooks = repo / ".husky"
        hooks.mkdir()
        git(repo, "config", "core.hooksPath", ".husky")
    for name in FAILING_HOOKS:
        hook = hooks / name
        hook.write_text(
            f"#!/bin/sh\necho {name} >> '{ran}'\necho 'hook {name} says no' >&2\nexit 1\n"
        )
        hook.chmod(0o755)
    if layout == "hooks-path":  # committed, as husky's are (the hooks themselves kept out)
        git(repo, "add", ".husky")
        git(repo, "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", "Add hooks")


def assert_hooks_are_live(repo: Path, ran: Path) -> None:
    """A plain commit in the checkout is refused by the hooks (then the record is cleared)."""
    (repo / "by-hand.txt").write_text("by hand\n")
    git(repo, "add", "by-hand.txt")
    refused = subprocess.run(
        ["git", "commit", "-q", "-m", "by hand"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode != 0 and "hook pre-commit says no" in refused.stderr
    git(repo, "reset", "-q", "--", "by-hand.txt")
    (repo / "by-hand.txt").unlink()
    assert ran.read_text().split() == ["pre-commit"]
    ran.unlink()


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_failing_hooks_do_not_stop_the_engines_commits(
    tmp_path: Path, apps: MakeApp, layout: str
) -> None:
    repo = make_repo(tmp_path, max_parallel=2)
    ran = tmp_path / "hooks-that-ran.txt"
    install_failing_hooks(repo, layout, ran)
    assert_hooks_are_live(repo, ran)
    app = apps({
        "summary": "Two files, side by side, then a third on top.",
        "tasks": [task("one"), task("two"), task("three", "one", "two")],
        "agent": {
            "one": [[write("one.txt", "one\n")]],
            "two": [[write("two.txt", "two\n")]],
            "three": [[write("three.txt", "three\n")]],
        },
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    commits = branch_commits(repo, goal.branch)
    assert sorted(t for c in commits for t in c.tasks) == ["one", "three", "two"]
    files = git(repo, "ls-tree", "-r", "--name-only", goal.branch).split()
    assert {"one.txt", "two.txt", "three.txt"} <= set(files)
    assert not ran.exists(), f"hooks ran: {ran.read_text()}"


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_failing_hooks_do_not_stop_a_commit_through_the_git_helper(
    git_repo: Path, tmp_path: Path, layout: str
) -> None:
    ran = tmp_path / "hooks-that-ran.txt"
    install_failing_hooks(git_repo, layout, ran)
    assert_hooks_are_live(git_repo, ran)
    before = git(git_repo, "rev-parse", "HEAD")
    (git_repo / "a.txt").write_text("a\n")

    await blitz_git.run_git(git_repo, "add", "a.txt", timeout=30)
    await blitz_git.run_git(git_repo, "commit", "-q", "-m", "add a", timeout=30)

    assert git(git_repo, "rev-parse", "HEAD^") == before
    assert git(git_repo, "log", "-1", "--format=%s") == "add a"
    assert not ran.exists(), f"hooks ran: {ran.read_text()}"
