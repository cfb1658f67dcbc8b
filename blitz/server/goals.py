"""Routes of goals, their tasks and attempts, and what a person may ask of a goal (cancel,
approve or reject its plan, retry or skip a task)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query

from blitz import git
from blitz.backends.registry import NO_MODEL
from blitz.conductor import runner_alive
from blitz.domain import GOAL_DONE, Attempt, Goal, GoalState, Plan
from blitz.errors import ConfigError, UserError
from blitz.events import Event, EventKind
from blitz.planner import parse_plan
from blitz.server.problems import conflict, not_found
from blitz.server.schemas import (
    ActionOut,
    ApproveIn,
    AttemptDetailOut,
    EventOut,
    GoalDetailOut,
    GoalIn,
    GoalOut,
    ReasonIn,
    TaskDetailOut,
    attempt_detail,
    event_data,
    goal_detail,
    goal_out,
    task_detail,
)

if TYPE_CHECKING:
    from blitz.conductor import Engine
    from blitz.server.daemon import Daemon

DIFF_CAP = 64 * 1024
"""Bytes of an attempt's diff answered (its end is kept)."""


def routes(router: APIRouter, daemon: Daemon) -> None:
    """Add the goal, task and attempt routes of docs/api.md (and the actions) to ``router``."""
    store = daemon.store
    app = daemon.app

    def goal_of(key: str) -> Goal:
        goal = store.get_goal(key)
        if goal is None:
            raise not_found(f"no goal {key!r}")
        return goal

    def detail(goal: Goal) -> GoalDetailOut:
        project = store.get_project(goal.project_id)
        return goal_detail(
            goal,
            project.name if project else "",
            store.load_tasks(goal.id),
            store.usage(goal.id) + goal.usage,
            store.load_recoveries(goal.id),
            driven_here=goal.id in daemon.engine.runs,
            attempts=store.load_attempts(goal.id),
        )

    @router.get("/api/goals", response_model=list[GoalOut])
    def list_goals(
        project: str | None = None,
        state: list[GoalState] | None = Query(None),
        limit: int = Query(200, ge=1, le=10_000),
    ) -> list[GoalOut]:
        """Goals, newest first."""
        project_id = None
        if project:
            found = store.get_project(project)
            if found is None:
                raise not_found(f"no project {project!r}")
            project_id = found.id
        names = {p.id: p.name for p in store.list_projects()}
        goals = store.list_goals(project_id=project_id, states=state or None)[:limit]
        return [
            goal_out(
                g, names.get(g.project_id, ""), store.load_tasks(g.id), store.usage(g.id) + g.usage
            )
            for g in goals
        ]

    @router.post("/api/goals", response_model=GoalDetailOut, status_code=201)
    async def submit_goal(body: GoalIn) -> GoalDetailOut:
        """Take on a new goal: planned by the project's planner, or ``plan`` as given."""
        daemon.check_open()
        stored = store.get_project(body.project)
        if stored is None:
            raise not_found(f"no project {body.project!r}")
        # Re-read blitz.toml, as `blitz run` does.
        project = await app.register(Path(stored.path))
        if project.paused:
            raise conflict(f"project paused: {project.pause_reason or 'by the user'}")
        plan = None
        if body.plan is not None:
            plan = parse_plan(body.plan.model_dump(), max_tasks=app.limits(project).max_tasks)
        elif not app.has_planner(project):
            raise ConfigError(NO_MODEL + "\nOr send the goal with a plan (docs/plan-format.md).")
        goal = await app.new_goal(
            project,
            body.title,
            backend=body.backend,
            max_parallel=body.max_parallel,
            allow_dirty=body.allow_dirty,
            explore=body.explore,
            explore_mode=body.explore_mode,
            portfolio=body.portfolio,
        )
        daemon.engine.submit(project, goal, plan=plan)
        await store.flush()
        return await asyncio.to_thread(detail, goal_of(goal.id))

    @router.get("/api/goals/{goal}", response_model=GoalDetailOut)
    def get_goal(goal: str) -> GoalDetailOut:
        return detail(goal_of(goal))

    @router.get("/api/goals/{goal}/events", response_model=list[EventOut])
    def goal_events(
        goal: str, after: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=1000)
    ) -> list[dict[str, Any]]:
        """The goal's event log, oldest first."""
        found = goal_of(goal)
        return [event_data(e) for e in store.events(goal_id=found.id, after=after, limit=limit)]

    @router.get("/api/goals/{goal}/tasks/{task}", response_model=TaskDetailOut)
    def get_task(goal: str, task: str) -> TaskDetailOut:
        found = goal_of(goal)
        tasks = {t.id: t for t in store.load_tasks(found.id)}
        if task not in tasks:
            raise not_found(f"goal {found.id} has no task {task!r}")
        return task_detail(
            tasks[task], store.load_attempts(found.id, task), store.load_recoveries(found.id)
        )

    @router.get("/api/goals/{goal}/attempts/{attempt}", response_model=AttemptDetailOut)
    async def get_attempt(goal: str, attempt: str) -> AttemptDetailOut:
        def load() -> tuple[Goal, Attempt, list[Event]]:
            found = goal_of(goal)
            match = [a for a in store.load_attempts(found.id) if a.id == attempt]
            if not match:
                raise not_found(f"goal {found.id} has no attempt {attempt!r}")
            return found, match[0], _transcript(daemon, found.id, attempt)

        found, record, transcript = await asyncio.to_thread(load)
        if not record.diff and record.commit:
            project = store.get_project(found.project_id)
            if project is not None:
                record = record.evolve(diff=await _commit_diff(Path(project.path), record))
        return attempt_detail(record, transcript)

    # -- actions ---------------------------------------------------------------------------

    async def act(
        key: str,
        action: str,
        command: str | None,
        apply: Callable[[Engine, Goal], Awaitable[None] | None],
        *,
        reopens: bool = False,
    ) -> ActionOut:
        """Apply ``apply`` in this daemon's engine, taking the goal on if nobody drives it;
        or queue ``command`` for the process that drives it."""
        daemon.check_open()
        goal = goal_of(key)
        engine = daemon.engine
        ended = goal.state in GOAL_DONE or goal.id in engine.finished
        if ended and (not reopens or goal.state is GoalState.SUCCEEDED):
            raise conflict(f"goal {goal.id} already ended ({goal.state.value})")
        if not ended and goal.id not in engine.runs:
            if runner_alive(goal.runner):
                if command is None:
                    raise conflict(
                        f"goal {goal.id} is driven by another process ({goal.runner}); "
                        f"it can only {action} it there"
                    )
                await asyncio.to_thread(store.add_command, goal.id, command)
                return ActionOut(goal_id=goal.id, action=action, applied="queued")
            await engine.resume(goal)  # nobody drives it: take it on
        try:
            pending = apply(engine, goal)
            if pending is not None:
                await pending
        except UserError as exc:
            raise conflict(str(exc)) from exc
        await store.flush()
        return ActionOut(goal_id=goal.id, action=action, applied="engine")

    @router.post("/api/goals/{goal}/cancel", response_model=ActionOut, status_code=202)
    async def cancel_goal(goal: str, body: ReasonIn | None = None) -> ActionOut:
        reason = (body.reason if body else "") or "cancelled from the API"

        def apply(engine: Engine, g: Goal) -> None:
            if not engine.cancel(g.id, reason):
                raise UserError(f"goal {g.id} is already being cancelled")

        return await act(goal, "cancel", "cancel", apply)

    @router.post("/api/goals/{goal}/approve", response_model=ActionOut, status_code=202)
    async def approve_goal(goal: str, body: ApproveIn | None = None) -> ActionOut:
        """Run a goal that awaits approval, as planned or with the edited plan in the body."""
        found = goal_of(goal)
        plan: Plan | None = None
        if body is not None and body.tasks is not None:
            project = store.get_project(found.project_id)
            limit = app.limits(project).max_tasks if project else 200
            plan = parse_plan(body.model_dump(exclude_none=True), max_tasks=limit)
        if found.state is not GoalState.AWAITING_APPROVAL:
            raise conflict(f"goal {found.id} is {found.state.value}, not awaiting approval")

        def apply(engine: Engine, g: Goal) -> None:
            engine.approve(g.id, plan)

        return await act(goal, "approve", "approve" if plan is None else None, apply)

    @router.post("/api/goals/{goal}/reject", response_model=ActionOut, status_code=202)
    async def reject_goal(goal: str, body: ReasonIn | None = None) -> ActionOut:
        """End a goal that awaits approval (cancelled)."""
        found = goal_of(goal)
        if found.state is not GoalState.AWAITING_APPROVAL:
            raise conflict(f"goal {found.id} is {found.state.value}, not awaiting approval")
        reason = body.reason if body else ""

        def apply(engine: Engine, g: Goal) -> None:
            engine.reject(g.id, reason)

        command = f"reject:{reason}" if reason else "reject"
        return await act(goal, "reject", command, apply)

    def task_action(verb: str) -> Callable[[str, str], Awaitable[ActionOut]]:
        async def handle(goal: str, task: str) -> ActionOut:
            found = goal_of(goal)
            if task not in {t.id for t in store.load_tasks(found.id)}:
                raise not_found(f"goal {found.id} has no task {task!r}")

            async def apply(engine: Engine, g: Goal) -> None:
                method = engine.retry_task if verb == "retry" else engine.skip_task
                await method(g.id, task)

            return await act(goal, verb, f"{verb}:{task}", apply, reopens=True)

        return handle

    router.add_api_route(
        "/api/goals/{goal}/tasks/{task}/retry",
        task_action("retry"),
        methods=["POST"],
        response_model=ActionOut,
        status_code=202,
        summary="Retry a failed, skipped or cancelled task (reopens an ended goal)",
    )
    router.add_api_route(
        "/api/goals/{goal}/tasks/{task}/skip",
        task_action("skip"),
        methods=["POST"],
        response_model=ActionOut,
        status_code=202,
        summary="Skip a task; the tasks after it go on without it",
    )


async def _commit_diff(repo: Path, attempt: Attempt) -> str:
    """The change an attempt committed, from git (the store keeps only its stat)."""
    base = attempt.base_sha or f"{attempt.commit}^"
    return await git.commit_diff(repo, base, attempt.commit, cap=DIFF_CAP)


def _transcript(daemon: Daemon, goal_id: str, attempt_id: str) -> list[Event]:
    """The attempt's agent.message events, oldest first."""
    found: list[Event] = []
    after = 0
    while batch := daemon.store.events(goal_id=goal_id, after=after, limit=1000):
        found += [
            e for e in batch if e.attempt_id == attempt_id and e.kind is EventKind.AGENT_MESSAGE
        ]
        after = batch[-1].id
    return found
