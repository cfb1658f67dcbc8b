"""blitz.git against real repositories: the environment it runs git in, its errors, and the
named operations the rest of blitz uses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blitz import git
from blitz.errors import GitError

pytestmark = pytest.mark.timeout(60)


def run(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, timeout=30
    ).stdout


def commit(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    run(repo, "add", name)
    run(repo, "commit", "-q", "-m", f"add {name}")
    return run(repo, "rev-parse", "HEAD").strip()


async def test_stdout_is_kept_apart_from_stderr_and_a_failure_raises(git_repo: Path) -> None:
    found = await git.run_git(git_repo, "rev-parse", "HEAD", timeout=30)
    assert found.ok and len(found.out.strip()) == 40 and not found.err

    failed = await git.run_git(git_repo, "rev-parse", "--verify", "nope", timeout=30, check=False)
    assert not failed.ok and not failed.out and "single revision" in failed.err
    with pytest.raises(GitError, match="`git rev-parse --verify nope` failed") as caught:
        await git.run_git(git_repo, "rev-parse", "--verify", "nope", timeout=30)
    assert caught.value.command == "git rev-parse --verify nope"


async def test_git_is_pointed_only_at_the_directory_named(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    run(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "1")

    top = await git.run_git(git_repo, "rev-parse", "--show-toplevel", timeout=30)
    env = await git.run_git(git_repo, "var", "GIT_EDITOR", timeout=30)

    assert Path(top.out.strip()) == git_repo
    assert env.out.strip() == "true"  # never an editor


async def test_a_command_that_outlives_its_timeout_is_a_retryable_error(git_repo: Path) -> None:
    (git_repo / "slow.sh").write_text("#!/bin/sh\nsleep 30\n")
    (git_repo / "slow.sh").chmod(0o755)
    run(git_repo, "config", "alias.slow", f"!{git_repo / 'slow.sh'}")
    with pytest.raises(GitError, match=r"timed out after 0\.5s") as caught:
        await git.run_git(git_repo, "slow", timeout=0.5)
    assert caught.value.retryable


def test_a_process_killed_during_a_git_command_leaves_no_file_behind(
    git_repo: Path, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    (git_repo / "slow.sh").write_text(f"#!/bin/sh\necho $$ > {started}\nsleep 30\n")
    (git_repo / "slow.sh").chmod(0o755)
    run(git_repo, "config", "alias.slow", f"!{git_repo / 'slow.sh'}")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = (
        "import asyncio, sys; from pathlib import Path; from blitz import git; "
        "asyncio.run(git.run_git(Path(sys.argv[1]), 'slow', timeout=60))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(git_repo)], env={**os.environ, "TMPDIR": str(scratch)}
    )
    deadline = time.monotonic() + 30
    while not started.exists() or not started.read_text().strip():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    child.kill()
    child.wait(timeout=10)
    os.killpg(os.getpgid(int(started.read_text())), signal.SIGKILL)  # git's own group

    assert list(scratch.iterdir()) == []


async def test_out_limit_and_out_tail_read_part_of_stdout(git_repo: Path) -> None:
    commit(git_repo, "big.txt", "".join(f"line {i}\n" for i in range(5000)))
    whole = await git.run_git(git_repo, "show", "HEAD:big.txt", timeout=30)
    head = await git.run_git(git_repo, "show", "HEAD:big.txt", timeout=30, out_limit=10)
    tail = await git.run_git(git_repo, "show", "HEAD:big.txt", timeout=30, out_tail=10)

    assert head.out == whole.out[:10] and tail.out == whole.out[-10:]
    assert head.out_size == tail.out_size == len(whole.out)


def test_status_entries_list_both_paths_of_a_rename() -> None:
    out = "R  new.txt\0old.txt\0 M changed.txt\0?? fresh.txt\0"
    assert git.status_entries(out) == {
        "new.txt": "R ",
        "old.txt": "R <",
        "changed.txt": " M",
        "fresh.txt": "??",
    }


async def test_the_named_operations(git_repo: Path) -> None:
    repo = git.Git(git_repo, timeout=30)
    first = await repo.rev_parse("HEAD")
    second = commit(git_repo, "b.txt", "b\n")
    (git_repo / "b.txt").write_text("changed\n")
    (git_repo / "new.txt").write_text("new\n")

    assert await repo.rev_parse("main") == second
    with pytest.raises(GitError, match="unknown revision"):
        await repo.rev_parse("no-such-branch")
    with pytest.raises(GitError, match="not a revision"):
        await repo.rev_parse("--all")
    assert await repo.is_ancestor(first, second)
    assert not await repo.is_ancestor(second, first)
    assert await repo.branches() == ["main"]
    assert sorted(await repo.status()) == ["b.txt", "new.txt"]
    assert await repo.checked_out("refs/heads/main") == str(git_repo)
    assert await repo.checked_out("refs/heads/other") == ""
    assert await repo.remote_url("origin") is None

    patch = await repo.worktree_diff(git_repo, first, max_chars=10_000)
    assert "+changed" in patch and "+new" in patch  # untracked files included
    assert run(git_repo, "diff", "--cached") == ""  # the index was not written
    stat = await repo.worktree_diff_stat(git_repo, first)
    assert "b.txt" in stat and "new.txt" in stat


async def test_a_commits_diff_is_cut_from_the_front(git_repo: Path) -> None:
    base = run(git_repo, "rev-parse", "HEAD").strip()
    head = commit(git_repo, "c.txt", "".join(f"line {i}\n" for i in range(2000)))

    whole = await git.commit_diff(git_repo, base, head, cap=1_000_000)
    cut = await git.commit_diff(git_repo, base, head, cap=100)

    assert whole.startswith("diff --git") and "+line 1999" in whole
    assert cut.startswith("[... diff truncated ...]\n") and cut.endswith(whole[-100:])
    assert await git.commit_diff(git_repo, base, "0" * 40, cap=100) == ""


async def test_head_and_undoing_commits_keep_the_changes(git_repo: Path, tmp_path: Path) -> None:
    before = await git.head(git_repo, timeout=30)
    commit(git_repo, "d.txt", "d\n")
    commit(git_repo, "e.txt", "e\n")

    assert await git.undo_commits(git_repo, before, timeout=30) == "2 commits"
    assert await git.head(git_repo, timeout=30) == before
    assert (git_repo / "e.txt").read_text() == "e\n"
    assert await git.undo_commits(git_repo, before, timeout=30) == ""
    assert await git.head(tmp_path, timeout=30) == ""  # not a checkout


async def test_tracked_files(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / "src").mkdir()
    commit(git_repo, "src/app.py", "")
    (git_repo / "untracked.txt").write_text("")
    assert await git.tracked_files(git_repo, timeout=30) == ["README.md", "src/app.py"]
    assert await git.tracked_files(tmp_path / "nowhere", timeout=30) is None
