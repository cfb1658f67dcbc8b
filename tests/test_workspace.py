"""Workspace against real git repositories in tmp_path."""

from __future__ import annotations

import asyncio
import http.server
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import git
from hypothesis import given
from hypothesis import strategies as st
from workspace_helpers import BRANCH, attempt, task_commit, workspace

from blitz.errors import ConfigError, GitError, RepositoryError
from blitz.workspace import Workspace, branch_name, slugify


@pytest.fixture
def ws(git_repo: Path, tmp_path: Path) -> Workspace:
    return workspace(git_repo, tmp_path)


# -- names -------------------------------------------------------------------------------------


def test_slugify_examples() -> None:
    assert slugify("Add rate limiting!") == "add-rate-limiting"
    assert slugify("  Café: déjà vu  ") == "cafe-deja-vu"
    assert slugify("!!!") == ""
    assert slugify("add rate limiting to the public api", max_len=20) == "add-rate-limiting-to"
    assert slugify("add rate limiting to the public api", max_len=19) == "add-rate-limiting"
    assert slugify("x" * 50, max_len=10) == "x" * 10


@given(st.text(), st.integers(min_value=1, max_value=60))
def test_slugify_is_always_a_safe_slug(text: str, max_len: int) -> None:
    slug = slugify(text, max_len)
    assert len(slug) <= max_len
    assert slug == "" or re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug)


def test_branch_name_is_a_valid_blitz_ref() -> None:
    assert branch_name("Add rate limiting!", "abc123") == "blitz/add-rate-limiting-abc123"
    assert branch_name("???", "x1") == "blitz/goal-x1"
    for title, goal_id in [("a..b", "id.lock"), ("~^:?*[\\", "a b/c"), ("Ünïcode", "UP_case")]:
        name = branch_name(title, goal_id)
        assert name.startswith("blitz/")
        subprocess.run(["git", "check-ref-format", f"refs/heads/{name}"], check=True)
    with pytest.raises(ValueError):
        branch_name("title", "///")


# -- check -------------------------------------------------------------------------------------


async def test_check_accepts_a_clean_repository(ws: Workspace) -> None:
    await ws.check(base_branch="main")


async def test_check_missing_path(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "nope", worktrees_root=tmp_path / "w", lock_dir=tmp_path / "l")
    with pytest.raises(RepositoryError, match="does not exist"):
        await ws.check(base_branch="main")


async def test_check_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (tmp_path / "file").write_text("x")
    for path in (plain, tmp_path / "file"):
        ws = Workspace(path, worktrees_root=tmp_path / "w", lock_dir=tmp_path / "l")
        with pytest.raises(RepositoryError, match="not a git repository"):
            await ws.check(base_branch="main")


async def test_check_subdirectory_is_not_the_repository(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / "sub").mkdir()
    ws = Workspace(git_repo / "sub", worktrees_root=tmp_path / "w", lock_dir=tmp_path / "l")
    with pytest.raises(RepositoryError, match="top-level"):
        await ws.check(base_branch="main")


async def test_check_repository_without_commits(git_repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    ws = Workspace(empty, worktrees_root=tmp_path / "w", lock_dir=tmp_path / "l")
    with pytest.raises(RepositoryError, match="no commits"):
        await ws.check(base_branch="main")


async def test_check_missing_base_branch_lists_branches(ws: Workspace, git_repo: Path) -> None:
    git(git_repo, "branch", "feature")
    with pytest.raises(RepositoryError, match="'develop' not found") as caught:
        await ws.check(base_branch="develop")
    assert "feature, main" in str(caught.value)


async def test_check_refuses_uncommitted_changes_unless_allowed(
    ws: Workspace, git_repo: Path
) -> None:
    (git_repo / "README.md").write_text("changed\n")
    for i in range(12):
        (git_repo / f"new{i:02}.txt").write_text("x")
    with pytest.raises(RepositoryError) as caught:
        await ws.check(base_branch="main")
    message = str(caught.value)
    assert "uncommitted changes" in message
    assert "README.md" in message
    assert "and 3 more" in message  # 13 paths, 10 listed
    assert "never touches" in message
    assert "--allow-dirty" in message
    await ws.check(base_branch="main", allow_dirty=True)


async def test_worktrees_root_inside_the_repository_is_refused(git_repo: Path) -> None:
    with pytest.raises(ConfigError):
        Workspace(git_repo, worktrees_root=git_repo / ".wt", lock_dir=git_repo / ".locks")


# -- reading the repository --------------------------------------------------------------------


async def test_current_branch_rev_parse_and_dirty_paths(ws: Workspace, git_repo: Path) -> None:
    assert await ws.current_branch() == "main"
    assert await ws.rev_parse("main") == git(git_repo, "rev-parse", "main")
    for bad in ("no-such-branch", "--all", ""):
        with pytest.raises(GitError):
            await ws.rev_parse(bad)
    assert await ws.dirty_paths() == []
    (git_repo / "README.md").write_text("changed\n")
    (git_repo / "staged.txt").write_text("s")
    git(git_repo, "add", "staged.txt")
    (git_repo / "untracked.txt").write_text("u")
    assert sorted(await ws.dirty_paths()) == ["README.md", "staged.txt", "untracked.txt"]
    git(git_repo, "mv", "README.md", "MOVED.md")
    assert sorted(await ws.dirty_paths()) == [
        "MOVED.md",
        "README.md",
        "staged.txt",
        "untracked.txt",
    ]
    git(git_repo, "checkout", "-q", "--detach")
    with pytest.raises(RepositoryError, match="detached"):
        await ws.current_branch()


# -- goal branch -------------------------------------------------------------------------------


async def test_ensure_goal_branch_is_idempotent_and_leaves_main(
    ws: Workspace, git_repo: Path
) -> None:
    main = git(git_repo, "rev-parse", "main")
    assert await ws.ensure_goal_branch(BRANCH, "main") == main
    assert git(git_repo, "rev-parse", BRANCH) == main
    (git_repo / "more.txt").write_text("more")
    git(git_repo, "add", "more.txt")
    git(git_repo, "commit", "-q", "-m", "More")
    advanced = git(git_repo, "rev-parse", "main")
    # An existing goal branch is returned as it is, never moved to the new base head.
    assert await ws.ensure_goal_branch(BRANCH, "main") == main
    assert git(git_repo, "rev-parse", "main") == advanced
    assert git(git_repo, "symbolic-ref", "HEAD") == "refs/heads/main"


async def test_ensure_goal_branch_refuses_base_and_foreign_branches(
    ws: Workspace, git_repo: Path
) -> None:
    main = git(git_repo, "rev-parse", "main")
    for branch, base in [("main", "main"), ("feature/x", "main"), ("blitz/x", "blitz/x")]:
        with pytest.raises(GitError):
            await ws.ensure_goal_branch(branch, base)
    with pytest.raises(GitError):
        await ws.ensure_goal_branch("blitz/bad..name", "main")
    assert git(git_repo, "rev-parse", "main") == main
    assert git(git_repo, "for-each-ref", "--format=%(refname)", "refs/heads/") == "refs/heads/main"


# -- worktrees ---------------------------------------------------------------------------------


async def test_add_worktree_is_detached_at_the_sha(
    ws: Workspace, git_repo: Path, tmp_path: Path
) -> None:
    sha = git(git_repo, "rev-parse", "main")
    path = await ws.add_worktree("t1-a1", sha)
    assert path.parent.parent == (tmp_path / "worktrees").resolve()
    assert (path / "README.md").read_text() == "# demo\n"
    assert git(path, "rev-parse", "HEAD") == sha
    assert git(path, "symbolic-ref", "-q", "HEAD", check=False) == ""  # detached
    assert str(path) in git(git_repo, "worktree", "list", "--porcelain")
    with pytest.raises(ValueError):
        await ws.add_worktree("../escape", sha)


async def test_add_worktree_replaces_stale_directory_and_registration(
    ws: Workspace, git_repo: Path
) -> None:
    sha = git(git_repo, "rev-parse", "main")
    stale_dir = ws.worktrees_dir / "w1"
    stale_dir.mkdir(parents=True)
    (stale_dir / "junk.txt").write_text("left over")
    path = await ws.add_worktree("w1", sha)
    assert not (path / "junk.txt").exists()
    # A registration whose directory vanished (a crash, a manual rm -rf).
    subprocess.run(["rm", "-rf", str(path)], check=True)
    path = await ws.add_worktree("w1", sha)
    assert git(path, "rev-parse", "HEAD") == sha
    # A live worktree with uncommitted work of a previous attempt.
    (path / "README.md").write_text("old attempt\n")
    path = await ws.add_worktree("w1", sha)
    assert (path / "README.md").read_text() == "# demo\n"


async def test_remove_worktree_is_idempotent_and_only_removes_its_own(
    ws: Workspace, git_repo: Path, tmp_path: Path
) -> None:
    path = await ws.add_worktree("w1", "main")
    (path / "dirty.txt").write_text("x")
    await ws.remove_worktree(path)
    await ws.remove_worktree(path)
    assert not path.exists()
    assert str(path) not in git(git_repo, "worktree", "list", "--porcelain")
    outside = tmp_path / "outside"
    outside.mkdir()
    for victim in (git_repo, outside, ws.worktrees_dir, ws.worktrees_dir / ".."):
        with pytest.raises(GitError, match="not a blitz worktree"):
            await ws.remove_worktree(victim)
    assert (git_repo / "README.md").exists()
    assert outside.exists()


async def test_cleanup_stale_keeps_the_named_worktrees(ws: Workspace, git_repo: Path) -> None:
    paths = {name: await ws.add_worktree(name, "main") for name in ("a", "b", "c")}
    (ws.worktrees_dir / "orphan").mkdir()
    (ws.worktrees_dir / "stray-file").write_text("x")
    removed = await ws.cleanup_stale(keep={"b"})
    assert sorted(p.name for p in removed) == ["a", "c", "orphan", "stray-file"]
    assert sorted(p.name for p in ws.worktrees_dir.iterdir()) == ["b"]
    listing = git(git_repo, "worktree", "list", "--porcelain")
    assert str(paths["b"]) in listing
    assert str(paths["a"]) not in listing
    assert str(paths["c"]) not in listing


# -- reading a worktree ------------------------------------------------------------------------


async def test_changed_files_includes_untracked_but_not_ignored(ws: Workspace) -> None:
    worktree, _ = await attempt(ws, "w1")
    (worktree / "README.md").write_text("changed\n")
    (worktree / "src" / "pkg").mkdir(parents=True)
    (worktree / "src" / "pkg" / "new.py").write_text("x = 1\n")
    (worktree / ".gitignore").write_text("*.log\n")
    (worktree / "debug.log").write_text("noise")
    assert sorted(await ws.changed_files(worktree)) == [
        ".gitignore",
        "README.md",
        "src/pkg/new.py",
    ]


async def test_diff_covers_staged_unstaged_and_untracked_without_touching_index(
    ws: Workspace,
) -> None:
    worktree, base = await attempt(ws, "w1")
    (worktree / "README.md").write_text("# demo\nunstaged line\n")
    (worktree / "staged.txt").write_text("staged line\n")
    git(worktree, "add", "staged.txt")
    (worktree / "untracked.txt").write_text("untracked line\n")
    status_before = git(worktree, "status", "--porcelain")
    index_before = git(worktree, "ls-files", "--stage")

    patch = await ws.diff(worktree, base)
    for text in ("unstaged line", "staged line", "untracked line", "+++ b/untracked.txt"):
        assert text in patch
    assert git(worktree, "status", "--porcelain") == status_before
    assert git(worktree, "ls-files", "--stage") == index_before

    stat = await ws.diff_stat(worktree, base)
    assert "README.md" in stat
    assert "untracked.txt" in stat
    assert "3 files changed" in stat

    (worktree / "big.txt").write_text("line\n" * 5000)
    full = await ws.diff(worktree, base, max_chars=10**6)
    assert "diff truncated" not in full
    short = await ws.diff(worktree, base, max_chars=200)
    assert short.startswith(full[:200])
    assert "diff truncated at 200 characters" in short
    assert len(short) < 300


# -- remotes -----------------------------------------------------------------------------------


@pytest.fixture
def remote(git_repo: Path, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(git_repo, "remote", "add", "origin", f"file://{bare}")
    return bare


async def test_push_goal_branch_fast_forward_only(
    ws: Workspace, git_repo: Path, remote: Path
) -> None:
    assert await ws.remote_url("origin") == f"file://{remote}"
    assert await ws.remote_url("upstream") is None
    worktree, base, sha = await task_commit(ws, "w1", "t1", {"a.txt": "a"})
    await ws.integrate(worktree, branch=BRANCH, commit_sha=sha, base_sha=base)
    await ws.push("origin", BRANCH)
    assert git(remote, "rev-parse", BRANCH) == sha

    # Someone else moves the remote branch; our next push is not a fast-forward.
    divergent = git(git_repo, "commit-tree", f"{base}^{{tree}}", "-p", base, "-m", "elsewhere")
    git(git_repo, "push", "-q", "--force", "origin", f"{divergent}:refs/heads/{BRANCH}")
    with pytest.raises(GitError, match="rejected"):
        await ws.push("origin", BRANCH)
    assert git(remote, "rev-parse", BRANCH) == divergent


async def test_push_refuses_base_and_foreign_branches(
    ws: Workspace, git_repo: Path, remote: Path
) -> None:
    for branch in ("main", "feature", "blitz/"):
        with pytest.raises(GitError, match="only writes branches under"):
            await ws.push("origin", branch)
    with pytest.raises(GitError):
        await ws.push("--mirror", BRANCH)
    assert git(remote, "for-each-ref") == ""


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def auth_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/repo.git"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_push_never_waits_for_credentials(
    ws: Workspace, git_repo: Path, auth_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    git(git_repo, "remote", "add", "private", auth_server)
    await ws.ensure_goal_branch(BRANCH, "main")
    started = time.monotonic()
    with pytest.raises(GitError, match="terminal prompts disabled"):
        await ws.push("private", BRANCH)
    assert time.monotonic() - started < 10


async def test_a_hanging_git_command_times_out(
    git_repo: Path, tmp_path: Path, remote: Path
) -> None:
    ws = Workspace(
        git_repo, worktrees_root=tmp_path / "wt", lock_dir=tmp_path / "locks", git_timeout=1.0
    )
    await ws.ensure_goal_branch(BRANCH, "main")
    git(git_repo, "config", "remote.origin.receivepack", "sleep 60; git-receive-pack")
    started = time.monotonic()
    with pytest.raises(GitError, match="timed out") as caught:
        await ws.push("origin", BRANCH)
    assert caught.value.retryable
    assert time.monotonic() - started < 10
    # The lock was released when the command was killed.
    await asyncio.wait_for(ws.ensure_goal_branch(BRANCH, "main"), 10)


# -- the user's checkout -----------------------------------------------------------------------


def snapshot(repo: Path) -> dict[str, object]:
    files = {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return {
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "head": git(repo, "rev-parse", "HEAD"),
        "symbolic": git(repo, "symbolic-ref", "HEAD"),
        "main": git(repo, "rev-parse", "refs/heads/main"),
        "index": (repo / ".git" / "index").read_bytes(),
        "stash": git(repo, "stash", "list"),
        "config": (repo / ".git" / "config").read_bytes(),
        "files": files,
    }


async def test_a_full_cycle_leaves_the_users_checkout_untouched(
    ws: Workspace, git_repo: Path, remote: Path
) -> None:
    (git_repo / "README.md").write_text("# demo\nmy unsaved edit\n")
    (git_repo / "staged.txt").write_text("staged by the user\n")
    git(git_repo, "add", "staged.txt")
    (git_repo / "notes.txt").write_text("untracked notes\n")
    before = snapshot(git_repo)

    await ws.check(base_branch="main", allow_dirty=True)
    assert await ws.current_branch() == "main"
    assert sorted(await ws.dirty_paths()) == ["README.md", "notes.txt", "staged.txt"]
    w1, base, sha1 = await task_commit(ws, "w1", "t1", {"README.md": "task one\n"})
    w2, _, sha2 = await task_commit(ws, "w2", "t2", {"src/new.py": "x = 1\n"})
    w3, _, sha3 = await task_commit(ws, "w3", "t3", {"README.md": "task three\n"})
    await ws.diff(w2, base)
    await ws.diff_stat(w2, base)
    await ws.changed_files(w2)
    assert (await ws.integrate(w1, branch=BRANCH, commit_sha=sha1, base_sha=base)).status == (
        "integrated"
    )
    rebased = await ws.integrate(w2, branch=BRANCH, commit_sha=sha2, base_sha=base)
    assert rebased.status == "rebased"
    final = await ws.integrate(w2, branch=BRANCH, commit_sha=rebased.head, base_sha=sha1)
    assert final.status == "integrated"
    assert (await ws.integrate(w3, branch=BRANCH, commit_sha=sha3, base_sha=base)).status == (
        "conflict"
    )
    await ws.push("origin", BRANCH)
    await ws.remove_worktree(w1)
    await ws.cleanup_stale()

    assert snapshot(git_repo) == before
    assert git(remote, "rev-parse", BRANCH) == final.head
    assert git(git_repo, "worktree", "list", "--porcelain").count("worktree ") == 1
