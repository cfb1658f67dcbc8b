"""What a person may do, one function per action: the one door for the CLI and the API (and,
later, Slack, MCP and voice).

An action checks what it is asked against the records, applies it through the engine's public
methods or the store, and returns what happened. When it does not apply it raises
:class:`NotFound` (no such goal, project or task), :class:`Conflict` (not now: the goal ended,
the project has unfinished goals, ...) or another :class:`~blitz.errors.UserError`. The CLI
prints the message and exits with code 2; the API answers 404, 409 or 400.

``engine`` is the engine of the calling process when that process drives goals (the daemon).
Without one (a CLI command while ``blitz serve`` or ``blitz run`` drives the goal) a request is
stored for the process that drives the goal, which applies it on its next step; a goal nobody
drives is cancelled in the store directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from blitz import executors, followups, steering
from blitz.backends.availability import require
from blitz.backends.registry import NO_MODEL, check_name
from blitz.config import apply_config
from blitz.detect import detect_gates
from blitz.domain import GOAL_DONE, Goal, GoalState, Plan, Project, TaskState, new_id
from blitz.errors import (
    ConfigError,
    Conflict,
    DirtyCheckout,
    NotFound,
    ProjectPaused,
    RepositoryError,
    UserError,
)
from blitz.events import Event, EventKind
from blitz.run_options import check_exploration
from blitz.runner import runner_id
from blitz.steering import Applied, Done
from blitz.store.base import Store
from blitz.workspace import branch_name

if TYPE_CHECKING:
    from blitz.app import App
    from blitz.clock import Clock
    from blitz.conductor import Engine

IGNORED_DIRTY = frozenset({"blitz.toml"})
"""Uncommitted files that do not stop a run (blitz.toml is read from the checkout itself)."""


class PlanSource(Protocol):
    """Reads the plan a person wrote, given the project's cap on tasks (raises PlanError)."""

    def __call__(self, *, max_tasks: int) -> Plan: ...


@dataclass(frozen=True, slots=True)
class Registered:
    project: Project
    created: bool  # False: the repository was already a project


@dataclass(frozen=True, slots=True)
class GoalRequest:
    """A new goal as a person asks for it. ``explore``: best-of-N attempts per task (0: the
    project's blitz.toml); ``portfolio``: backend specs ("claude-code:sonnet", "codex") the
    attempts are spread over; ``plan``: a plan the person wrote, instead of planning;
    ``follows``: an earlier goal to continue, on its branch and pull request (blitz.followups)."""

    title: str
    backend: str = ""
    max_parallel: int = 0
    allow_dirty: bool = False
    explore: int = 0
    explore_mode: str = ""
    portfolio: Sequence[str] = ()
    plan: PlanSource | None = None
    follows: str = ""


@dataclass(frozen=True, slots=True)
class Submitted:
    project: Project
    goal: Goal


# -- lookups ----------------------------------------------------------------------------------


def goal_of(store: Store, key: str) -> Goal:
    goal = store.get_goal(key)
    if goal is None:
        raise NotFound(f"no goal {key!r}")
    return goal


def project_of(store: Store, key: str) -> Project:
    project = store.get_project(key)
    if project is None:
        raise NotFound(f"no project {key!r}")
    return project


# -- projects ---------------------------------------------------------------------------------


async def register(app: App, path: Path, *, name: str = "") -> Registered:
    """The project for the repository at ``path``, registering it on first use.

    A blitz.toml in the repository is the source of truth for its settings and is re-read
    every time; without one, gates are detected when the project is first registered.
    """
    path = path.expanduser().resolve()
    if not path.exists():
        raise RepositoryError(f"{path} does not exist")
    store = app.store
    ws = app.workspace(path)
    cfg = app.repo_config(path)
    existing = store.find_project_by_path(str(path))
    if existing is not None:
        project = apply_config(existing, cfg) if cfg else existing
    else:
        branch = (cfg.project.base_branch if cfg else "") or await ws.start_branch()
        # Never register what cannot be used (a plain directory, a repo with no commits).
        await ws.check(base_branch=branch, allow_dirty=True)
        if cfg is None:
            gates, _notes = detect_gates(path)
            project = Project(
                id=new_id("p"),
                name=_unique_name(store, name or path.name),
                path=str(path),
                base_branch=branch,
                remote="origin",
                gates=gates,
            )
        else:
            project = apply_config(
                Project(id=new_id("p"), name="", path=str(path), base_branch=branch), cfg
            )
            project = dataclasses.replace(
                project, name=_unique_name(store, name or cfg.project.name or path.name)
            )
        _journal(store, project, EventKind.PROJECT_ADDED, f"{project.name}: {path}", app.clock)
    if existing is None or project != existing:
        store.write(project)
    store.flush_sync()
    return Registered(project=project, created=existing is None)


async def pause(app: App, engine: Engine | None, key: str, reason: str) -> Project:
    """Pause a project: no new goals; its queued tasks wait, running ones finish."""
    store = app.store
    project = project_of(store, key)
    if engine is not None:
        engine.pause_project(project.id, reason)
    else:
        _set_paused(store, project, True, reason)
    await store.flush()
    return project_of(store, project.id)


async def resume(app: App, engine: Engine | None, key: str) -> Project:
    """Resume a paused project: its tasks start again."""
    store = app.store
    project = project_of(store, key)
    if engine is not None:
        engine.resume_project(project.id)
    else:
        _set_paused(store, project, False, "")
    await store.flush()
    return project_of(store, project.id)


def _set_paused(store: Store, project: Project, paused: bool, reason: str) -> None:
    updated = dataclasses.replace(project, paused=paused, pause_reason=reason if paused else "")
    kind = EventKind.PROJECT_PAUSED if paused else EventKind.PROJECT_RESUMED
    _journal(store, updated, kind, reason)


async def remove(app: App, engine: Engine | None, key: str) -> Project:
    """Forget a project and its goals' records (the repository itself is not touched); refused
    while it has unfinished goals."""
    store = app.store
    project = project_of(store, key)
    live = [g.id for g in store.list_goals(project_id=project.id) if g.state not in GOAL_DONE]
    if engine is not None:
        live += [
            goal_id
            for goal_id, run in engine.runs.items()
            if run.project.id == project.id and goal_id not in live
        ]
    if live:
        raise Conflict(
            f"project {project.name} has unfinished goals ({', '.join(live)}); cancel them first"
        )
    await asyncio.to_thread(store.delete_project, project.id)
    return project


# -- goals ------------------------------------------------------------------------------------


async def new_goal(
    app: App, engine: Engine, repo: Path, request: GoalRequest, *, no_planner_hint: str = ""
) -> Submitted:
    """Take on a new goal for the repository at ``repo`` (re-reading its blitz.toml) and submit
    it to ``engine``: planned by the project's planner, or ``request.plan`` as written.
    ``no_planner_hint`` follows the error when there is neither."""
    project = (await register(app, repo)).project
    if project.paused:
        raise ProjectPaused(project)
    plan = None
    if request.plan is not None:
        plan = request.plan(max_tasks=app.limits(project).max_tasks)
    elif not app.has_planner(project):
        raise ConfigError(NO_MODEL + (f"\n{no_planner_hint}" if no_planner_hint else ""))
    goal = await create_goal(app, project, request)
    engine.submit(project, goal, plan=plan)
    await app.store.flush()
    return Submitted(project=project, goal=goal)


async def create_goal(app: App, project: Project, request: GoalRequest) -> Goal:
    """Check the repository and write a new goal (state PLANNING) for ``project``."""
    title = request.title
    if not title.strip():
        raise UserError("the goal is empty: say what you want done")
    if project.paused:
        raise ProjectPaused(project)
    ws = app.workspace(Path(project.path))
    await ws.check(base_branch=project.base_branch, allow_dirty=True)
    start = await followups.start(app.store, ws, project, request.follows)
    if not request.allow_dirty:
        dirty = [p for p in await ws.dirty_paths() if p not in IGNORED_DIRTY]
        if dirty:
            raise DirtyCheckout(project.path, dirty)
    backend = request.backend or app.default_backend(project)
    cfg = app.config_for(project)
    options = app.backend_options(project)
    check_name(backend, options.commands)
    if backend == "embedded" and not app.model_name("agent", project):
        raise ConfigError(NO_MODEL)
    explore = request.explore or (cfg.explore.attempts if cfg else 1)
    explore_mode = request.explore_mode or (cfg.explore.mode if cfg else "all")
    portfolio = tuple(p.strip() for p in request.portfolio if p.strip()) or (
        tuple(cfg.explore.portfolio) if cfg else ()
    )
    check_exploration(explore, explore_mode)
    # Build the planner and the backends once now, so a missing key or a bad model name stops
    # here, before the goal is written, not later with the goal left for `blitz resume`. The
    # backends are checked able to run here (key, CLI, server) only when attempts run here: on a
    # cluster each worker offers the backends it can run, and a task no worker can take waits.
    app.planner(project)
    here = executors.runs_here(app.executor)
    if here:
        await require(backend, options)
    for spec in portfolio:  # each portfolio backend too: its key, CLI or server
        name, _, model = spec.partition(":")
        app.backend_for(project, name, model)
        if here:
            await require(name, app.options_for(project, name, model))
    goal_id = new_id("g")
    goal = Goal(
        id=goal_id,
        project_id=project.id,
        title=title.strip(),
        branch=start.branch or branch_name(title, goal_id),
        base_branch=start.base_branch or project.base_branch,
        base_sha=start.base_sha,
        follows=start.follows,
        backend=backend,
        created_at=app.clock.time(),
        max_parallel=request.max_parallel,
        explore=explore if explore > 1 else 0,
        explore_mode=explore_mode,
        portfolio=portfolio if explore > 1 else (),
        models=app.run_models(project),
    )
    _journal(app.store, goal, EventKind.GOAL_CREATED, goal.title, app.clock)
    await app.store.flush()
    return goal


async def cancel(app: App, engine: Engine | None, key: str, reason: str) -> Done:
    """Cancel a goal: queued tasks are dropped, running agents are stopped."""
    store = app.store
    goal = goal_of(store, key)
    if engine is not None:
        return await steering.steer(
            store, engine, goal, "cancel", lambda: _cancel(engine, goal, reason), command="cancel"
        )
    if goal.state in GOAL_DONE:
        raise Conflict(f"goal {goal.id} already ended ({goal.state.value})")
    me = runner_id()
    if goal.id not in store.held():  # else an engine of this process drives it
        lease = await asyncio.to_thread(store.claim, goal.id, me, app.settings.lease_seconds)
        if lease.owner == me:
            # Nobody drives it: cancel it in the store directly, holding it meanwhile.
            try:
                return await _cancel_in_store(store, goal_of(store, goal.id), reason)
            finally:
                await store.flush()
                await asyncio.to_thread(store.release, goal.id)
    await asyncio.to_thread(store.add_command, goal.id, "cancel")
    return Done(goal=goal, applied=Applied.QUEUED)


async def _cancel_in_store(store: Store, goal: Goal, reason: str) -> Done:
    if goal.state in GOAL_DONE:
        raise Conflict(f"goal {goal.id} already ended ({goal.state.value})")
    if goal.state is GoalState.FINISHING:
        raise Conflict(
            f"goal {goal.id} is publishing its pull request: its tasks are done, too late to "
            "cancel it"
        )
    for t in store.load_tasks(goal.id):
        if t.state not in (
            TaskState.SUCCEEDED,
            TaskState.SKIPPED,
            TaskState.REPLACED,
            TaskState.CANCELLED,
        ):
            store.write(t.evolve(state=TaskState.CANCELLED, reason="cancelled"))
    done = goal.evolve(state=GoalState.CANCELLED, error=reason, finished_at=time.time())
    _journal(store, done, EventKind.GOAL_CANCELLED, reason)
    await store.flush()
    return Done(goal=done, applied=Applied.STORE)


def _cancel(engine: Engine, goal: Goal, reason: str) -> None:
    if not engine.cancel(goal.id, reason):
        raise UserError(f"goal {goal.id} is already being cancelled")


async def approve(
    app: App, engine: Engine | None, key: str, plan: PlanSource | None = None
) -> Done:
    """Run a goal whose plan waits for approval, as planned or with ``plan`` instead (which
    needs an engine: an edited plan is not stored for another process)."""
    store = app.store
    goal = goal_of(store, key)
    edited = None
    if plan is not None:
        project = store.get_project(goal.project_id)
        edited = plan(max_tasks=app.limits(project).max_tasks if project else 200)
    _check_waiting(goal)
    if engine is None:
        if edited is not None:
            raise UserError(
                "an edited plan is given to the process that drives the goal, and none is "
                "reachable from here: approve the plan as it is, or send the edited plan to the "
                "daemon"
            )
        steering.require_driver(store, goal)
        return await steering.queue(store, goal, "approve")
    command = "approve" if edited is None else None
    return await steering.steer(
        store, engine, goal, "approve", lambda: engine.approve(goal.id, edited), command=command
    )


async def reject(app: App, engine: Engine | None, key: str, reason: str = "") -> Done:
    """End a goal whose plan waits for approval (cancelled)."""
    store = app.store
    goal = goal_of(store, key)
    _check_waiting(goal)
    command = f"reject:{reason}" if reason else "reject"
    if engine is None:
        return await steering.queue(store, goal, command)
    return await steering.steer(
        store, engine, goal, "reject", lambda: engine.reject(goal.id, reason), command=command
    )


async def retry(app: App, engine: Engine | None, key: str, task: str) -> Done:
    """Another attempt at a failed, skipped or cancelled task (reopens an ended goal)."""
    return await _on_task(app, engine, key, task, "retry")


async def skip(app: App, engine: Engine | None, key: str, task: str) -> Done:
    """Drop a task; the tasks after it go on without it (reopens an ended goal)."""
    return await _on_task(app, engine, key, task, "skip")


async def _on_task(app: App, engine: Engine | None, key: str, task: str, verb: str) -> Done:
    store = app.store
    goal = _goal_with_task(store, key, task)
    followups.check_branch_free(store, goal)  # a follow-up works on its branch
    command = f"{verb}:{task}"
    if engine is None:
        return await steering.queue(store, goal, command)
    method = engine.retry_task if verb == "retry" else engine.skip_task
    return await steering.steer(
        store, engine, goal, verb, lambda: method(goal.id, task), command=command, reopens=True
    )


def _goal_with_task(store: Store, key: str, task: str) -> Goal:
    goal = goal_of(store, key)
    if task not in {t.id for t in store.load_tasks(goal.id)}:
        raise NotFound(f"goal {goal.id} has no task {task!r}")
    return goal


def _check_waiting(goal: Goal) -> None:
    if goal.state is not GoalState.AWAITING_APPROVAL:
        raise Conflict(f"goal {goal.id} is {goal.state.value}, not awaiting approval")


def _journal(
    store: Store, record: Project | Goal, kind: EventKind, message: str, clock: Clock | None = None
) -> None:
    """Write ``record`` and the event saying what happened to it, together (stamped by
    ``clock``, else by the store)."""
    goal_id, project_id = (
        (record.id, record.project_id) if isinstance(record, Goal) else ("", record.id)
    )
    event = Event(
        kind=kind,
        goal_id=goal_id,
        project_id=project_id,
        message=message,
        ts=clock.time() if clock is not None else 0.0,
    )
    store.write(record, events=[event])


# -- what registering reads -------------------------------------------------------------------


def _unique_name(store: Store, name: str) -> str:
    taken = {p.name for p in store.list_projects()}
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate
