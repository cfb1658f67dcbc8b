"""Git for blitz: the goal branch, a worktree per attempt, commits with trailers, integration of
each task into the goal branch, and cleanup.

Invariants kept here:

* The user's checkout (working tree, index, HEAD, uncommitted changes) is never touched. Writes
  happen only in blitz's own worktrees (under ``worktrees_root``) and to refs under ``blitz/``;
  every command runs with ``GIT_OPTIONAL_LOCKS=0`` so even ``git status`` does not refresh the
  user's index. A goal branch that is checked out anywhere is never moved.
* The base branch is never written and nothing is ever force-pushed.
* A task is committed at most once on the goal branch: its ``Blitz-Task`` trailer is looked up
  before committing and again, under the lock, before integrating.
* Operations that move refs or add/remove worktrees hold one lock per repository: an
  ``asyncio.Lock`` within the process and an ``flock`` on a file in ``lock_dir`` across processes.
* Every git command runs through :func:`blitz.process.run` with a timeout, never prompts for
  credentials and never opens an editor.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import tempfile
import unicodedata
import weakref
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from blitz.errors import ConfigError, GitError, RepositoryError
from blitz.process import clean_env, run

GOAL_PREFIX = "blitz/"
GOAL_TRAILER = "Blitz-Goal"
TASK_TRAILER = "Blitz-Task"
FALLBACK_IDENTITY = (("user.name", "blitz"), ("user.email", "blitz@localhost"))
MAX_DIRTY_LISTED = 10

# Inherited variables that would point git at another repository or index than the one we name.
_SCRUBBED_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # fail instead of waiting for a username or password
    "LC_ALL": "C",  # messages we parse or show stay in one language
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "GIT_MERGE_AUTOEDIT": "no",
    "GIT_OPTIONAL_LOCKS": "0",  # `git status` must not rewrite the user's index
}
# Every command: no surprise `gc --auto` (it prunes worktrees and repacks refs) while we work.
_ALWAYS = ("-c", "gc.auto=0", "-c", "maintenance.auto=false")
# Local commands: the hooks of the user's repository are not ours to run unattended (a
# pre-commit hook may be interactive, slow or need tools the worktree lacks); validation gates
# are blitz's checks. Push keeps its hooks: a pre-push hook such as git-lfs's uploads objects the
# remote needs.
_NO_HOOKS = ("-c", "core.hooksPath=/dev/null", "-c", "rerere.enabled=false")

_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Integration:
    """The outcome of :meth:`Workspace.integrate`.

    ``head`` is the goal branch head after the call, except for ``"rebased"``, where it is the
    rebased commit and ``detail`` is the goal branch head it now sits on (the next ``base_sha``).
    """

    status: Literal["integrated", "rebased", "conflict", "already"]
    head: str
    conflict_files: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Result:
    code: int | None
    out: str  # stdout
    err: str  # stderr (capped tail)
    out_size: int  # bytes written to stdout, even when only part of it was read

    @property
    def ok(self) -> bool:
        return self.code == 0


def slugify(text: str, max_len: int = 40) -> str:
    """Lowercase ASCII words joined by hyphens, cut at a word boundary when possible."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_len:
        cut = slug[: max_len + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else slug[:max_len]
    return slug[:max_len].strip("-")


def branch_name(goal_title: str, goal_id: str) -> str:
    """The goal branch for a goal: ``blitz/<slug of title>-<goal id>``."""
    ident = re.sub(r"[^A-Za-z0-9_-]+", "-", goal_id).strip("-")
    if not ident:
        raise ValueError(f"goal id {goal_id!r} has no characters usable in a branch name")
    return f"{GOAL_PREFIX}{slugify(goal_title) or 'goal'}-{ident}"


def _require_goal_branch(branch: str) -> None:
    if not branch.startswith(GOAL_PREFIX) or len(branch) == len(GOAL_PREFIX):
        raise GitError(
            f"refusing to write branch {branch!r}: blitz only writes branches under {GOAL_PREFIX!r}"
        )


def _require_trailer_value(kind: str, value: str) -> None:
    if not value or value != value.strip() or "\n" in value or "\x00" in value:
        raise ValueError(f"{kind} must be one non-empty line without surrounding spaces: {value!r}")


def _parse_status(out: str) -> list[str]:
    """Paths from ``git status --porcelain=v1 -z``; a rename lists both of its paths."""
    paths: list[str] = []
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if {"R", "C"} & set(entry[:2]):  # the source path follows as its own entry
            if i < len(entries) and entries[i]:
                paths.append(entries[i])
            i += 1
    return list(dict.fromkeys(paths))


def _message(title: str, body: str, goal_id: str, task_id: str) -> str:
    """The commit message; the trailers are always the last paragraph, so git parses only ours."""
    parts = [" ".join(title.split()) or f"blitz task {task_id}"]
    if body.strip():
        parts.append(body.strip())
    parts.append(f"{GOAL_TRAILER}: {goal_id}\n{TASK_TRAILER}: {task_id}")
    return "\n\n".join(parts) + "\n"


def _trailer_format(*keys: str) -> str:
    return "%x00".join(f"%(trailers:key={k},valueonly,separator=%x01)" for k in keys)


class _RepoLock:
    """The in-process half of a repository lock, and a token for the current hold."""

    __slots__ = ("hold", "lock")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.hold: object | None = None


# Per event loop (an asyncio.Lock belongs to one loop), then per resolved repository path.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _RepoLock]] = (
    weakref.WeakKeyDictionary()
)
# The holds of the current context; tasks started under a hold inherit it (asyncio.wait_for and
# gather run their work in new tasks), and it stops counting once that hold is released.
_HELD: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar(
    "blitz_workspace_held", default=()
)


async def _acquire_file_lock(path: Path) -> int:
    """``flock`` the file without blocking the event loop (poll, so cancellation is clean)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    delay = 0.005
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
    except BaseException:
        os.close(fd)
        raise


class Workspace:
    """One repository as blitz sees it: goal branches, attempt worktrees, commits, integration."""

    def __init__(
        self, repo: Path, *, worktrees_root: Path, lock_dir: Path, git_timeout: float = 120.0
    ) -> None:
        self.repo = Path(repo).resolve()
        digest = hashlib.sha256(str(self.repo).encode()).hexdigest()[:12]
        self._key = f"{slugify(self.repo.name, 30) or 'repo'}-{digest}"
        self.worktrees_dir = Path(worktrees_root).resolve() / self._key
        """Where this repository's worktrees live, one directory per attempt."""
        self.lock_file = Path(lock_dir).resolve() / f"{self._key}.lock"
        """The file ``flock``-ed by :meth:`lock`, shared by every process using this repo."""
        self._timeout = git_timeout
        root = self.worktrees_dir.parent
        if root == self.repo or self.repo in root.parents:
            # Worktrees inside the checkout would show up in the user's `git status`.
            raise ConfigError(f"worktrees_root {root} must be outside the repository {self.repo}")

    # -- running git ---------------------------------------------------------------------------

    async def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        check: bool = True,
        hooks: bool = False,
        out_limit: int | None = None,
    ) -> _Result:
        """Run one git command with the timeout; stdout goes to a file so stderr never mixes
        into output we parse. ``out_limit`` reads only the first characters of stdout."""
        argv = ["git", *_ALWAYS, *(() if hooks else _NO_HOOKS), *args]
        command = shlex.join(["git", *args])
        full_env = clean_env(keep_secrets=True)  # git is trusted; credential helpers need env
        for name in _SCRUBBED_ENV:
            full_env.pop(name, None)
        full_env.update(_GIT_ENV)
        full_env.update(env or {})
        fd, out_name = tempfile.mkstemp(prefix="blitz-git-", suffix=".out")
        os.close(fd)
        try:
            done = await run(
                ["/bin/sh", "-c", 'out=$1; shift; exec "$@" >"$out"', "sh", out_name, *argv],
                cwd=cwd or self.repo,
                timeout=self._timeout,
                env=full_env,
                stdin=stdin,
            )
            with open(out_name, encoding="utf-8", errors="replace") as fh:
                out = fh.read() if out_limit is None else fh.read(out_limit)
            out_size = os.path.getsize(out_name)
        except OSError as exc:
            raise GitError(f"cannot run `{command}`: {exc}", command=command) from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(out_name)
        if done.timed_out:
            error = GitError(
                f"`{command}` timed out after {self._timeout:g}s",
                command=command,
                output=done.tail(),
            )
            error.retryable = True
            raise error
        result = _Result(done.exit_code, out, done.output, out_size)
        if check and not result.ok:
            message = (result.err.strip() or result.out.strip())[-2000:]
            raise GitError(
                f"`{command}` failed: {message}",
                command=command,
                output=(result.out[-4000:] + result.err).strip(),
            )
        return result

    async def _identity(self, cwd: Path) -> list[str]:
        """``-c`` flags for a fallback identity where the repo configures none (env still wins)."""
        flags: list[str] = []
        for key, fallback in FALLBACK_IDENTITY:
            found = await self._git("config", "--get", key, cwd=cwd, check=False)
            if not found.out.strip():
                flags += ["-c", f"{key}={fallback}"]
        return flags

    # -- the repository ------------------------------------------------------------------------

    async def check(self, *, base_branch: str, allow_dirty: bool = False) -> None:
        """Raise :class:`RepositoryError` saying how to fix it if blitz cannot use the repo."""
        if not self.repo.exists():
            raise RepositoryError(f"repository path does not exist: {self.repo}")
        if not self.repo.is_dir():
            raise RepositoryError(f"not a git repository (not a directory): {self.repo}")
        bare = await self._git("rev-parse", "--is-bare-repository", check=False)
        if not bare.ok:
            raise RepositoryError(
                f"not a git repository: {self.repo}\n{bare.err.strip()}\n"
                "run `git init` and commit your code, or point blitz at an existing repository"
            )
        is_bare = bare.out.strip() == "true"
        if not is_bare:
            top = await self._git("rev-parse", "--show-toplevel", check=False)
            toplevel = Path(top.out.strip()).resolve() if top.ok else None
            if toplevel != self.repo:
                raise RepositoryError(
                    f"not a git repository: {self.repo} is inside the repository {toplevel}; "
                    "pass the repository's top-level directory"
                )
        branches = await self._branches()
        head = await self._git("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        if not branches and not head.ok:
            raise RepositoryError(
                f"repository has no commits: {self.repo}\n"
                "blitz works from committed history; make a first commit and try again"
            )
        if base_branch not in branches:
            raise RepositoryError(
                f"base branch {base_branch!r} not found in {self.repo}; "
                f"local branches: {', '.join(branches) or '(none)'}\n"
                f"if it exists only on a remote, run `git fetch` and "
                f"`git branch {base_branch} <remote>/{base_branch}`"
            )
        if is_bare or allow_dirty:
            return
        dirty = await self.dirty_paths()
        if dirty:
            listed = "\n".join(f"  {p}" for p in dirty[:MAX_DIRTY_LISTED])
            more = len(dirty) - MAX_DIRTY_LISTED
            if more > 0:
                listed += f"\n  ... and {more} more"
            raise RepositoryError(
                f"uncommitted changes in {self.repo}:\n{listed}\n"
                "blitz only uses committed work and never touches your working tree or these "
                "changes; commit or stash them, or pass --allow-dirty to proceed without them"
            )

    async def _branches(self) -> list[str]:
        found = await self._git("for-each-ref", "--format=%(refname)", "refs/heads/")
        return [line.removeprefix("refs/heads/") for line in found.out.splitlines() if line]

    async def current_branch(self) -> str:
        """The branch checked out in the user's checkout."""
        found = await self._git("symbolic-ref", "--short", "-q", "HEAD", check=False)
        if not found.ok or not found.out.strip():
            raise RepositoryError(
                f"HEAD is detached in {self.repo}; check out a branch or name the base branch"
            )
        return found.out.strip()

    async def dirty_paths(self) -> list[str]:
        """Uncommitted paths in the user's checkout: staged, unstaged, untracked (not ignored)."""
        found = await self._git("status", "--porcelain=v1", "-z")
        return _parse_status(found.out)

    async def rev_parse(self, ref: str) -> str:
        """The full sha of the commit ``ref`` names; :class:`GitError` if there is none."""
        if not ref or ref.startswith("-"):
            raise GitError(f"not a revision: {ref!r}")
        found = await self._git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
        if not found.ok:
            raise GitError(f"unknown revision {ref!r} in {self.repo}", command="git rev-parse")
        return found.out.strip()

    async def _is_ancestor(self, ancestor: str, descendant: str) -> bool:
        found = await self._git("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if found.code not in (0, 1):
            raise GitError(f"git merge-base failed: {found.err.strip()}")
        return found.code == 0

    # -- the goal branch -----------------------------------------------------------------------

    async def ensure_goal_branch(self, branch: str, base_branch: str) -> str:
        """Create the goal branch at the base branch's head unless it exists; return its head."""
        if branch == base_branch:
            raise GitError(f"refusing to use the base branch {base_branch!r} as the goal branch")
        _require_goal_branch(branch)
        valid = await self._git("check-ref-format", f"refs/heads/{branch}", check=False)
        if not valid.ok:
            raise GitError(f"invalid branch name: {branch!r}")
        ref = f"refs/heads/{branch}"
        async with self.lock():
            existing = await self._git(
                "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False
            )
            if existing.ok:
                return existing.out.strip()
            base = await self.rev_parse(f"refs/heads/{base_branch}")
            # An all-zero old value makes the update fail if the ref appeared meanwhile.
            await self._git(
                "update-ref",
                "-m",
                f"blitz: goal branch from {base_branch}",
                ref,
                base,
                "0" * len(base),
            )
            return base

    async def _refuse_checked_out(self, ref: str) -> None:
        listing = await self._git("worktree", "list", "--porcelain")
        path = ""
        for line in listing.out.splitlines():
            if line.startswith("worktree "):
                path = line.removeprefix("worktree ")
            elif line == f"branch {ref}":
                raise GitError(
                    f"{ref.removeprefix('refs/heads/')} is checked out at {path}; blitz never "
                    "moves a checked-out branch (it would change a working tree it does not own)"
                )

    # -- worktrees -----------------------------------------------------------------------------

    def _own(self, path: Path) -> Path:
        """``path`` as one of this repo's worktree directories, or GitError: blitz never
        deletes, commits in or rebases a directory it did not create."""
        path = Path(path)
        if path.name in ("", ".", "..") or path.parent.resolve() != self.worktrees_dir:
            raise GitError(
                f"{path} is not a blitz worktree of {self.repo} (not in {self.worktrees_dir})"
            )
        return self.worktrees_dir / path.name

    async def add_worktree(self, name: str, sha: str) -> Path:
        """A fresh worktree, detached at ``sha``, replacing any stale one of that name."""
        if not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
            raise ValueError(f"worktree name must be letters, digits, '.', '_' or '-': {name!r}")
        commit = await self.rev_parse(sha)
        path = self.worktrees_dir / name
        async with self.lock():
            await self._remove_locked(path)
            self.worktrees_dir.mkdir(parents=True, exist_ok=True)
            await self._git("worktree", "add", "--detach", str(path), commit)
        return path

    async def remove_worktree(self, path: Path) -> None:
        """Remove a worktree, its directory and its registration; removing it again is a no-op."""
        async with self.lock():
            await self._remove_locked(self._own(path))

    async def _remove_locked(self, path: Path, *, prune: bool = True) -> None:
        path = self._own(path)
        await self._git("worktree", "remove", "--force", "--force", str(path), check=False)
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
        if prune:
            await self._git("worktree", "prune")

    async def cleanup_stale(self, keep: Collection[str] = ()) -> list[Path]:
        """Remove this repo's worktrees whose name is not in ``keep``; return what was removed."""
        removed: list[Path] = []
        async with self.lock():
            if self.worktrees_dir.is_dir():
                for child in sorted(self.worktrees_dir.iterdir()):
                    if child.name not in keep:
                        await self._remove_locked(child, prune=False)
                        removed.append(child)
            await self._git("worktree", "prune")
        return removed

    # -- reading a worktree --------------------------------------------------------------------

    async def changed_files(self, worktree: Path) -> list[str]:
        """Paths changed in the worktree against its HEAD, including untracked (not ignored)."""
        found = await self._git(
            "status", "--porcelain=v1", "-z", "--untracked-files=all", cwd=worktree
        )
        return _parse_status(found.out)

    @contextlib.asynccontextmanager
    async def _snapshot(self, worktree: Path) -> AsyncIterator[dict[str, str]]:
        """Env for a temporary index holding everything in the worktree (staged, unstaged,
        untracked); the worktree's own index is never written."""
        with tempfile.TemporaryDirectory(prefix="blitz-index-") as tmp:
            index = Path(tmp) / "index"
            found = await self._git("rev-parse", "--git-path", "index", cwd=worktree)
            real = Path(worktree) / found.out.strip()
            if real.is_file():  # a copy keeps stat data valid, so `add -A` only hashes changes
                shutil.copyfile(real, index)
            env = {"GIT_INDEX_FILE": str(index)}
            await self._git("add", "-A", cwd=worktree, env=env)
            yield env

    async def diff(self, worktree: Path, base_sha: str, *, max_chars: int = 20000) -> str:
        """The worktree's changes against ``base_sha`` as a patch, cut at ``max_chars``."""
        base = await self.rev_parse(base_sha)
        async with self._snapshot(worktree) as env:
            found = await self._git(
                "diff", "--cached", "--no-color", "--no-ext-diff", base, "--",
                cwd=worktree, env=env, out_limit=max_chars + 1,
            )  # fmt: skip
        if len(found.out) <= max_chars:
            return found.out
        return (
            found.out[:max_chars]
            + f"\n[... diff truncated at {max_chars} characters of {found.out_size} bytes ...]\n"
        )

    async def diff_stat(self, worktree: Path, base_sha: str) -> str:
        """``git diff --stat`` of the worktree's changes against ``base_sha``."""
        base = await self.rev_parse(base_sha)
        async with self._snapshot(worktree) as env:
            found = await self._git(
                "diff", "--cached", "--no-color", "--stat=160", base, "--", cwd=worktree, env=env
            )
        return found.out

    # -- commits -------------------------------------------------------------------------------

    async def committed_tasks(self, branch: str, base_sha: str, goal_id: str) -> dict[str, str]:
        """``{task_id: sha}`` for this goal's commits in ``base_sha..branch``."""
        base = await self.rev_parse(base_sha)
        return await self._task_commits(f"{base}..refs/heads/{branch}", goal_id)

    async def _task_commits(self, revisions: str, goal_id: str) -> dict[str, str]:
        # --grep narrows the walk cheaply; the trailers (last paragraph only) decide.
        fmt = "%H%x00" + _trailer_format(GOAL_TRAILER, TASK_TRAILER) + "%x1e"
        found = await self._git(
            "log", "--reverse", f"--format={fmt}", "--fixed-strings",
            f"--grep={GOAL_TRAILER}: {goal_id}", revisions, "--",
        )  # fmt: skip
        tasks: dict[str, str] = {}
        for record in found.out.split("\x1e"):
            fields = record.strip("\n").split("\0")
            if len(fields) != 3 or goal_id not in fields[1].split("\x01"):
                continue
            for task_id in fields[2].split("\x01"):
                if task_id:
                    tasks.setdefault(task_id, fields[0])
        return tasks

    async def commit(
        self,
        worktree: Path,
        *,
        branch: str,
        base_sha: str,
        goal_id: str,
        task_id: str,
        title: str,
        body: str = "",
    ) -> str | None:
        """Commit everything in the worktree as one commit on ``base_sha`` with the goal and task
        trailers; None when the worktree does not differ from ``base_sha``.

        Anything the agent committed itself is folded into this one commit, and a branch it
        checked out is left alone (HEAD is detached), so a task is always exactly one commit.
        """
        _require_goal_branch(branch)
        _require_trailer_value("goal id", goal_id)
        _require_trailer_value("task id", task_id)
        worktree = self._own(worktree)
        base = await self.rev_parse(base_sha)
        # The whole goal branch, not just base_sha..branch: a retry that starts after the first
        # commit landed must still be refused. Goal ids are unique, so older history never matches.
        done = await self._task_commits(f"refs/heads/{branch}", goal_id)
        if task_id in done:
            raise GitError(f"task already committed: {task_id} is {done[task_id]} on {branch}")
        await self._git("add", "-A", cwd=worktree)
        tree = (await self._git("write-tree", cwd=worktree)).out.strip()
        base_tree = (await self._git("rev-parse", f"{base}^{{tree}}")).out.strip()
        if tree == base_tree:
            return None
        # Plumbing rather than `git commit`: no hooks, no message clean-up (which would drop
        # Markdown headings as comments), and no merge commit if the agent left a merge behind.
        identity = await self._identity(worktree)
        made = await self._git(
            *identity, "commit-tree", tree, "-p", base, "-F", "-",
            cwd=worktree, stdin=_message(title, body, goal_id, task_id).encode(),
        )  # fmt: skip
        sha = made.out.strip()
        await self._git(
            "update-ref", "--no-deref", "-m", f"blitz: task {task_id}", "HEAD", sha, cwd=worktree
        )
        return sha

    async def keep_ref(self, name: str, sha: str) -> None:
        """Point ``name`` (under ``refs/blitz/``) at ``sha``, so a commit outlives its worktree:
        best-of-N keeps every candidate's work there for inspection."""
        if not name.startswith("refs/blitz/"):
            raise ValueError(f"blitz only writes refs under refs/blitz/, not {name!r}")
        async with self.lock():
            await self._git("update-ref", "-m", "blitz: keep attempt", name, sha)

    async def refs(self, prefix: str) -> dict[str, str]:
        """Refs under ``prefix`` (such as ``refs/blitz/attempts/<goal>/``) -> their commits."""
        found = await self._git("for-each-ref", "--format=%(refname) %(objectname)", prefix)
        return dict(line.split(" ", 1) for line in found.out.splitlines() if " " in line)

    async def _trailers(self, commit: str) -> tuple[str, str]:
        found = await self._git(
            "show", "-s", f"--format={_trailer_format(GOAL_TRAILER, TASK_TRAILER)}", commit
        )
        goals, _, tasks = found.out.strip("\n").partition("\0")
        goal_ids, task_ids = (
            [g for g in goals.split("\x01") if g],
            [t for t in tasks.split("\x01") if t],
        )
        if len(goal_ids) != 1 or len(task_ids) != 1:
            raise GitError(f"commit {commit} lacks exactly one {GOAL_TRAILER} and {TASK_TRAILER}")
        return goal_ids[0], task_ids[0]

    # -- integration ---------------------------------------------------------------------------

    async def integrate(
        self, worktree: Path, *, branch: str, commit_sha: str, base_sha: str
    ) -> Integration:
        """Put a task's commit on the goal branch.

        Fast-forwards (compare-and-swap) when the branch is still at ``base_sha``; otherwise
        rebases the worktree's commit onto the branch head and returns ``"rebased"``: the caller
        re-validates and calls again with ``base_sha=result.detail``. A conflicting rebase is
        aborted, leaving the worktree as it was.
        """
        _require_goal_branch(branch)
        worktree = self._own(worktree)
        ref = f"refs/heads/{branch}"
        async with self.lock():
            commit = await self.rev_parse(commit_sha)
            base = await self.rev_parse(base_sha)
            head = await self.rev_parse(ref)
            goal_id, task_id = await self._trailers(commit)
            done = await self._task_commits(ref, goal_id)
            if task_id in done:
                return Integration(
                    status="already", head=head, detail=f"task {task_id} is {done[task_id]}"
                )
            if not await self._is_ancestor(base, commit):
                raise GitError(f"commit {commit} does not descend from base {base}")
            await self._refuse_checked_out(ref)
            if head == base:
                await self._git("update-ref", "-m", f"blitz: task {task_id}", ref, commit, base)
                return Integration(status="integrated", head=commit)
            return await self._rebase(worktree, commit=commit, base=base, onto=head)

    async def _rebase(self, worktree: Path, *, commit: str, base: str, onto: str) -> Integration:
        current = (await self._git("rev-parse", "HEAD", cwd=worktree)).out.strip()
        if current != commit:
            raise GitError(f"worktree {worktree} is at {current}, not at the commit {commit}")
        identity = await self._identity(worktree)
        try:
            # --empty=keep: if another task already made the same change, the task's trailer
            # commit still lands, so the task is recorded as committed.
            rebased = await self._git(
                *identity, "rebase", "--empty=keep", "--onto", onto, base,
                cwd=worktree, check=False,
            )  # fmt: skip
        except GitError:
            await self._git("rebase", "--abort", cwd=worktree, check=False)
            raise
        if rebased.ok:
            new = (await self._git("rev-parse", "HEAD", cwd=worktree)).out.strip()
            return Integration(status="rebased", head=new, detail=onto)
        unmerged = await self._git(
            "diff", "--name-only", "-z", "--diff-filter=U", cwd=worktree, check=False
        )
        await self._git("rebase", "--abort", cwd=worktree, check=False)
        files = tuple(dict.fromkeys(p for p in unmerged.out.split("\0") if p))
        message = (rebased.out + rebased.err).strip()[-2000:]
        if not files:
            raise GitError(f"rebase onto {onto} failed: {message}", output=message)
        return Integration(status="conflict", head=onto, conflict_files=files, detail=message)

    # -- remotes -------------------------------------------------------------------------------

    async def remote_url(self, remote: str) -> str | None:
        """The remote's URL, or None if there is no such remote."""
        if not remote or remote.startswith("-"):
            return None
        found = await self._git("remote", "get-url", remote, check=False)
        return (found.out.strip() or None) if found.ok else None

    async def push(self, remote: str, branch: str) -> None:
        """Push the goal branch to the same name on ``remote``; a push that is not a
        fast-forward fails with :class:`GitError` (blitz never force-pushes)."""
        _require_goal_branch(branch)
        if not remote or remote.startswith("-"):
            raise GitError(f"not a remote: {remote!r}")
        ref = f"refs/heads/{branch}"
        async with self.lock():
            await self.rev_parse(ref)
            pushed = await self._git("push", remote, f"{ref}:{ref}", hooks=True, check=False)
        if not pushed.ok:
            message = (pushed.err.strip() or pushed.out.strip())[-2000:]
            raise GitError(
                f"git push of {branch} to {remote} failed: {message}",
                command=f"git push {remote} {ref}:{ref}",
                output=message,
            )

    # -- the lock ------------------------------------------------------------------------------

    def lock(self) -> AbstractAsyncContextManager[None]:
        """The repository lock: one holder at a time across tasks and processes. Re-entrant for
        the holder (and tasks it starts while holding it), so a holder may call the methods
        that take it themselves."""
        return self._locked()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
        state = locks.setdefault(str(self.repo), _RepoLock())
        if state.hold is not None and state.hold in _HELD.get():
            yield  # re-entered by the holder
            return
        async with state.lock:
            fd = await _acquire_file_lock(self.lock_file)
            hold = state.hold = object()
            token = _HELD.set((*_HELD.get(), hold))
            try:
                yield
            finally:
                _HELD.reset(token)
                state.hold = None
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
