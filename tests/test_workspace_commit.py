"""Workspace against real git repositories in tmp_path: a task's commit (trailers, the agent's
own commits folded, identity), the goal branch's trailers read back, integration (fast-forward,
rebase, conflict, a commit made elsewhere) and the integration lock, across tasks and
processes."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from engine_helpers import git
from workspace_helpers import BRANCH, GOAL, attempt, task_commit, workspace

from blitz.errors import GitError
from blitz.workspace import Integration, Workspace


@pytest.fixture
def ws(git_repo: Path, tmp_path: Path) -> Workspace:
    return workspace(git_repo, tmp_path)


# -- commit ------------------------------------------------------------------------------------


async def test_commit_writes_one_commit_with_trailers(ws: Workspace) -> None:
    worktree, base = await attempt(ws, "w1")
    (worktree / "feature.py").write_text("print('hi')\n")
    sha = await ws.commit(
        worktree,
        branch=BRANCH,
        base_sha=base,
        goal_id=GOAL,
        task_id="t1",
        title="Add the feature",
        body="# Why\nBecause.",
    )
    assert sha is not None
    assert git(worktree, "rev-parse", "HEAD") == sha
    assert git(worktree, "rev-parse", f"{sha}^") == base
    assert git(worktree, "log", "-1", "--format=%B", sha) == (
        "Add the feature\n\n# Why\nBecause.\n\nBlitz-Goal: g1\nBlitz-Task: t1"
    )
    assert git(worktree, "log", "-1", "--format=%an <%ae>", sha) == (
        "Test Author <author@example.test>"
    )
    assert git(worktree, "show", f"{sha}:feature.py") == "print('hi')"
    assert git(worktree, "status", "--porcelain") == ""
    # The goal branch does not move until integrate.
    assert git(worktree, "rev-parse", BRANCH) == base


async def test_commit_returns_none_without_changes(ws: Workspace) -> None:
    worktree, base = await attempt(ws, "w1")

    async def commit() -> str | None:
        return await ws.commit(
            worktree, branch=BRANCH, base_sha=base, goal_id=GOAL, task_id="t1", title="Nothing"
        )

    assert await commit() is None
    (worktree / "README.md").write_text("changed\n")
    (worktree / "README.md").write_text("# demo\n")  # changed and changed back
    assert await commit() is None
    assert git(worktree, "rev-parse", "HEAD") == base


async def test_commit_folds_the_agents_own_commits_into_one(ws: Workspace) -> None:
    worktree, base = await attempt(ws, "w1")
    git(worktree, "checkout", "-q", "-b", "agent-branch")
    for name in ("a.txt", "b.txt"):
        (worktree / name).write_text(name)
        git(worktree, "add", name)
        git(worktree, "commit", "-q", "-m", f"agent commits {name}")
    agent_head = git(worktree, "rev-parse", "HEAD")
    (worktree / "c.txt").write_text("c.txt")
    sha = await ws.commit(
        worktree, branch=BRANCH, base_sha=base, goal_id=GOAL, task_id="t1", title="Three files"
    )
    assert git(worktree, "rev-parse", f"{sha}^") == base
    assert git(worktree, "ls-tree", "--name-only", sha).split() == [
        "README.md",
        "a.txt",
        "b.txt",
        "c.txt",
    ]
    assert git(worktree, "symbolic-ref", "-q", "HEAD", check=False) == ""  # detached
    assert git(worktree, "rev-parse", "agent-branch") == agent_head


async def test_commit_falls_back_to_a_blitz_identity(
    ws: Workspace, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("GIT_COMMITTER_EMAIL")
    monkeypatch.delenv("EMAIL", raising=False)
    worktree, base = await attempt(ws, "w1")
    (worktree / "x.txt").write_text("x")
    sha = await ws.commit(
        worktree, branch=BRANCH, base_sha=base, goal_id=GOAL, task_id="t1", title="X"
    )
    assert git(worktree, "log", "-1", "--format=%an <%ae>|%cn <%ce>", str(sha)) == (
        "blitz <blitz@localhost>|blitz <blitz@localhost>"
    )
    # Nothing was written to any config.
    assert git(git_repo, "config", "--get", "user.name", check=False) == ""
    assert Path(os.environ["GIT_CONFIG_GLOBAL"]).read_text() == ""


async def test_commit_refuses_a_task_already_on_the_goal_branch(ws: Workspace) -> None:
    w1, base, sha = await task_commit(ws, "w1", "t1", {"a.txt": "a"})
    assert (await ws.integrate(w1, branch=BRANCH, commit_sha=sha, base_sha=base)).status == (
        "integrated"
    )
    # A retry of the same task (say after a crash) starts from the new head.
    w2, head = await attempt(ws, "w2")
    (w2 / "a.txt").write_text("a again")
    with pytest.raises(GitError, match="task already committed"):
        await ws.commit(w2, branch=BRANCH, base_sha=head, goal_id=GOAL, task_id="t1", title="Again")
    assert git(w2, "rev-parse", BRANCH) == sha
    assert git(w2, "rev-parse", "HEAD") == head


async def test_commit_refuses_foreign_directories_and_branches(
    ws: Workspace, git_repo: Path
) -> None:
    base = await ws.ensure_goal_branch(BRANCH, "main")
    (git_repo / "user.txt").write_text("user's work")
    with pytest.raises(GitError, match="not a blitz worktree"):
        await ws.commit(
            git_repo, branch=BRANCH, base_sha=base, goal_id=GOAL, task_id="t", title="x"
        )
    worktree = await ws.add_worktree("w1", base)
    (worktree / "x.txt").write_text("x")
    with pytest.raises(GitError, match="only writes branches under"):
        await ws.commit(
            worktree, branch="main", base_sha=base, goal_id=GOAL, task_id="t", title="x"
        )
    with pytest.raises(ValueError):
        await ws.commit(
            worktree, branch=BRANCH, base_sha=base, goal_id=GOAL, task_id="t\nx", title="x"
        )
    assert git(git_repo, "status", "--porcelain") == "?? user.txt"


# -- committed_tasks ---------------------------------------------------------------------------


async def test_committed_tasks_reads_this_goals_trailers(ws: Workspace, git_repo: Path) -> None:
    start = git(git_repo, "rev-parse", "main")
    w1, base, sha1 = await task_commit(ws, "w1", "t1", {"a.txt": "a"})
    await ws.integrate(w1, branch=BRANCH, commit_sha=sha1, base_sha=base)
    # Another goal's commit, whose body even quotes our trailers outside its trailer block.
    w2, base = await attempt(ws, "w2")
    (w2 / "b.txt").write_text("b")
    other = await ws.commit(
        w2,
        branch=BRANCH,
        base_sha=base,
        goal_id="other",
        task_id="fake",
        title="Foreign",
        body="Blitz-Goal: g1\nBlitz-Task: fake",
    )
    assert other is not None
    await ws.integrate(w2, branch=BRANCH, commit_sha=other, base_sha=base)
    w3, base, sha3 = await task_commit(ws, "w3", "t3", {"c.txt": "c"})
    await ws.integrate(w3, branch=BRANCH, commit_sha=sha3, base_sha=base)

    assert await ws.committed_tasks(BRANCH, start, GOAL) == {"t1": sha1, "t3": sha3}
    assert await ws.committed_tasks(BRANCH, sha1, GOAL) == {"t3": sha3}
    assert await ws.committed_tasks(BRANCH, start, "other") == {"fake": other}
    assert await ws.committed_tasks(BRANCH, start, "g") == {}


# -- integrate ---------------------------------------------------------------------------------


async def test_integrate_fast_forwards_the_goal_branch(ws: Workspace, git_repo: Path) -> None:
    main = git(git_repo, "rev-parse", "main")
    worktree, base, sha = await task_commit(ws, "w1", "t1", {"a.txt": "a"})
    result = await ws.integrate(worktree, branch=BRANCH, commit_sha=sha, base_sha=base)
    assert result == Integration(status="integrated", head=sha)
    assert git(git_repo, "rev-parse", BRANCH) == sha
    assert git(git_repo, "rev-parse", "main") == main
    again = await ws.integrate(worktree, branch=BRANCH, commit_sha=sha, base_sha=base)
    assert again.status == "already"
    assert again.head == sha


async def test_second_attempt_is_rebased_then_integrated(ws: Workspace, git_repo: Path) -> None:
    w1, base1, sha1 = await task_commit(ws, "w1", "t1", {"a.txt": "a\n"})
    w2, base2, sha2 = await task_commit(ws, "w2", "t2", {"b.txt": "b\n"})
    assert base1 == base2
    assert (await ws.integrate(w1, branch=BRANCH, commit_sha=sha1, base_sha=base1)).status == (
        "integrated"
    )

    rebased = await ws.integrate(w2, branch=BRANCH, commit_sha=sha2, base_sha=base2)
    assert rebased.status == "rebased"
    assert rebased.detail == sha1
    assert rebased.head != sha2
    assert git(w2, "rev-parse", "HEAD") == rebased.head
    assert git(w2, "rev-parse", f"{rebased.head}^") == sha1
    assert git(git_repo, "rev-parse", BRANCH) == sha1  # not moved until validated again

    done = await ws.integrate(w2, branch=BRANCH, commit_sha=rebased.head, base_sha=rebased.detail)
    assert done == Integration(status="integrated", head=rebased.head)
    assert git(git_repo, "show", f"{BRANCH}:a.txt") == "a"
    assert git(git_repo, "show", f"{BRANCH}:b.txt") == "b"
    assert await ws.committed_tasks(BRANCH, base1, GOAL) == {"t1": sha1, "t2": rebased.head}


async def test_without_a_worktree_a_commit_fast_forwards_or_is_replayed(
    ws: Workspace, git_repo: Path
) -> None:
    """A commit made elsewhere (a remote worker's) lands with no worktree while the branch has
    not moved; once it has, it is replayed onto it (test_replay.py says how)."""
    _, base1, sha1 = await task_commit(ws, "w1", "t1", {"a.txt": "a\n"})
    _, base2, sha2 = await task_commit(ws, "w2", "t2", {"b.txt": "b\n"})
    landed = await ws.integrate(None, branch=BRANCH, commit_sha=sha1, base_sha=base1)
    assert landed == Integration(status="integrated", head=sha1)

    rebased = await ws.integrate(None, branch=BRANCH, commit_sha=sha2, base_sha=base2)
    assert rebased.status == "rebased" and rebased.detail == sha1
    assert git(git_repo, "rev-parse", BRANCH) == sha1


async def test_overlapping_edits_conflict_and_leave_the_worktree_clean(
    ws: Workspace, git_repo: Path
) -> None:
    w1, base, sha1 = await task_commit(ws, "w1", "t1", {"README.md": "one\n", "a.txt": "a"})
    w2, _, sha2 = await task_commit(ws, "w2", "t2", {"README.md": "two\n", "b.txt": "b"})
    await ws.integrate(w1, branch=BRANCH, commit_sha=sha1, base_sha=base)

    result = await ws.integrate(w2, branch=BRANCH, commit_sha=sha2, base_sha=base)
    assert result.status == "conflict"
    assert result.conflict_files == ("README.md",)
    assert result.head == sha1
    assert "CONFLICT" in result.detail
    assert git(git_repo, "rev-parse", BRANCH) == sha1
    assert git(w2, "status", "--porcelain") == ""
    assert git(w2, "rev-parse", "HEAD") == sha2
    rebase_dir = Path(w2, git(w2, "rev-parse", "--git-path", "rebase-merge"))
    assert not rebase_dir.exists()


async def test_integrate_refuses_a_checked_out_goal_branch(
    ws: Workspace, git_repo: Path, tmp_path: Path
) -> None:
    worktree, base, sha = await task_commit(ws, "w1", "t1", {"a.txt": "a"})
    git(git_repo, "worktree", "add", "-q", str(tmp_path / "user-wt"), BRANCH)
    with pytest.raises(GitError, match="checked out"):
        await ws.integrate(worktree, branch=BRANCH, commit_sha=sha, base_sha=base)
    assert git(git_repo, "rev-parse", BRANCH) == base
    assert git(tmp_path / "user-wt", "status", "--porcelain") == ""


async def test_integrate_never_writes_a_non_blitz_branch(ws: Workspace, git_repo: Path) -> None:
    main = git(git_repo, "rev-parse", "main")
    worktree, _, sha = await task_commit(ws, "w1", "t1", {"a.txt": "a"})
    with pytest.raises(GitError):
        await ws.integrate(worktree, branch="main", commit_sha=sha, base_sha=main)
    assert git(git_repo, "rev-parse", "main") == main


# -- the lock ----------------------------------------------------------------------------------


async def test_concurrent_integrations_serialise(ws: Workspace) -> None:
    w1, base, sha1 = await task_commit(ws, "w1", "t1", {"a.txt": "a"})
    w2, _, sha2 = await task_commit(ws, "w2", "t2", {"b.txt": "b"})
    results = await asyncio.gather(
        ws.integrate(w1, branch=BRANCH, commit_sha=sha1, base_sha=base),
        ws.integrate(w2, branch=BRANCH, commit_sha=sha2, base_sha=base),
    )
    assert sorted(r.status for r in results) == ["integrated", "rebased"]


async def test_integrate_waits_for_the_lock_held_by_another_task(
    ws: Workspace, git_repo: Path, tmp_path: Path
) -> None:
    worktree, base, sha = await task_commit(ws, "w1", "t1", {"a.txt": "a"})
    # A second Workspace on the same repository shares the lock.
    other = Workspace(git_repo, worktrees_root=tmp_path / "worktrees", lock_dir=tmp_path / "locks")
    entered = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with other.lock():
            entered.set()
            await release.wait()

    holding = asyncio.create_task(holder())
    await entered.wait()
    integrating = asyncio.create_task(
        ws.integrate(worktree, branch=BRANCH, commit_sha=sha, base_sha=base)
    )
    await asyncio.sleep(0.3)
    assert not integrating.done()
    assert git(git_repo, "rev-parse", BRANCH) == base
    release.set()
    await holding
    assert (await asyncio.wait_for(integrating, 10)).status == "integrated"


async def test_lock_is_reentrant_within_a_task(ws: Workspace) -> None:
    async with ws.lock():
        await asyncio.wait_for(ws.ensure_goal_branch(BRANCH, "main"), 10)


_HOLD_LOCK = """
import asyncio, sys
from pathlib import Path
from blitz.workspace import Workspace

async def main():
    ws = Workspace(Path(sys.argv[1]), worktrees_root=Path(sys.argv[2]), lock_dir=Path(sys.argv[3]))
    async with ws.lock():
        print("locked", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

asyncio.run(main())
"""


async def test_lock_is_shared_across_processes(
    ws: Workspace, git_repo: Path, tmp_path: Path
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LOCK,
        str(git_repo), str(tmp_path / "worktrees"), str(tmp_path / "locks"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"locked\n"
        acquired = asyncio.Event()
        ticks = 0

        async def take() -> None:
            async with ws.lock():
                acquired.set()

        async def tick() -> None:
            nonlocal ticks
            while not acquired.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        taking = asyncio.create_task(take())
        ticking = asyncio.create_task(tick())
        await asyncio.sleep(0.5)
        assert not acquired.is_set()
        assert ticks > 10  # the event loop kept running while the lock was awaited
        child.stdin.write(b"release\n")
        await child.stdin.drain()
        await asyncio.wait_for(taking, 10)
        await ticking
    finally:
        if child.returncode is None:
            child.stdin.close()
            await asyncio.wait_for(child.wait(), 10)
    assert child.returncode == 0
