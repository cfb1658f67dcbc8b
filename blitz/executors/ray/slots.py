"""A node's repositories for attempts: one per attempt running at once, per project, kept
between attempts with a warm worktree each (:class:`~blitz.pool.WorktreePool`).

An attempt runs in a repository of its own, borrowing the node's cache of the project (git
alternates), so that its refs change only by this attempt: the agent's ref check
(:mod:`blitz.refcheck`) knows blitz's own ref moves in this process only and must never see
another attempt's. Making that repository and its worktree anew for every attempt cost a
``git init`` and a ``worktree add`` and ``remove`` (a checkout of the whole tree each time); a
slot keeps both. An attempt claims a free slot (an ``flock`` on its lock file, released by the
kernel if the worker dies), and the slot's refs are cleared before it sets its own, so nothing
of an earlier attempt's refs is left for the next one.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from blitz.git import Git, run_git
from blitz.pool import Claim

SLOTS = "attempts"
"""Where a node keeps its slots: ``<worker home>/attempts/<project id>/<n>``."""


@contextlib.asynccontextmanager
async def slot(root: Path, cache: Path, project_id: str, purpose: str) -> AsyncIterator[Path]:
    """A repository of this node for one attempt of ``project_id``, borrowing ``cache``'s
    objects, with no ref in it; the attempt's alone until the block ends."""
    repo, claim = _claim(root / SLOTS / project_id, purpose)
    try:
        await _ready(repo, cache)
        yield repo
    finally:
        claim.release()


def _claim(base: Path, purpose: str) -> tuple[Path, Claim]:
    """The first slot under ``base`` nobody holds, claimed; a new one when all are held."""
    for n in itertools.count(1):
        claim = Claim.take(base / f"{n}.lock", purpose)
        if claim is not None:
            return base / str(n), claim
    raise AssertionError("unreachable")


async def _ready(repo: Path, cache: Path) -> None:
    """``repo`` made (once) as a bare repository borrowing ``cache``'s objects, every ref of an
    earlier attempt deleted."""
    alternates = repo / "objects" / "info" / "alternates"
    borrowed = f"{cache / 'objects'}\n"
    if not (repo / "HEAD").is_file() or _read(alternates) != borrowed:
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir(parents=True)
        await run_git(repo, "init", "-q", "--bare", ".", timeout=60)
        alternates.write_text(borrowed)
        return
    listed = await Git(repo).run("for-each-ref", "--format=delete %(refname)")
    if listed.out.strip():
        await Git(repo).run("update-ref", "--no-deref", "--stdin", stdin=listed.out.encode())


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
