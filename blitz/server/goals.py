"""Routes of goals, their tasks and attempts, and what a person may ask of a goal (cancel,
approve or reject its plan, retry or skip a task, publish it again)."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Response

from blitz import actions, git
from blitz import rerun as rerunning
from blitz.domain import Attempt, Goal, GoalState, Project
from blitz.events import Event, EventKind
from blitz.planner import parse_plan, parse_plan_text
from blitz.publish import publish_again
from blitz.server import problems
from blitz.server.inputs import ApproveIn, GoalIn, ReasonIn, RerunIn
from blitz.server.problems import not_found
from blitz.server.schemas import (
    ActionOut,
    AttemptDetailOut,
    EventOut,
    GoalDetailOut,
    GoalOut,
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

TOTAL_HEADER = "X-Total-Count"
"""The header of the goals list saying how many goals match, on every page."""
TOTAL_DOC = {"description": "How many goals match, on every page.", "schema": {"type": "integer"}}

DIFF_CAP = 64 * 1024
"""Bytes of an attempt's diff answered (its end is kept)."""


def routes(router: APIRouter, host: Host) -> None:
    """Add the goal, task and attempt routes of docs/api.md (and the actions) to ``router``."""
    store = host.store
    app = host.app

    def goal_of(key: str) -> Goal:
        return actions.goal_of(store, key)

    def detail(goal: Goal) -> GoalDetailOut:
        project = store.get_project(goal.project_id)
        return goal_detail(
            goal,
            project.name if project else "",
            store.load_tasks(goal.id),
            store.usage(goal.id) + goal.usage,
            store.load_recoveries(goal.id),
            driven_here=goal.id in host.engine.runs,
            attempts=store.load_attempts(goal.id),
        )

    @router.get(
        "/api/goals",
        response_model=list[GoalOut],
        responses={200: {"headers": {TOTAL_HEADER: TOTAL_DOC}}},
    )
    def list_goals(
        response: Response,
        project: str | None = Query(None, description="Project id or name."),
        state: list[GoalState] | None = Query(None, description="Only goals in these states."),
        q: str = Query(
            "", max_length=200, description="Words all found in the title, id or branch."
        ),
        limit: int = Query(200, ge=1, le=10_000),
        offset: int = Query(0, ge=0, description="Goals of the match to pass over."),
    ) -> list[GoalOut]:
        """Goals, newest first, ``limit`` of them from ``offset``; the ``X-Total-Count``
        header says how many match in all."""
        project_id = None
        if project:
            found = store.get_project(project)
            if found is None:
                raise not_found(f"no project {project!r}")
            project_id = found.id
        query = GoalQuery(
            project_id=project_id,
            states=frozenset(state) if state else None,
            text=q,
            limit=limit,
            offset=offset,
        )
        names = {p.id: p.name for p in store.list_projects()}
        page = store.find_goals(query)
        response.headers[TOTAL_HEADER] = str(page.total)
        return [
            goal_out(
                g, names.get(g.project_id, ""), store.load_tasks(g.id), store.usage(g.id) + g.usage
            )
            for g in page.goals
        ]

    @router.post("/api/goals", response_model=GoalDetailOut, status_code=201)
    async def submit_goal(body: GoalIn) -> GoalDetailOut:
        """Take on a new goal: planned by the project's planner, or ``plan`` as given (the plan
        itself, or the text of a plan file: YAML or JSON)."""
        host.check_open()
        stored = actions.project_of(store, body.project)
        if body.plan is None:
            check_planner(stored)
        request = goal_request(body)
        with problems.in_api_terms():
            submitted = await actions.new_goal(app, host.engine, Path(stored.path), request)
        return await asyncio.to_thread(detail, goal_of(submitted.goal.id))

    def check_planner(project: Project) -> None:
        # Said here, in the API's terms, rather than by new_goal in the command line's.
        if not app.has_planner(project):
            raise problems.no_planner(project.name)

    @router.post(
        "/api/goals/{goal}/rerun",
        response_model=GoalDetailOut,
        status_code=201,
        summary="Run an ended goal again, as a new goal",
    )
    async def rerun_goal(goal: str, body: RerunIn | None = None) -> GoalDetailOut:
        """A new goal with the ended goal's project, title and settings, from its base branch as
        it is now: with the plan it ran, or planned afresh with ``replan``."""
        host.check_open()
        body = body or RerunIn()
        ended = rerunning.ended_goal(store, goal)
        # A goal that ended before its plan is planned again too.
        replan = body.replan or rerunning.plan_of(ended, store.load_tasks(ended.id)) is None
        if replan:
            check_planner(actions.project_of(store, ended.project_id))
        with problems.in_api_terms():
            submitted = await rerunning.rerun(
                app, host.engine, ended.id, replan=replan, allow_dirty=body.allow_dirty
            )
        return await asyncio.to_thread(detail, goal_of(submitted.goal.id))

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
            return found, match[0], _transcript(host, found.id, attempt)

        found, record, transcript = await asyncio.to_thread(load)
        if not record.diff and record.commit:
            project = store.get_project(found.project_id)
            if project is not None:
                record = record.evolve(diff=await _commit_diff(Path(project.path), record))
        return attempt_detail(record, transcript)

    # -- actions ---------------------------------------------------------------------------

    def answer(done: actions.Done, action: str) -> ActionOut:
        # With an engine an action is applied here or queued, never written to the store.
        queued = done.applied is actions.Applied.QUEUED
        return ActionOut(
            goal_id=done.goal.id, action=action, applied="queued" if queued else "engine"
        )

    @router.post("/api/goals/{goal}/cancel", response_model=ActionOut, status_code=202)
    async def cancel_goal(goal: str, body: ReasonIn | None = None) -> ActionOut:
        host.check_open()
        reason = (body.reason if body else "") or "cancelled from the API"
        return answer(await actions.cancel(app, host.engine, goal, reason), "cancel")

    @router.post("/api/goals/{goal}/approve", response_model=ActionOut, status_code=202)
    async def approve_goal(goal: str, body: ApproveIn | None = None) -> ActionOut:
        """Run a goal that awaits approval, as planned or with the edited plan in the body
        (the plan itself, or a plan file's text: YAML or JSON)."""
        host.check_open()
        plan = None
        if body is not None and body.plan is not None:
            if body.tasks is not None:
                both = "the edited plan is either `plan` (its text) or `tasks`, not both"
                raise problems.Problem(422, both, extra=problems.field_errors("plan", both))
            plan = partial(parse_plan_text, body.plan)
        elif body is not None and body.tasks is not None:
            plan = partial(parse_plan, body.model_dump(exclude_none=True))
        return answer(await actions.approve(app, host.engine, goal, plan), "approve")

    @router.post("/api/goals/{goal}/reject", response_model=ActionOut, status_code=202)
    async def reject_goal(goal: str, body: ReasonIn | None = None) -> ActionOut:
        """End a goal that awaits approval (cancelled)."""
        host.check_open()
        reason = body.reason if body else ""
        return answer(await actions.reject(app, host.engine, goal, reason), "reject")

    @router.post(
        "/api/goals/{goal}/publish",
        response_model=ActionOut,
        status_code=202,
        summary="Push a succeeded goal's branch and open its pull request again",
    )
    async def publish_goal(goal: str) -> ActionOut:
        host.check_open()
        found = await publish_again(app, host.engine, goal)
        return ActionOut(goal_id=found.id, action="publish", applied="engine")

    @router.post(
        "/api/goals/{goal}/tasks/{task}/retry",
        response_model=ActionOut,
        status_code=202,
        summary="Retry a failed, skipped or cancelled task (reopens an ended goal)",
    )
    async def retry_task(goal: str, task: str) -> ActionOut:
        host.check_open()
        return answer(await actions.retry(app, host.engine, goal, task), "retry")

    @router.post(
        "/api/goals/{goal}/tasks/{task}/skip",
        response_model=ActionOut,
        status_code=202,
        summary="Skip a task; the tasks after it go on without it",
    )
    async def skip_task(goal: str, task: str) -> ActionOut:
        host.check_open()
        return answer(await actions.skip(app, host.engine, goal, task), "skip")


async def _commit_diff(repo: Path, attempt: Attempt) -> str:
    """The change an attempt committed, from git (the store keeps only its stat)."""
    base = attempt.base_sha or f"{attempt.commit}^"
    return await git.commit_diff(repo, base, attempt.commit, cap=DIFF_CAP)


def _transcript(host: Host, goal_id: str, attempt_id: str) -> list[Event]:
    """The attempt's agent.message events, oldest first."""
    found: list[Event] = []
    after = 0
    while batch := host.store.events(goal_id=goal_id, after=after, limit=1000):
        found += [
            e for e in batch if e.attempt_id == attempt_id and e.kind is EventKind.AGENT_MESSAGE
        ]
        after = batch[-1].id
    return found


def goal_request(body: GoalIn) -> actions.GoalRequest:
    """The goal ``body`` asks for, its plan (if given: the plan itself, or a plan file's text)
    parsed when the goal is made; the API and MCP's ``submit_goal`` both take goals this way."""
    plan: actions.PlanSource | None = None
    if isinstance(body.plan, str):
        plan = partial(parse_plan_text, body.plan)
    elif body.plan is not None:
        plan = partial(parse_plan, body.plan.model_dump())
    return actions.GoalRequest(
        title=body.title,
        backend=body.backend,
        max_parallel=body.max_parallel,
        allow_dirty=body.allow_dirty,
        explore=body.explore,
        explore_mode=body.explore_mode,
        portfolio=body.portfolio,
        plan=plan,
        follows=body.follows,
    )
