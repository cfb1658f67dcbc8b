"""The MCP tools' :class:`~blitz.integrations.mcp.access.Access` inside the daemon: the actions
(:mod:`blitz.actions`) and the store, through the daemon's :class:`~blitz.server.host.Host`,
answered in the API's shapes as its routes answer them.

Reads run in worker threads (a slow store read never stalls the engine); changes run on the
loop, the only thread that may touch the engine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import actions, git
from blitz.config import CONFIG_NAME
from blitz.domain import Attempt, Goal, GoalState, Project
from blitz.errors import UserError
from blitz.integrations.mcp.access import Action
from blitz.server import goals as server_goals
from blitz.server.goals import DIFF_CAP
from blitz.server.inputs import GoalIn
from blitz.server.problems import Problem
from blitz.server.schemas import (
    ActionOut,
    AttemptDetailOut,
    EventOut,
    GoalDetailOut,
    GoalOut,
    ProjectOut,
    TaskDetailOut,
    attempt_detail,
    event_data,
    goal_detail,
    goal_out,
    task_detail,
)
from blitz.store.base import GoalQuery

if TYPE_CHECKING:
    from blitz.server.host import Host


NO_PLANNER = (
    "no model is configured to plan goals of {project}: pass the goal's plan (the text of a "
    "plan file, YAML or JSON) in `plan`, or set [models] planner in the project's blitz.toml "
    "(or BLITZ_MODEL in the daemon's environment)"
)


class LocalAccess:
    """The daemon's own actions, for ``/mcp``."""

    def __init__(self, host: Host) -> None:
        self.host = host

    async def aclose(self) -> None:
        return None

    # -- projects ---------------------------------------------------------------------------

    def _project_out(self, project: Project) -> ProjectOut:
        config = Path(project.path) / CONFIG_NAME
        return ProjectOut.of(
            project,
            config_file=str(config) if config.is_file() else "",
            usage=self.host.store.project_usage(project.id),
        )

    async def list_projects(self) -> list[ProjectOut]:
        def load() -> list[ProjectOut]:
            return [self._project_out(p) for p in self.host.store.list_projects()]

        return await asyncio.to_thread(load)

    async def add_project(self, path: str, name: str) -> ProjectOut:
        _check_open(self.host)
        where = Path(path).expanduser()
        if not where.is_absolute():
            raise UserError(f"path {path!r} is relative: give the repository's absolute path")
        registered = await actions.register(self.host.app, where, name=name)
        return await asyncio.to_thread(self._project_out, registered.project)

    # -- goals ------------------------------------------------------------------------------

    async def submit_goal(self, request: GoalIn) -> GoalDetailOut:
        app = self.host.app
        _check_open(self.host)
        project = await asyncio.to_thread(actions.project_of, app.store, request.project)
        if request.plan is None and not app.has_planner(project):
            raise UserError(NO_PLANNER.format(project=project.name))
        goal_request = server_goals.goal_request(request)
        submitted = await actions.new_goal(app, self.host.engine, Path(project.path), goal_request)
        return await self.goal(submitted.goal.id)

    async def list_goals(self, project: str, states: list[GoalState], limit: int) -> list[GoalOut]:
        store = self.host.store

        def load() -> list[GoalOut]:
            project_id = actions.project_of(store, project).id if project else None
            query = GoalQuery(
                project_id=project_id, states=frozenset(states) if states else None, limit=limit
            )
            names = {p.id: p.name for p in store.list_projects()}
            return [
                goal_out(
                    g,
                    names.get(g.project_id, ""),
                    store.load_tasks(g.id),
                    store.usage(g.id) + g.usage,
                )
                for g in store.find_goals(query).goals
            ]

        return await asyncio.to_thread(load)

    def _detail(self, goal: Goal) -> GoalDetailOut:
        store = self.host.store
        project = store.get_project(goal.project_id)
        return goal_detail(
            goal,
            project.name if project else "",
            store.load_tasks(goal.id),
            store.usage(goal.id) + goal.usage,
            store.load_recoveries(goal.id),
            driven_here=goal.id in self.host.engine.runs,
            attempts=store.load_attempts(goal.id),
        )

    async def goal(self, key: str) -> GoalDetailOut:
        store = self.host.store
        return await asyncio.to_thread(lambda: self._detail(actions.goal_of(store, key)))

    async def events(self, key: str, after: int, limit: int) -> list[EventOut]:
        store = self.host.store

        def load() -> list[EventOut]:
            found = actions.goal_of(store, key)
            return [
                EventOut(**event_data(e))
                for e in store.events(goal_id=found.id, after=after, limit=limit)
            ]

        return await asyncio.to_thread(load)

    async def task(self, key: str, task: str) -> TaskDetailOut:
        store = self.host.store

        def load() -> TaskDetailOut:
            found = actions.goal_of(store, key)
            tasks = {t.id: t for t in store.load_tasks(found.id)}
            if task not in tasks:
                raise actions.NotFound(f"goal {found.id} has no task {task!r}")
            return task_detail(
                tasks[task], store.load_attempts(found.id, task), store.load_recoveries(found.id)
            )

        return await asyncio.to_thread(load)

    async def attempt(self, key: str, attempt: str) -> AttemptDetailOut:
        store = self.host.store

        def load() -> tuple[Goal, Project | None, list[Attempt]]:
            found = actions.goal_of(store, key)
            match = [a for a in store.load_attempts(found.id) if a.id == attempt]
            return found, store.get_project(found.project_id), match

        found, project, match = await asyncio.to_thread(load)
        if not match:
            raise actions.NotFound(f"goal {found.id} has no attempt {attempt!r}")
        record = match[0]
        if not record.diff and record.commit and project is not None:
            base = record.base_sha or f"{record.commit}^"
            diff = await git.commit_diff(Path(project.path), base, record.commit, cap=DIFF_CAP)
            record = record.evolve(diff=diff)
        return attempt_detail(record, [])

    async def act(self, key: str, action: Action, *, task: str = "", reason: str = "") -> ActionOut:
        app, engine = self.host.app, self.host.engine
        _check_open(self.host)
        match action:
            case Action.APPROVE:
                done = await actions.approve(app, engine, key)
            case Action.REJECT:
                done = await actions.reject(app, engine, key, reason)
            case Action.CANCEL:
                done = await actions.cancel(app, engine, key, reason or "cancelled over MCP")
            case Action.RETRY:
                done = await actions.retry(app, engine, key, task)
            case Action.SKIP:
                done = await actions.skip(app, engine, key, task)
        queued = done.applied is actions.Applied.QUEUED
        return ActionOut(
            goal_id=done.goal.id, action=action.value, applied="queued" if queued else "engine"
        )


def _check_open(host: Host) -> None:
    """Refuse, as a user error, once the daemon began shutting down."""
    try:
        host.check_open()
    except Problem as exc:
        raise UserError(exc.detail) from exc
