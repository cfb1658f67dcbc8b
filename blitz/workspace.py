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
* Every git command runs through :mod:`blitz.git`: with a timeout, never prompting for
  credentials, never opening an editor.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import unicodedata
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from blitz import trailers
from blitz.errors import ConfigError, GitError, RepositoryError, UserError
from blitz.git import Git, repo_lock
from blitz.refcheck import own_refs
from blitz.replay import replay

GOAL_PREFIX = "blitz/"
MAX_DIRTY_LISTED = 10

_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Integration:
    """The outcome of :meth:`Workspace.integrate`.

    ``head`` is the goal branch head after the call, except for ``"rebased"``, where it is the
    rebased commit and ``detail`` is the goal branch head it now sits on (the next ``base_sha``).
    """

    status: Literal["integrated", "rebased", "conflict", "already", "behind"]
    head: str
    conflict_files: tuple[str, ...] = ()
    detail: str = ""


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
        self.git = Git(self.repo, timeout=git_timeout)
        """The repository's git."""
        root = self.worktrees_dir.parent
        if root == self.repo or self.repo in root.parents:
            # Worktrees inside the checkout would show up in the user's `git status`.
            raise ConfigError(f"worktrees_root {root} must be outside the repository {self.repo}")

    # -- the repository ------------------------------------------------------------------------

    async def check(self, *, base_branch: str, allow_dirty: bool = False) -> None:
        """Raise :class:`RepositoryError` saying how to fix it if blitz cannot use the repo."""
        if not self.repo.exists():
            raise RepositoryError(f"repository path does not exist: {self.repo}")
        if not self.repo.is_dir():
            raise RepositoryError(f"not a git repository (not a directory): {self.repo}")
        bare = await self.git.run("rev-parse", "--is-bare-repository", check=False)
        if not bare.ok:
            raise RepositoryError(
                f"not a git repository: {self.repo}\n{bare.err.strip()}\n"
                "run `git init` and commit your code, or point blitz at an existing repository"
            )
        is_bare = bare.out.strip() == "true"
        if not is_bare:
            top = await self.git.run("rev-parse", "--show-toplevel", check=False)
            toplevel = Path(top.out.strip()).resolve() if top.ok else None
            if toplevel != self.repo:
                raise RepositoryError(
                    f"not a git repository: {self.repo} is inside the repository {toplevel}; "
                    "pass the repository's top-level directory"
                )
        branches = await self._branches()
        head = await self.git.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
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
        return await self.git.branches()

    async def current_branch(self) -> str:
        """The branch checked out in the user's checkout."""
        found = await self.git.run("symbolic-ref", "--short", "-q", "HEAD", check=False)
        if not found.ok or not found.out.strip():
            raise RepositoryError(
                f"HEAD is detached in {self.repo}; check out a branch or name the base branch"
            )
        return found.out.strip()

    async def start_branch(self) -> str:
        """The branch goals start from when ``blitz.toml`` names none: the one checked out."""
        try:
            branch = await self.current_branch()
        except UserError:
            # No current branch may mean no repository at all: check() then says what is wrong.
            try:
                await self.rev_parse("HEAD")
            except GitError:
                await self.check(base_branch="HEAD", allow_dirty=True)
            raise
        except Exception as exc:
            raise RepositoryError(f"cannot read the current branch of {self}: {exc}") from exc
        if not branch or branch == "HEAD":
            raise RepositoryError(
                "the repository is on a detached HEAD: check out the branch goals should start "
                "from, or set [project] base_branch in blitz.toml"
            )
        return branch

    async def dirty_paths(self) -> list[str]:
        """Uncommitted paths in the user's checkout: staged, unstaged, untracked (not ignored)."""
        return await self.git.status()

    async def rev_parse(self, ref: str) -> str:
        """The full sha of the commit ``ref`` names; :class:`GitError` if there is none."""
        return await self.git.rev_parse(ref)

    # -- the goal branch -----------------------------------------------------------------------

    async def ensure_goal_branch(self, branch: str, base_branch: str) -> str:
        """Create the goal branch at the base branch's head unless it exists; return its head."""
        if branch == base_branch:
            raise GitError(f"refusing to use the base branch {base_branch!r} as the goal branch")
        _require_goal_branch(branch)
        valid = await self.git.run("check-ref-format", f"refs/heads/{branch}", check=False)
        if not valid.ok:
            raise GitError(f"invalid branch name: {branch!r}")
        ref = f"refs/heads/{branch}"
        async with self.lock():
            existing = await self.git.run(
                "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False
            )
            if existing.ok:
                return existing.out.strip()
            base = await self.rev_parse(f"refs/heads/{base_branch}")
            # An all-zero old value makes the update fail if the ref appeared meanwhile.
            message = f"blitz: goal branch from {base_branch}"
            await self.git.run("update-ref", "-m", message, ref, base, "0" * len(base))
            own_refs(self.repo).set(ref, base)  # for the ref check (blitz.refcheck)
            return base

    async def _refuse_checked_out(self, ref: str) -> None:
        path = await self.git.checked_out(ref)
        if path:
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
            await self.git.run("worktree", "add", "--detach", str(path), commit)
        return path

    async def remove_worktree(self, path: Path) -> None:
        """Remove a worktree, its directory and its registration; removing it again is a no-op."""
        async with self.lock():
            await self._remove_locked(self._own(path))

    async def _remove_locked(self, path: Path, *, prune: bool = True) -> None:
        path = self._own(path)
        await self.git.run("worktree", "remove", "--force", "--force", str(path), check=False)
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
        if prune:
            await self.git.run("worktree", "prune")

    async def cleanup_stale(self, keep: Collection[str] = ()) -> list[Path]:
        """Remove this repo's worktrees whose name is not in ``keep``; return what was removed."""
        removed: list[Path] = []
        async with self.lock():
            if self.worktrees_dir.is_dir():
                for child in sorted(self.worktrees_dir.iterdir()):
                    if child.name not in keep:
                        await self._remove_locked(child, prune=False)
                        removed.append(child)
            await self.git.run("worktree", "prune")
        return removed

    # -- reading a worktree --------------------------------------------------------------------

    async def changed_files(self, worktree: Path) -> list[str]:
        """Paths changed in the worktree against its HEAD, including untracked (not ignored)."""
        return await self.git.status(worktree, all_untracked=True)

    async def diff(self, worktree: Path, base_sha: str, *, max_chars: int = 20000) -> str:
        """The worktree's changes against ``base_sha`` as a patch, cut at ``max_chars``."""
        base = await self.rev_parse(base_sha)
        return await self.git.worktree_diff(worktree, base, max_chars=max_chars)

    async def diff_stat(self, worktree: Path, base_sha: str) -> str:
        """``git diff --stat`` of the worktree's changes against ``base_sha``."""
        base = await self.rev_parse(base_sha)
        return await self.git.worktree_diff_stat(worktree, base)

    # -- commits -------------------------------------------------------------------------------

    async def committed_tasks(self, branch: str, base_sha: str, goal_id: str) -> dict[str, str]:
        """``{task_id: sha}`` for this goal's commits in ``base_sha..branch``."""
        base = await self.rev_parse(base_sha)
        return await trailers.task_commits(self.git, f"{base}..refs/heads/{branch}", goal_id)

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
        trailers.require_value("goal id", goal_id)
        trailers.require_value("task id", task_id)
        worktree = self._own(worktree)
        base = await self.rev_parse(base_sha)
        # The whole goal branch, not just base_sha..branch: a retry that starts after the first
        # commit landed must still be refused. Goal ids are unique, so older history never matches.
        done = await trailers.task_commits(self.git, f"refs/heads/{branch}", goal_id)
        if task_id in done:
            raise GitError(f"task already committed: {task_id} is {done[task_id]} on {branch}")
        await self.git.run("add", "-A", cwd=worktree)
        tree = (await self.git.run("write-tree", cwd=worktree)).out.strip()
        base_tree = (await self.git.run("rev-parse", f"{base}^{{tree}}")).out.strip()
        if tree == base_tree:
            return None
        # Plumbing rather than `git commit`: no hooks, no message clean-up (which would drop
        # Markdown headings as comments), and no merge commit if the agent left a merge behind.
        identity = await self.git.identity(worktree)
        made = await self.git.run(
            *identity, "commit-tree", tree, "-p", base, "-F", "-",
            cwd=worktree, stdin=trailers.message(title, body, goal_id, task_id).encode(),
        )  # fmt: skip
        sha = made.out.strip()
        await self.git.run(
            "update-ref", "--no-deref", "-m", f"blitz: task {task_id}", "HEAD", sha, cwd=worktree
        )
        return sha

    async def keep_ref(self, name: str, sha: str) -> None:
        """Point ``name`` (under ``refs/blitz/``) at ``sha``, so a commit outlives its worktree:
        best-of-N keeps every candidate's work there for inspection."""
        if not name.startswith("refs/blitz/"):
            raise ValueError(f"blitz only writes refs under refs/blitz/, not {name!r}")
        async with self.lock():
            await self.git.run("update-ref", "-m", "blitz: keep attempt", name, sha)
            own_refs(self.repo).set(name, await self.rev_parse(name))

    async def refs(self, prefix: str) -> dict[str, str]:
        """Refs under ``prefix`` (such as ``refs/blitz/attempts/<goal>/``) -> their commits."""
        found = await self.git.run("for-each-ref", "--format=%(refname) %(objectname)", prefix)
        return dict(line.split(" ", 1) for line in found.out.splitlines() if " " in line)

    # -- integration ---------------------------------------------------------------------------

    async def integrate(
        self, worktree: Path | None, *, branch: str, commit_sha: str, base_sha: str
    ) -> Integration:
        """Put a task's commit on the goal branch.

        Fast-forwards (compare-and-swap) when the branch is still at ``base_sha``; otherwise
        rebases the worktree's commit onto the branch head and returns ``"rebased"``: the caller
        re-validates and calls again with ``base_sha=result.detail``. A conflicting rebase is
        aborted, leaving the worktree as it was. Without a worktree (``None``: the commit was
        made elsewhere) it is replayed in the object store (:mod:`blitz.replay`) when it is one
        commit on ``base_sha``; else ``"behind"``, and the caller calls again with a worktree.
        """
        _require_goal_branch(branch)
        own = self._own(worktree) if worktree is not None else None
        ref = f"refs/heads/{branch}"
        async with self.lock():
            commit, base, head = await self.git.rev_parse_all(commit_sha, base_sha, ref)
            goal_id, task_id = await trailers.of_commit(self.git, commit)
            done = await trailers.task_commits(self.git, ref, goal_id)
            if task_id in done:
                return Integration(
                    status="already", head=head, detail=f"task {task_id} is {done[task_id]}"
                )
            if not await self.git.is_ancestor(base, commit):
                raise GitError(f"commit {commit} does not descend from base {base}")
            await self._refuse_checked_out(ref)
            if head == base:
                await self.git.run("update-ref", "-m", f"blitz: task {task_id}", ref, commit, base)
                own_refs(self.repo).set(ref, commit)
                return Integration(status="integrated", head=commit)
            if own is None:
                return await self._replay(commit, base=base, onto=head)
            return await self._rebase(own, commit=commit, base=base, onto=head)

    async def _replay(self, commit: str, *, base: str, onto: str) -> Integration:
        """Rebase without a worktree (:mod:`blitz.replay`); "behind" when one is needed."""
        done = await replay(self.git, commit, base, onto, await self.git.identity(self.repo))
        if done is None:
            return Integration(status="behind", head=onto)
        if done.conflict_files:
            files = done.conflict_files
            said = "conflicts in " + ", ".join(files)
            return Integration(status="conflict", head=onto, conflict_files=files, detail=said)
        return Integration(status="rebased", head=done.sha, detail=onto)

    async def _rebase(self, worktree: Path, *, commit: str, base: str, onto: str) -> Integration:
        current = (await self.git.run("rev-parse", "HEAD", cwd=worktree)).out.strip()
        if current != commit:
            raise GitError(f"worktree {worktree} is at {current}, not at the commit {commit}")
        identity = await self.git.identity(worktree)
        try:
            # --empty=keep: if another task already made the same change, the task's trailer
            # commit still lands, so the task is recorded as committed.
            rebased = await self.git.run(
                *identity, "rebase", "--empty=keep", "--onto", onto, base,
                cwd=worktree, check=False,
            )  # fmt: skip
        except GitError:
            await self.git.run("rebase", "--abort", cwd=worktree, check=False)
            raise
        if rebased.ok:
            new = (await self.git.run("rev-parse", "HEAD", cwd=worktree)).out.strip()
            return Integration(status="rebased", head=new, detail=onto)
        unmerged = await self.git.run(
            "diff", "--name-only", "-z", "--diff-filter=U", cwd=worktree, check=False
        )
        await self.git.run("rebase", "--abort", cwd=worktree, check=False)
        files = tuple(dict.fromkeys(p for p in unmerged.out.split("\0") if p))
        message = (rebased.out + rebased.err).strip()[-2000:]
        if not files:
            raise GitError(f"rebase onto {onto} failed: {message}", output=message)
        return Integration(status="conflict", head=onto, conflict_files=files, detail=message)

    # -- remotes -------------------------------------------------------------------------------

    async def remote_url(self, remote: str) -> str | None:
        """The remote's URL, or None if there is no such remote."""
        return await self.git.remote_url(remote)

    async def push(self, remote: str, branch: str) -> None:
        """Push the goal branch to the same name on ``remote``; a push that is not a
        fast-forward fails with :class:`GitError` (blitz never force-pushes)."""
        _require_goal_branch(branch)
        if not remote or remote.startswith("-"):
            raise GitError(f"not a remote: {remote!r}")
        ref = f"refs/heads/{branch}"
        async with self.lock():
            sha = await self.rev_parse(ref)
            own_refs(self.repo).set(f"refs/remotes/{remote}/{branch}", sha)  # if it tracks it
            await self.git.push(remote, ref)

    # -- the lock ------------------------------------------------------------------------------

    def lock(self) -> AbstractAsyncContextManager[None]:
        """The repository lock: one holder at a time across tasks and processes. Re-entrant for
        the holder (and tasks it starts while holding it), so a holder may call the methods
        that take it themselves."""
        return repo_lock(self.repo, self.lock_file)
