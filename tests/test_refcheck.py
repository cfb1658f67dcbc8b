"""The ref check against real repositories: what an agent changed is named and undone, what blitz
changed meanwhile is not blamed, a moved worktree HEAD is put back with its changes kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from engine_helpers import git

from blitz import refcheck
from blitz.workspace import Workspace

BRANCH = "blitz/demo-g1"


def commit(cwd: Path, name: str) -> str:
    (cwd / name).write_text(name)
    git(cwd, "add", name)
    git(cwd, "commit", "-q", "-m", name)
    return git(cwd, "rev-parse", "HEAD")


@pytest.fixture
def ws(git_repo: Path, tmp_path: Path) -> Workspace:
    return Workspace(
        git_repo, worktrees_root=tmp_path / "worktrees", lock_dir=tmp_path / "locks", git_timeout=30
    )


async def start(ws: Workspace, name: str = "a1") -> tuple[Path, str, refcheck.Snapshot]:
    """A worktree at the goal branch head and the snapshot taken before the agent runs."""
    base = await ws.ensure_goal_branch(BRANCH, "main")
    worktree = await ws.add_worktree(name, base)
    return worktree, base, await refcheck.snapshot(ws)


async def test_nothing_changed_is_clean(ws: Workspace) -> None:
    worktree, base, before = await start(ws)
    assert {"refs/heads/main", f"refs/heads/{BRANCH}", "HEAD"} <= before.refs.keys()
    assert before.refs["HEAD"] == "ref: refs/heads/main"
    checked = await refcheck.verify(ws, before, worktree=worktree, base=base)
    assert checked == refcheck.RefCheck()
    assert checked.error == ""


async def test_a_moved_branch_is_named_and_put_back(ws: Workspace) -> None:
    main = git(ws.repo, "rev-parse", "main")
    other = commit(ws.repo, "other.txt")  # main is now at `other`
    git(ws.repo, "update-ref", "refs/heads/main", main)
    worktree, base, before = await start(ws)
    git(worktree, "update-ref", "refs/heads/main", other)
    checked = await refcheck.verify(ws, before, worktree=worktree, base=base)
    assert [(c.ref, c.old, c.new, c.restored) for c in checked.changes] == [
        ("refs/heads/main", main, other, True)
    ]
    assert f"refs/heads/main moved {main[:10]} → {other[:10]} (restored)" in checked.error
    assert git(ws.repo, "rev-parse", "refs/heads/main") == main


async def test_created_and_deleted_refs_are_undone(ws: Workspace) -> None:
    git(ws.repo, "tag", "v1")
    git(ws.repo, "notes", "add", "-m", "note")
    worktree, base, before = await start(ws)
    git(worktree, "tag", "evil")
    git(worktree, "tag", "-d", "v1")
    git(worktree, "notes", "remove", "HEAD")
    checked = await refcheck.verify(ws, before, worktree=worktree, base=base)
    described = checked.error
    assert "refs/tags/evil created at" in described and "(deleted again)" in described
    assert "refs/tags/v1 deleted" in described and "(recreated)" in described
    assert "refs/notes/commits moved" in described
    tags = git(ws.repo, "tag", "--list").split()
    assert tags == ["v1"]
    assert git(ws.repo, "notes", "show", "HEAD") == "note"


async def test_a_moved_remote_tracking_ref_says_the_remote_may_have_been_pushed(
    ws: Workspace, tmp_path: Path
) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(ws.repo, "remote", "add", "origin", str(bare))
    git(ws.repo, "push", "-q", "origin", "main")
    git(ws.repo, "fetch", "-q", "origin")
    old = git(ws.repo, "rev-parse", "refs/remotes/origin/main")
    worktree, base, before = await start(ws)
    (worktree / "x.txt").write_text("x")
    git(worktree, "add", "x.txt")
    git(worktree, "commit", "-q", "-m", "x")
    git(worktree, "push", "-q", "--force", "origin", "HEAD:main")
    checked = await refcheck.verify(ws, before, worktree=worktree, base=base)
    assert [c.ref for c in checked.changes] == ["refs/remotes/origin/main"]
    assert "the agent may have pushed; check the remote 'origin'" in checked.error
    assert "(restored locally)" in checked.error
    assert git(ws.repo, "rev-parse", "refs/remotes/origin/main") == old
    # The commit the agent made in its worktree is undone, its change kept.
    assert checked.head.startswith("the agent moved its worktree's HEAD")
    assert git(worktree, "rev-parse", "HEAD") == base
    assert (worktree / "x.txt").read_text() == "x"


async def test_blitz_own_moves_meanwhile_are_not_blamed(ws: Workspace) -> None:
    worktree, base, before = await start(ws)
    other = await ws.add_worktree("a2", base)  # another attempt integrates meanwhile
    (other / "b.txt").write_text("b")
    sha = await ws.commit(
        other, branch=BRANCH, base_sha=base, goal_id="g1", task_id="t2", title="t2"
    )
    assert sha is not None
    integrated = await ws.integrate(other, branch=BRANCH, commit_sha=sha, base_sha=base)
    assert integrated.status == "integrated"
    await ws.keep_ref("refs/blitz/attempts/g1/t2/a2", sha)
    checked = await refcheck.verify(ws, before, worktree=worktree, base=base)
    assert checked.changes == ()
    assert git(ws.repo, "rev-parse", f"refs/heads/{BRANCH}") == sha


async def test_the_agent_moving_a_ref_blitz_moved_meanwhile_puts_back_blitz_value(
    ws: Workspace,
) -> None:
    worktree, base, before = await start(ws)
    other = await ws.add_worktree("a2", base)
    (other / "b.txt").write_text("b")
    sha = await ws.commit(
        other, branch=BRANCH, base_sha=base, goal_id="g1", task_id="t2", title="t2"
    )
    assert sha is not None
    await ws.integrate(other, branch=BRANCH, commit_sha=sha, base_sha=base)
    stray = git(worktree, "commit-tree", f"{base}^{{tree}}", "-p", base, "-m", "stray")
    git(worktree, "update-ref", f"refs/heads/{BRANCH}", stray)  # what the agent did
    checked = await refcheck.verify(ws, before, worktree=worktree, base=base)
    assert [c.ref for c in checked.changes] == [f"refs/heads/{BRANCH}"]
    assert git(ws.repo, "rev-parse", f"refs/heads/{BRANCH}") == sha  # blitz's, not the old one


async def test_a_checkout_in_the_worktree_is_detached_again_without_moving_the_branch(
    ws: Workspace,
) -> None:
    worktree, base, before = await start(ws)
    git(worktree, "checkout", "-q", "-b", "mine")
    made = commit(worktree, "m.txt")
    checked = await refcheck.verify(ws, before, worktree=worktree, base=base)
    assert "(it had checked out mine)" in checked.head
    assert git(worktree, "rev-parse", "HEAD") == base
    detached = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=worktree, timeout=30)
    assert detached.returncode == 1
    # The branch it created is blamed and deleted; the file it wrote is still there.
    assert [(c.ref, c.new) for c in checked.changes] == [("refs/heads/mine", made)]
    assert (worktree / "m.txt").exists()
    assert git(ws.repo, "branch", "--list", "mine") == ""


async def test_a_moved_main_checkout_head_is_named_not_put_back(ws: Workspace) -> None:
    git(ws.repo, "branch", "side")
    worktree, base, before = await start(ws)
    git(ws.repo, "symbolic-ref", "HEAD", "refs/heads/side")
    checked = await refcheck.verify(ws, before, worktree=worktree, base=base)
    assert "the main checkout's HEAD moved from main to side" in checked.error
    assert git(ws.repo, "symbolic-ref", "HEAD") == "refs/heads/side"
