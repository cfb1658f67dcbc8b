"""The warm worktree pool: worktrees that outlive attempts, so an attempt starts in a directory
that already exists (and holds the project's installed dependencies) instead of a fresh
``git worktree add``.

Invariants kept here:

* A worktree handed out is exactly the asked commit's tree: HEAD detached at it, no tracked
  change, no untracked file, no ignored file but those under the project's ``keep`` directories,
  no operation in progress, no flagged index entry. It is reset and then verified every time it
  is taken (:mod:`blitz.worktree_reset`), never trusted: not after an attempt given back in
  order, not after a process killed mid-attempt. One that cannot be made clean is removed and
  made anew.
* One holder at a time, across tasks and processes: each pooled worktree has an ``flock``-ed
  lock file next to it (the kernel releases it when its holder dies, even by ``kill -9``).
* The pool never blocks: past its ``size`` (the project's parallelism plus a spare or two) a
  temporary worktree is made and removed after use.
* Its state (locks, set-up markers) lives beside the worktrees, never inside one, so an agent
  cannot see or change it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from blitz.errors import GitError
from blitz.workspace import Workspace
from blitz.worktree_reset import keep_patterns, reset, verify

POOLED_PREFIX = "pool-"
TEMPORARY_PREFIX = "tmp-"
SPARE = 2
"""Pooled worktrees kept beyond the project's parallelism (best-of-N, baselines)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pooled:
    """A worktree handed out by the pool: where it is, its name, where its set-up marker lives
    (outside it), and whether it was reused (False: made anew for this holder)."""

    path: Path
    name: str
    marker: Path
    reused: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One of a repository's blitz worktrees as ``blitz workspaces`` lists it."""

    name: str
    path: Path
    kind: str  # "pooled", "temporary", or "other" (an attempt's own, from an older blitz)
    busy: bool
    holder: str = ""  # "pid purpose" of whoever holds it
    head: str = ""  # the commit it is at ("" when unknown)
    since: float = 0.0  # when it was taken (busy) or last given back


class Claim:
    """An ``flock`` held on one worktree's lock file; the file names the holder."""

    __slots__ = ("fd", "path")

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def take(cls, path: Path, purpose: str) -> Claim | None:
        """The claim, or None when another holder has it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {purpose}\n{time.time()}\n".encode(), 0)
        return cls(path, fd)

    def release(self, *, delete: bool = False) -> None:
        if delete:
            self.path.unlink(missing_ok=True)
        else:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"\n{time.time()}\n".encode(), 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class WorktreePool:
    """The pooled worktrees of one repository, shared by every goal of a process (and safe to
    share between processes)."""

    def __init__(self, workspace: Workspace, *, size: int, keep: tuple[str, ...] = ()) -> None:
        keep_patterns(keep)  # a bad entry is a configuration error now, not at the first reset
        self.workspace = workspace
        self.size = max(1, size)
        self.keep = keep
        self.state_dir = workspace.worktrees_dir.with_name(workspace.worktrees_dir.name + ".pool")
        """Lock files and set-up markers, one each per worktree, beside the worktrees."""
        self._swept = False

    def marker(self, name: str) -> Path:
        """Where the set-up marker of worktree ``name`` lives (outside it)."""
        return self.state_dir / f"{name}.setup"

    @contextlib.asynccontextmanager
    async def worktree(self, sha: str, *, purpose: str) -> AsyncIterator[Pooled]:
        """A worktree that is exactly ``sha``'s tree, for as long as the block runs; given back
        (or, if temporary, removed) when it ends, however it ends."""
        commit = await self.workspace.rev_parse(sha)
        name, claim = self._claim(purpose)
        try:
            pooled = await self._ready(name, commit)
        except BaseException:
            await asyncio.shield(self._give_back(name, claim, broken=True))
            raise
        try:
            yield pooled
        finally:
            await asyncio.shield(self._give_back(name, claim))

    def _claim(self, purpose: str) -> tuple[str, Claim]:
        names = [f"{POOLED_PREFIX}{n}" for n in range(1, self.size + 1)]
        # Warm ones first: a worktree that exists is what the pool is for.
        names.sort(key=lambda n: not (self.workspace.worktrees_dir / n).is_dir())
        for name in names:
            claim = Claim.take(self.state_dir / f"{name}.lock", purpose)
            if claim is not None:
                return name, claim
        name = f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:12]}"
        claim = Claim.take(self.state_dir / f"{name}.lock", purpose)
        assert claim is not None  # a new name nobody holds
        return name, claim

    async def _ready(self, name: str, commit: str) -> Pooled:
        ws = self.workspace
        path = ws.worktrees_dir / name
        if name.startswith(TEMPORARY_PREFIX) and not self._swept:
            self._swept = True
            await self._sweep()
        if path.is_dir() and (path / ".git").is_file():
            kept = [k for k in keep_patterns(self.keep) if (path / k).exists()]
            try:
                await reset(ws.git, path, commit, keep=self.keep)
            except GitError:
                pass  # made anew below
            else:
                if any(not (path / k).exists() for k in kept):
                    # A cache the reset had to drop (git would have seen it): set up again.
                    self.marker(name).unlink(missing_ok=True)
                return Pooled(path=path, name=name, marker=self.marker(name), reused=True)
        self.marker(name).unlink(missing_ok=True)
        path = await ws.add_worktree(name, commit)
        problems = await verify(ws.git, path, commit, keep=self.keep)
        if problems:
            raise GitError(f"a new worktree {path} is not clean: {'; '.join(problems[:5])}")
        return Pooled(path=path, name=name, marker=self.marker(name), reused=False)

    async def _give_back(self, name: str, claim: Claim, *, broken: bool = False) -> None:
        ws = self.workspace
        path = ws.worktrees_dir / name
        try:
            if name.startswith(TEMPORARY_PREFIX) or broken:
                await ws.remove_worktree(path)
                self.marker(name).unlink(missing_ok=True)
            elif (path / ".git").is_file():
                # A branch the agent checked out must not stay checked out here: blitz never
                # moves a branch checked out anywhere, so it would block that branch.
                await ws.git.run(
                    "update-ref", "--no-deref", "-m", "blitz: given back", "HEAD", "HEAD",
                    cwd=path, check=False,
                )  # fmt: skip
        except (GitError, OSError):
            pass  # the next holder resets it, or makes it anew
        finally:
            claim.release(delete=name.startswith(TEMPORARY_PREFIX))

    async def _sweep(self) -> list[str]:
        """Remove temporary worktrees nobody holds (their process died)."""
        removed: list[str] = []
        ws = self.workspace
        if not ws.worktrees_dir.is_dir():
            return removed
        for child in sorted(ws.worktrees_dir.glob(f"{TEMPORARY_PREFIX}*")):
            claim = Claim.take(self.state_dir / f"{child.name}.lock", "sweep")
            if claim is None:
                continue
            try:
                await ws.remove_worktree(child)
                removed.append(child.name)
            finally:
                claim.release(delete=True)
        return removed

    # -- what `blitz workspaces` shows and does ------------------------------------------------

    async def entries(self) -> list[Entry]:
        """Every blitz worktree of the repository, pooled or not, busy or free."""
        ws = self.workspace
        if not ws.worktrees_dir.is_dir():
            return []
        found = []
        for child in sorted(ws.worktrees_dir.iterdir()):
            lock = self.state_dir / f"{child.name}.lock"
            kind = (
                "pooled"
                if child.name.startswith(POOLED_PREFIX)
                else "temporary"
                if child.name.startswith(TEMPORARY_PREFIX)
                else "other"
            )
            busy, holder, since = False, "", 0.0
            if kind != "other":
                busy = _held(lock)
                holder, since = _holder(lock)
            head = await ws.git.run("rev-parse", "-q", "--verify", "HEAD", cwd=child, check=False)
            found.append(
                Entry(
                    name=child.name,
                    path=child,
                    kind=kind,
                    busy=busy,
                    holder=holder if busy else "",
                    head=head.out.strip() if head.ok else "",
                    since=since,
                )
            )
        return found

    async def prune(self) -> tuple[list[str], list[str]]:
        """Remove every pooled and temporary worktree nobody holds; (removed, left busy)."""
        ws = self.workspace
        removed: list[str] = []
        busy: list[str] = []
        if not ws.worktrees_dir.is_dir():
            return removed, busy
        for child in sorted(ws.worktrees_dir.iterdir()):
            if not child.name.startswith((POOLED_PREFIX, TEMPORARY_PREFIX)):
                continue
            claim = Claim.take(self.state_dir / f"{child.name}.lock", "prune")
            if claim is None:
                busy.append(child.name)
                continue
            try:
                await ws.remove_worktree(child)
                self.marker(child.name).unlink(missing_ok=True)
                removed.append(child.name)
            finally:
                # A pooled lock file stays: deleting it while another process may be opening
                # it would let two holders lock two different files of one name.
                claim.release(delete=child.name.startswith(TEMPORARY_PREFIX))
        return removed, busy


def in_use(worktree: Path) -> bool:
    """Whether ``worktree`` is held by someone, or is not the pool's at all (an attempt's own
    worktree from before the pool): False only for a pooled worktree that is free."""
    if not worktree.name.startswith((POOLED_PREFIX, TEMPORARY_PREFIX)):
        return True
    state = worktree.parent.with_name(worktree.parent.name + ".pool")
    return _held(state / f"{worktree.name}.lock")


def _held(lock: Path) -> bool:
    """Whether someone holds the lock file's ``flock`` (without writing to it)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken just now
    return False


def _holder(lock: Path) -> tuple[str, float]:
    """Who holds (or last held) a worktree, from its lock file, and since when."""
    try:
        first, _, rest = lock.read_text(encoding="utf-8").partition("\n")
        return first.strip(), float(rest.strip() or 0)
    except (OSError, ValueError):
        return "", 0.0
