"""A backend wrapper that catches an agent changing the user's own checkout.

An agent works in a worktree of the repository, but a CLI agent can write anywhere it can reach,
and the one place it is most likely to stray to is the repository's main checkout (the user's
work in progress). :class:`GuardedBackend` snapshots that checkout before and after the agent
runs: ``git status`` (untracked files included), the content of every file it lists, and HEAD.
If anything changed, the attempt fails (not crashed: the agent's work was wrong) naming the
paths. The changes are left where they are for the user to inspect; nothing is deleted or reset.

Changes the user had before the attempt are part of the first snapshot and are not blamed on the
agent; edits the user makes in the checkout while an agent runs would be. Files git ignores are
not watched. A worktree that is not in a git repository, or a repository without a main checkout
(bare), is passed through unchecked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from blitz import git
from blitz.backends.base import AgentBackend, AgentRequest, AgentResult, MessageSink
from blitz.errors import GitError

GIT_TIMEOUT = 120.0
"""Seconds for each git command of a snapshot (a large checkout's status can be slow)."""

PATHS_SHOWN = 20
"""Changed paths named in the error; the rest are counted."""


class SnapshotError(Exception):
    """A git command of a snapshot failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What a checkout looks like: where HEAD is, and each changed file's status and content."""

    head: str
    files: Mapping[str, str]  # path -> "<status> <content hash>"

    def changes(self, later: Snapshot) -> list[str]:
        """The paths that differ in ``later`` (and "HEAD" if it moved), sorted."""
        paths = {
            path
            for path in self.files.keys() | later.files.keys()
            if self.files.get(path) != later.files.get(path)
        }
        moved = ["HEAD"] if self.head != later.head else []
        return moved + sorted(paths)


class GuardedBackend:
    """``inner``, failing any attempt that changes the repository's main checkout."""

    def __init__(self, inner: AgentBackend) -> None:
        self.inner = inner
        self.name = inner.name

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        checkout = await main_checkout(request.worktree)
        if checkout is None:
            return await self.inner.run(request, on_message)
        try:
            before = await snapshot(checkout)
        except SnapshotError as exc:
            return AgentResult(ok=False, crashed=True, error=f"cannot check {checkout}: {exc}")
        result = await self.inner.run(request, on_message)
        try:
            after = await snapshot(checkout)
        except SnapshotError as exc:
            return dataclasses.replace(
                result, ok=False, crashed=True, error=f"cannot check {checkout}: {exc}"
            )
        changed = before.changes(after)
        if not changed:
            return result
        shown = ", ".join(_printable(path) for path in changed[:PATHS_SHOWN])
        if len(changed) > PATHS_SHOWN:
            shown += f" and {len(changed) - PATHS_SHOWN} more"
        error = (
            f"the agent changed files outside its worktree: {shown} (in {checkout}). The changes "
            "were left in place for you to inspect; nothing was deleted."
        )
        if result.error:
            error += f"\nThe agent also reported: {result.error}"
        return dataclasses.replace(result, ok=False, crashed=False, error=error)


async def main_checkout(worktree: Path) -> Path | None:
    """The main checkout of the repository ``worktree`` belongs to; None when there is none
    (not a repository, a bare one) or it is ``worktree`` itself."""
    try:
        found = await _git(worktree, "rev-parse", "--git-common-dir")
    except (SnapshotError, OSError):
        return None
    common = worktree / found.strip("\n")  # relative to the worktree unless absolute
    if common.name != ".git" or not common.is_dir():
        return None  # bare, or a git directory kept apart from its checkout
    checkout = common.parent
    if checkout.resolve() == worktree.resolve():
        return None
    return checkout


async def snapshot(checkout: Path) -> Snapshot:
    """``checkout``'s HEAD and the status and content hash of each file ``git status`` lists."""
    head = await _git(checkout, "rev-parse", "--verify", "-q", "HEAD", check=False)
    branch = await _git(checkout, "symbolic-ref", "-q", "HEAD", check=False)
    status = await _git(checkout, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries = git.status_entries(status)
    hashes = await asyncio.to_thread(_hash_all, checkout, list(entries))
    return Snapshot(
        head=f"{branch.strip()} {head.strip()}",
        files={path: f"{code} {hashes[path]}" for path, code in entries.items()},
    )


def _printable(path: str) -> str:
    """A path as text (git paths need not be UTF-8; they are read with surrogate escapes)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _hash_all(checkout: Path, paths: list[str]) -> dict[str, str]:
    return {path: _hash(checkout / path) for path in paths}


def _hash(path: Path) -> str:
    """A file's content hash; a link's target, a directory or a missing path by what it is."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    if stat.S_ISLNK(info.st_mode):
        return "link:" + hashlib.sha256(os.fsencode(os.readlink(path))).hexdigest()
    if not stat.S_ISREG(info.st_mode):
        return "dir" if stat.S_ISDIR(info.st_mode) else f"mode:{stat.S_IFMT(info.st_mode)}"
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    return digest.hexdigest()


async def _git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run git in ``cwd`` and return its stdout, whole (paths read with surrogate escapes)."""
    if not git.installed():
        raise SnapshotError("git is not installed")
    try:
        found = await git.run_git(
            cwd, *args, timeout=GIT_TIMEOUT, check=check, keep_secrets=False,
            errors="surrogateescape",
        )  # fmt: skip
    except GitError as exc:
        raise SnapshotError(str(exc)) from exc
    return found.out
