"""Routes of projects: register, list, read, change settings, pause, resume, remove."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response

from blitz import actions
from blitz.backends.registry import check_name
from blitz.config import CONFIG_NAME, ProjectConfig
from blitz.domain import Project
from blitz.errors import UserError
from blitz.server.inputs import PauseIn, ProjectIn, ProjectPatch
from blitz.server.problems import Problem, conflict
from blitz.server.schemas import ProjectOut

if TYPE_CHECKING:
    from blitz.server.host import Host


def routes(router: APIRouter, host: Host) -> None:
    """Add the project routes of docs/api.md to ``router``."""
    store = host.store

    def project_of(key: str) -> Project:
        return actions.project_of(store, key)

    def out(project: Project) -> ProjectOut:
        config = Path(project.path) / CONFIG_NAME
        return ProjectOut.of(
            project,
            config_file=str(config) if config.is_file() else "",
            usage=store.project_usage(project.id),
        )

    @router.get("/api/projects", response_model=list[ProjectOut])
    def list_projects() -> list[ProjectOut]:
        return [out(p) for p in store.list_projects()]

    @router.get("/api/projects/{project}", response_model=ProjectOut)
    def get_project(project: str) -> ProjectOut:
        return out(project_of(project))

    @router.post("/api/projects", response_model=ProjectOut, status_code=201)
    async def add_project(body: ProjectIn, response: Response) -> ProjectOut:
        """Register a repository (or answer 200 with the project it already is)."""
        host.check_open()
        path = Path(body.path).expanduser()
        if not path.is_absolute():
            raise Problem(
                422,
                f"body.path: {body.path!r} is relative; send the repository's absolute path",
                extra={"errors": [{"field": "body.path", "message": "must be absolute"}]},
            )
        registered = await actions.register(host.app, path, name=body.name)
        if not registered.created:
            response.status_code = 200
        return await asyncio.to_thread(out, registered.project)

    @router.patch("/api/projects/{project}", response_model=ProjectOut)
    async def patch_project(project: str, body: ProjectPatch) -> ProjectOut:
        """Change settings; those the repository's blitz.toml sets are refused (it wins)."""
        current = project_of(project)
        wanted = body.model_dump(exclude_unset=True)
        if not wanted:
            return await asyncio.to_thread(out, current)
        cfg = host.app.repo_config(Path(current.path))
        if cfg is not None:
            controlled = _set_by_config(cfg.project)
            refused = sorted(k for k in wanted if k in controlled)
            if refused:
                raise conflict(
                    f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} set by "
                    f"{Path(current.path) / CONFIG_NAME}, which blitz re-reads whenever it "
                    "starts a goal: change the file instead"
                )
        for field in ("backend", "fallback_backend"):
            name = wanted.get(field)
            if name:
                try:
                    check_name(name, cfg.backends if cfg else None)
                except UserError as exc:
                    raise Problem(
                        422,
                        f"body.{field}: {exc}",
                        extra={"errors": [{"field": f"body.{field}", "message": str(exc)}]},
                    ) from exc
        name = wanted.get("name")
        if name and name != current.name:
            other = store.get_project(name)
            if other is not None and other.id != current.id:
                raise conflict(f"another project is named {name!r}")
        gates = wanted.pop("gates", None)
        changes: dict[str, Any] = {k: v for k, v in wanted.items() if v is not None}
        if gates:
            changes["gates"] = dataclasses.replace(
                current.gates, **{k: v for k, v in gates.items() if v is not None}
            )
        updated = dataclasses.replace(current, **changes)
        store.write(updated)
        await store.flush()
        return await asyncio.to_thread(out, updated)

    @router.post("/api/projects/{project}/pause", response_model=ProjectOut)
    async def pause_project(project: str, body: PauseIn | None = None) -> ProjectOut:
        """Queued tasks of the project wait; running ones finish."""
        reason = (body.reason if body else "") or "paused by the user"
        paused = await actions.pause(host.app, host.engine, project, reason)
        return await asyncio.to_thread(out, paused)

    @router.post("/api/projects/{project}/resume", response_model=ProjectOut)
    async def resume_project(project: str) -> ProjectOut:
        resumed = await actions.resume(host.app, host.engine, project)
        return await asyncio.to_thread(out, resumed)

    @router.delete("/api/projects/{project}", status_code=204)
    async def remove_project(project: str) -> Response:
        """Forget the project and its goals' records (the repository is not touched)."""
        await actions.remove(host.app, host.engine, project)
        return Response(status_code=204)


def _set_by_config(section: ProjectConfig) -> set[str]:
    """Project fields that blitz.toml's [project] section decides whenever it is read."""
    fields = {f.name for f in dataclasses.fields(Project)}
    controlled = (set(ProjectConfig.model_fields) & fields) - {"name", "base_branch"}
    if section.base_branch:
        controlled.add("base_branch")
    return controlled | {"gates"}
