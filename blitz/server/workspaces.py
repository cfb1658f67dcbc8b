"""Routes of the warm worktree pools: list every project's worktrees, and empty the pools."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel

from blitz import actions
from blitz.domain import Project
from blitz.pool import Entry

if TYPE_CHECKING:
    from blitz.server.host import Host


class WorktreeOut(BaseModel):
    """One blitz worktree of a project (``blitz workspaces``)."""

    project: str
    project_id: str
    name: str
    path: str
    kind: str  # "pooled", "temporary", "other"
    busy: bool
    holder: str  # "pid purpose" of whoever holds it ("" when free)
    head: str
    since: float  # when it was taken (busy) or last given back

    @classmethod
    def of(cls, project: Project, entry: Entry) -> WorktreeOut:
        return cls(
            project=project.name,
            project_id=project.id,
            name=entry.name,
            path=str(entry.path),
            kind=entry.kind,
            busy=entry.busy,
            holder=entry.holder,
            head=entry.head,
            since=entry.since,
        )


class PrunedOut(BaseModel):
    project: str
    removed: list[str]
    busy: list[str]  # held by an attempt: left alone


class PruneIn(BaseModel):
    project: str = ""  # name or id; "" = every project


def routes(router: APIRouter, host: Host) -> None:
    """Add the worktree routes of docs/api.md to ``router``."""

    def projects(key: str) -> list[Project]:
        store = host.store
        return [actions.project_of(store, key)] if key else store.list_projects()

    @router.get("/api/workspaces", response_model=list[WorktreeOut])
    async def list_workspaces(project: str = "") -> list[WorktreeOut]:
        found = await host.app.worktrees.entries(projects(project))
        return [WorktreeOut.of(p, e) for p, e in found]

    @router.post("/api/workspaces/prune", response_model=list[PrunedOut])
    async def prune_workspaces(body: PruneIn | None = None) -> list[PrunedOut]:
        key = body.project if body is not None else ""
        done = await host.app.worktrees.prune(projects(key))
        return [
            PrunedOut(project=d.project, removed=list(d.removed), busy=list(d.busy)) for d in done
        ]
