"""The warm worktree pool against real git repositories: what an earlier holder left never
reaches the next one, caches named in ``keep`` survive, the pool stays bounded and never blocks,
and a holder killed with ``kill -9`` (a real process) loses its claim."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from blitz.errors import ConfigError
from blitz.pool import Pooled, WorktreePool
from blitz.workspace import Workspace
from blitz.worktree_reset import verify


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def ws(git_repo: Path, tmp_path: Path) -> Workspace:
    (git_repo / ".gitignore").write_text("node_modules/\nbuild/\n")
    (git_repo / "src").mkdir()
    (git_repo / "src" / "app.py").write_text("print('hi')\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "app")
    return Workspace(
        git_repo, worktrees_root=tmp_path / "worktrees", lock_dir=tmp_path / "locks", git_timeout=30
    )


def pool_of(ws: Workspace, size: int = 2, keep: tuple[str, ...] = ()) -> WorktreePool:
    return WorktreePool(ws, size=size, keep=keep)


def tree(path: Path) -> set[str]:
    """Every file under ``path`` but git's own, relative."""
    return {
        str(p.relative_to(path))
        for p in path.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(path).parts[:1]
    }


async def assert_exactly(ws: Workspace, pooled: Pooled, sha: str, keep: tuple[str, ...] = ()):
    assert await verify(ws.git, pooled.path, sha, keep=keep) == []
    assert git(pooled.path, "rev-parse", "HEAD") == sha
    assert git(pooled.path, "status", "--porcelain", "--ignored", "--untracked-files=all") == ""


async def test_a_worktree_is_reused_and_handed_out_clean_after_a_messy_holder(
    ws: Workspace,
) -> None:
    pool = pool_of(ws)
    main = await ws.rev_parse("main")
    async with pool.worktree(main, purpose="attempt a1") as first:
        assert not first.reused
        assert first.marker.parent != first.path and first.path not in first.marker.parents
        await assert_exactly(ws, first, main)
        wt = first.path
        # What an agent might leave: tracked edits and deletions, untracked and ignored files,
        # a nested repository, a commit on a branch it checked out, a rebase half done,
        # index flags that hide changes from `git status`.
        (wt / "README.md").write_text("changed\n")
        (wt / "src" / "app.py").unlink()
        (wt / "new.txt").write_text("untracked\n")
        (wt / "build").mkdir()
        (wt / "build" / "out.o").write_text("ignored\n")
        git(wt, "checkout", "-q", "-b", "agent-branch")
        git(wt, "add", "-A")
        git(wt, "commit", "-q", "-m", "agent work")
        agent_branch = git(wt, "rev-parse", "agent-branch")
        git(wt, "checkout", "-q", "--detach", "main")
        (wt / "README.md").write_text("conflicting\n")
        git(wt, "commit", "-q", "-am", "other")
        rebase = subprocess.run(["git", "rebase", "agent-branch"], cwd=wt, capture_output=True)
        assert rebase.returncode != 0  # a conflict: the rebase stays in progress
        (wt / "nested").mkdir()
        git(wt / "nested", "init", "-q")
    async with pool.worktree(main, purpose="attempt a2") as second:
        assert second.reused and second.path == first.path
        await assert_exactly(ws, second, main)
        assert tree(second.path) == {".gitignore", "README.md", "src/app.py"}
    assert git(ws.repo, "rev-parse", "agent-branch") == agent_branch  # never moved


async def test_index_flags_and_an_agent_branch_checked_out_are_undone(ws: Workspace) -> None:
    pool = pool_of(ws)
    main = await ws.rev_parse("main")
    async with pool.worktree(main, purpose="a1") as first:
        wt = first.path
        git(wt, "update-index", "--skip-worktree", "README.md")
        git(wt, "update-index", "--assume-unchanged", "src/app.py")
        (wt / "README.md").write_text("hidden change\n")
        (wt / "src" / "app.py").write_text("hidden too\n")
        assert git(wt, "status", "--porcelain") == ""  # the flags hide both changes
        git(wt, "checkout", "-q", "-b", "left-checked-out")
    # Given back detached: the branch it checked out is free for anyone to move again.
    done = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=first.path)
    assert done.returncode != 0
    async with pool.worktree(main, purpose="a2") as second:
        await assert_exactly(ws, second, main)
        assert (second.path / "README.md").read_text() == "# demo\n"
        assert (second.path / "src" / "app.py").read_text() == "print('hi')\n"
        assert git(second.path, "ls-files", "-v").splitlines()[0].startswith("H ")


async def test_a_worktree_moves_to_another_commit(ws: Workspace) -> None:
    pool = pool_of(ws, size=1)
    first_sha = await ws.rev_parse("main~1")
    main = await ws.rev_parse("main")
    async with pool.worktree(main, purpose="a1"):
        pass
    async with pool.worktree(first_sha, purpose="a2") as back:
        assert back.reused
        await assert_exactly(ws, back, first_sha)
        assert not (back.path / "src").exists()


async def test_kept_caches_survive_and_everything_else_is_cleaned(ws: Workspace) -> None:
    keep = ("node_modules", ".venv")
    pool = pool_of(ws, keep=keep)
    main = await ws.rev_parse("main")
    async with pool.worktree(main, purpose="a1") as first:
        wt = first.path
        (wt / "node_modules" / "left-pad").mkdir(parents=True)
        (wt / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n")
        (wt / ".venv").mkdir()  # a virtualenv ignores itself, as `uv venv` and `venv` make it
        (wt / ".venv" / ".gitignore").write_text("*\n")
        (wt / ".venv" / "python").write_text("#!/bin/sh\n")
        (wt / "build").mkdir()
        (wt / "build" / "cache.o").write_text("ignored, but not kept\n")
        first.marker.parent.mkdir(parents=True, exist_ok=True)
        first.marker.write_text("set up\n")
    async with pool.worktree(main, purpose="a2") as second:
        assert second.reused
        assert second.marker.read_text() == "set up\n"  # the caches it describes are there
        assert await verify(ws.git, second.path, main, keep=keep) == []
        assert (second.path / "node_modules" / "left-pad" / "index.js").is_file()
        assert (second.path / ".venv" / "python").is_file()
        assert not (second.path / "build").exists()
        # A kept directory is still invisible to git: it never enters an attempt's change.
        assert git(second.path, "status", "--porcelain", "--untracked-files=all") == ""


async def test_a_kept_directory_that_git_would_see_is_not_kept(ws: Workspace) -> None:
    pool = pool_of(ws, keep=("vendor",))
    main = await ws.rev_parse("main")
    async with pool.worktree(main, purpose="a1") as first:
        (first.path / "vendor").mkdir()
        (first.path / "vendor" / "lib.c").write_text("not ignored: it would be committed\n")
        first.marker.parent.mkdir(parents=True, exist_ok=True)
        first.marker.write_text("set up, vendor/ filled\n")
    async with pool.worktree(main, purpose="a2") as second:
        assert not (second.path / "vendor").exists()
        assert not second.marker.exists()  # what the set-up made is gone: it runs again
        await assert_exactly(ws, second, main)


def test_a_keep_entry_outside_the_worktree_is_a_configuration_error(ws: Workspace) -> None:
    for bad in ("../elsewhere", "/", ".git", "a/../../b"):
        with pytest.raises(ConfigError, match="keep"):
            pool_of(ws, keep=(bad,))


async def test_a_worktree_that_cannot_be_reset_is_made_anew(ws: Workspace) -> None:
    pool = pool_of(ws, size=1)
    main = await ws.rev_parse("main")
    async with pool.worktree(main, purpose="a1") as first:
        first.marker.parent.mkdir(parents=True, exist_ok=True)
        first.marker.write_text("set-up done\n")
        (first.path / "junk").write_text("x\n")
        (first.path / ".git").write_text("gitdir: /nowhere\n")  # no longer a worktree of ours
    async with pool.worktree(main, purpose="a2") as second:
        assert not second.reused and second.path == first.path
        assert not second.marker.exists()  # a new worktree has no set-up yet
        await assert_exactly(ws, second, main)


async def test_the_pool_is_bounded_and_never_blocks(ws: Workspace) -> None:
    pool = pool_of(ws, size=2)
    main = await ws.rev_parse("main")
    async with (
        pool.worktree(main, purpose="a1") as a,
        pool.worktree(main, purpose="a2") as b,
        pool.worktree(main, purpose="a3") as c,
    ):
        assert len({a.path, b.path, c.path}) == 3
        assert {a.name, b.name} == {"pool-1", "pool-2"}
        assert c.name.startswith("tmp-")
        listed = {e.name: e for e in await pool.entries()}
        assert listed[c.name].kind == "temporary" and listed[c.name].busy
        assert listed["pool-1"].busy and "a1" in listed[a.name].holder
    assert not c.path.exists()  # the temporary one is removed after use
    assert sorted(p.name for p in ws.worktrees_dir.iterdir()) == ["pool-1", "pool-2"]
    assert [e.busy for e in await pool.entries()] == [False, False]


async def test_concurrent_takers_never_share_a_worktree(ws: Workspace) -> None:
    pool = pool_of(ws, size=3)
    main = await ws.rev_parse("main")
    holding: set[Path] = set()

    async def hold(i: int) -> None:
        async with pool.worktree(main, purpose=f"a{i}") as p:
            assert p.path not in holding
            holding.add(p.path)
            (p.path / f"mine-{i}").write_text("x")
            await asyncio.sleep(0.01)
            assert sorted(x.name for x in p.path.glob("mine-*")) == [f"mine-{i}"]
            holding.discard(p.path)

    await asyncio.gather(*(hold(i) for i in range(8)))


HOLDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from blitz.pool import WorktreePool
    from blitz.workspace import Workspace

    async def main() -> None:
        repo, root = Path(sys.argv[1]), Path(sys.argv[2])
        ws = Workspace(repo, worktrees_root=root / "worktrees", lock_dir=root / "locks")
        pool = WorktreePool(ws, size=1)
        async with pool.worktree("main", purpose="held by a child") as p:
            print(p.path, flush=True)
            n = 0
            while True:  # an agent writing, tracked and untracked, until it is killed
                (p.path / "README.md").write_text(f"write {n}\\n")
                (p.path / f"out-{n % 50}.txt").write_text("x" * 1000)
                n += 1
                time.sleep(0.001)

    asyncio.run(main())
    """
)


async def test_a_holder_killed_mid_write_loses_its_claim_and_leaves_nothing_behind(
    ws: Workspace, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ws.repo), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        held = Path(child.stdout.readline().strip())
        pool = pool_of(ws, size=1)
        main = await ws.rev_parse("main")
        # While the child lives, its worktree is not ours: we get a temporary one.
        async with pool.worktree(main, purpose="meanwhile") as other:
            assert other.path != held and other.name.startswith("tmp-")
        while not list(held.glob("out-*")):
            await asyncio.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert any(e.name == held.name and not e.busy for e in await pool.entries())
        async with pool.worktree(main, purpose="after the kill") as after:
            assert after.path == held and after.reused
            await assert_exactly(ws, after, main)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        assert child.stdout is not None
        child.stdout.close()


async def test_prune_removes_what_nobody_holds(ws: Workspace) -> None:
    pool = pool_of(ws, size=2)
    main = await ws.rev_parse("main")
    async with pool.worktree(main, purpose="a1"):
        pass
    async with pool.worktree(main, purpose="busy") as busy:
        async with pool.worktree(main, purpose="a2"):
            pass
        removed, left = await pool.prune()
        assert left == [busy.name] and len(removed) == 1
        assert busy.path.is_dir()
    removed, left = await pool.prune()
    assert removed == [busy.name] and left == []
    assert not ws.worktrees_dir.exists() or not any(ws.worktrees_dir.iterdir())
    assert len(git(ws.repo, "worktree", "list").splitlines()) == 1
