"""The ref check: defence in depth for when no sandbox keeps an agent away from the repository.

Before an attempt's agent runs, :func:`snapshot` records every ref of the repository (branches,
tags, remote-tracking refs, notes, ``refs/blitz/...``) and the main checkout's HEAD; after it ran,
:func:`verify` compares. A change blitz did not make is the agent's: the attempt fails, naming
the ref, and blitz undoes the change where it can (a local ref is put back, a created one deleted,
a deleted one recreated). A remote-tracking ref that moved is put back too, but the push that
moved it cannot be undone from here: the error says so. The main checkout's HEAD is never put
back (that would change the user's working tree under them); the error says to look at it.

Blitz moves refs itself while an agent works (other attempts integrate into the goal branch,
best-of-N keeps candidates under ``refs/blitz/``, a publish pushes): every such move goes through
:mod:`blitz.workspace`, which records it here (:class:`OwnRefs`), so a ref whose new value is
the one blitz last gave it is not blamed. The record lives in this process only.

The attempt's own worktree HEAD is the agent's to move (a commit, a checkout): it is put back at
the attempt's base with its changes kept, which is not a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import git

if TYPE_CHECKING:
    from blitz.workspace import Workspace

GIT_TIMEOUT = 60.0
"""Seconds for each git command of the check."""

REMOTE_PREFIX = "refs/remotes/"


class OwnRefs:
    """The value blitz itself last gave each ref of one repository ("" once it deleted it),
    and when (a counter, so a check knows what blitz did since its snapshot)."""

    __slots__ = ("_clock", "_last")

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, str]] = {}
        self._clock = 0

    def set(self, ref: str, sha: str) -> None:
        """Blitz pointed ``ref`` at ``sha``."""
        self._clock += 1
        self._last[ref] = (self._clock, sha)

    def deleted(self, ref: str) -> None:
        """Blitz deleted ``ref``."""
        self.set(ref, "")

    @property
    def mark(self) -> int:
        """Now, for :meth:`since`."""
        return self._clock

    def last(self, ref: str) -> str | None:
        """What blitz last set ``ref`` to ("" deleted), or None if it never touched it."""
        found = self._last.get(ref)
        return found[1] if found is not None else None

    def since(self, ref: str, mark: int) -> str | None:
        """What blitz set ``ref`` to after ``mark``, or None if it did not touch it since."""
        found = self._last.get(ref)
        return found[1] if found is not None and found[0] > mark else None


_OWN: dict[str, OwnRefs] = {}


def own_refs(repo: Path) -> OwnRefs:
    """The record of blitz's own ref moves in ``repo`` (a resolved path), made on first use."""
    return _OWN.setdefault(str(repo), OwnRefs())


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The refs of a repository before an agent ran."""

    refs: Mapping[str, str]
    mark: int  # the OwnRefs counter when it was taken


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One ref the agent changed; ``old`` "" = created, ``new`` "" = deleted."""

    ref: str
    old: str
    new: str
    restored: bool

    def describe(self) -> str:
        if self.ref == git.MAIN_HEAD:
            return (
                f"the main checkout's HEAD moved from {_short(self.old)} to {_short(self.new)} "
                "(not put back: that would change your working tree; check your checkout)"
            )
        if not self.old:
            what = f"{self.ref} created at {_short(self.new)}"
            undo = "deleted again"
        elif not self.new:
            what = f"{self.ref} deleted (was {_short(self.old)})"
            undo = "recreated"
        else:
            what = f"{self.ref} moved {_short(self.old)} → {_short(self.new)}"
            undo = "restored"
        if self.ref.startswith(REMOTE_PREFIX):
            undo += " locally" if self.restored else ""
            remote = self.ref.removeprefix(REMOTE_PREFIX).split("/", 1)[0]
            tail = f": the agent may have pushed; check the remote {remote!r}"
        else:
            tail = ""
        done = undo if self.restored else "could not be undone: it moved again meanwhile"
        return f"{what} ({done}){tail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RefCheck:
    """What the check found: the agent's ref changes, and whether its worktree HEAD was put
    back (``head``: what was undone, "" when nothing)."""

    changes: tuple[Change, ...] = ()
    head: str = ""

    @property
    def error(self) -> str:
        """The attempt's error when the agent changed refs ("" when it did not)."""
        if not self.changes:
            return ""
        lines = "\n".join(f"- {c.describe()}" for c in self.changes)
        return f"the agent changed the repository's refs, which only blitz may do:\n{lines}"


async def snapshot(ws: Workspace) -> Snapshot:
    """The repository's refs now, before the agent runs."""
    mark = own_refs(ws.repo).mark
    return Snapshot(refs=await git.refs(ws.repo, timeout=GIT_TIMEOUT), mark=mark)


async def verify(ws: Workspace, before: Snapshot, *, worktree: Path, base: str) -> RefCheck:
    """Compare the refs with ``before``, undo what the agent changed, and put the worktree's
    HEAD back at ``base`` if it moved. Holds the repository lock, so blitz's own moves are
    recorded before they are seen."""
    own = own_refs(ws.repo)
    async with ws.lock():
        # The HEAD first: a branch it is on may be one the agent made, deleted below.
        head = await _put_back_head(worktree, base)
        after = await git.refs(ws.repo, timeout=GIT_TIMEOUT)
        changes = []
        for ref in sorted(before.refs.keys() | after.keys()):
            old, new = before.refs.get(ref, ""), after.get(ref, "")
            if old == new or own.last(ref) == new:
                continue
            # Put back what blitz itself set meanwhile, else what was there before.
            target = own.since(ref, before.mark)
            target = old if target is None else target
            restored = ref != git.MAIN_HEAD and await _restore(ws.repo, ref, target, new)
            changes.append(Change(ref=ref, old=old, new=new, restored=restored))
    return RefCheck(changes=tuple(changes), head=head)


async def _restore(repo: Path, ref: str, target: str, current: str) -> bool:
    if target.startswith("ref: ") or current.startswith("ref: "):
        return False  # a symbolic ref: update-ref would write through it
    return await git.set_ref(repo, ref, target, current, timeout=GIT_TIMEOUT)


async def _put_back_head(worktree: Path, base: str) -> str:
    sha, branch = await git.worktree_head(worktree, timeout=GIT_TIMEOUT)
    if not sha or (sha == base and not branch):
        return ""
    if not await git.set_ref(worktree, "HEAD", base, sha, timeout=GIT_TIMEOUT):
        return ""
    on = f" (it had checked out {branch.removeprefix('refs/heads/')})" if branch else ""
    return f"the agent moved its worktree's HEAD to {_short(sha)}{on}; put back, changes kept"


def _short(value: str) -> str:
    if value.startswith("ref: "):
        return value.removeprefix("ref: ").removeprefix("refs/heads/")
    return value[:10]
