"""The route of a goal's whole change: every file its branch changed against the commit it
started from, with lines added and removed, and the patch (its first part when it is long)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel

from blitz import actions
from blitz.domain import Goal, Project
from blitz.errors import GitError
from blitz.git import run_git

if TYPE_CHECKING:
    from blitz.server.host import Host

PATCH_CAP = 512 * 1024
"""Characters of the goal's patch answered (its beginning is kept, and the answer says so)."""

TIMEOUT = 30.0


class FileChangeOut(BaseModel):
    path: str
    added: int | None  # None: a binary file
    removed: int | None


class GoalChangesOut(BaseModel):
    """What a goal's branch changed, from ``base`` (where it started) to ``head``."""

    goal_id: str
    branch: str
    base: str  # the commit the goal started from
    head: str  # the goal branch's commit ("" while it has none)
    files: list[FileChangeOut]
    added: int
    removed: int
    diff: str
    truncated: bool  # ``diff`` is the first PATCH_CAP characters of a longer patch


def numstat(text: str) -> list[FileChangeOut]:
    """Files of ``git diff --numstat -z --no-renames`` output."""
    files = []
    for record in text.split("\0"):
        if not record:
            continue
        added, removed, path = record.split("\t", 2)
        binary = added == "-"
        files.append(
            FileChangeOut(
                path=path,
                added=None if binary else int(added),
                removed=None if binary else int(removed),
            )
        )
    return files


async def changes(repo: Path | None, goal: Goal) -> GoalChangesOut:
    """``goal``'s change in ``repo`` (its project's repository): nothing while its branch or
    base is missing."""
    empty = GoalChangesOut(
        goal_id=goal.id, branch=goal.branch, base=goal.base_sha, head="",
        files=[], added=0, removed=0, diff="", truncated=False,
    )  # fmt: skip
    if repo is None or not goal.base_sha or not goal.branch or not repo.is_dir():
        return empty
    try:
        found = await run_git(
            repo, "rev-parse", "--verify", "-q", f"refs/heads/{goal.branch}^{{commit}}",
            timeout=TIMEOUT, check=False,
        )  # fmt: skip
        if not found.ok:
            return empty
        head = found.out.strip()
        span = (goal.base_sha, head, "--")
        stat = await run_git(
            repo, "diff", "--numstat", "-z", "--no-renames", *span, timeout=TIMEOUT
        )
        patch = await run_git(
            repo, "diff", "--no-color", "--no-ext-diff", "--no-renames", *span,
            timeout=TIMEOUT, out_limit=PATCH_CAP,
        )  # fmt: skip
    except GitError:
        return empty
    files = numstat(stat.out)
    return GoalChangesOut(
        goal_id=goal.id,
        branch=goal.branch,
        base=goal.base_sha,
        head=head,
        files=files,
        added=sum(f.added or 0 for f in files),
        removed=sum(f.removed or 0 for f in files),
        diff=patch.out,
        truncated=patch.out_size > len(patch.out.encode()),
    )


def routes(router: APIRouter, host: Host) -> None:
    """Add ``GET /api/goals/{goal}/changes`` (docs/api.md) to ``router``."""
    store = host.store

    @router.get("/api/goals/{goal}/changes", response_model=GoalChangesOut)
    async def goal_changes(goal: str) -> GoalChangesOut:
        """Every file the goal's branch changed, and the patch."""

        def load() -> tuple[Goal, Project | None]:
            found = actions.goal_of(store, goal)
            return found, store.get_project(found.project_id)

        found, project = await asyncio.to_thread(load)
        return await changes(Path(project.path) if project else None, found)
