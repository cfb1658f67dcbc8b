"""What a person may ask of the engine while it runs: approve or reject a plan, retry or skip a
task, resume a paused project, and shut down gently.

The engine's methods of the same names call these; they live here to keep the loop's module
about the loop. Each checks what it is asked against the goal's
state and raises :class:`UserError` with a message for the person when it does not apply. A
finished goal can be reopened: retrying or skipping one of its tasks puts it back to running,
and everything that was skipped only because that task failed goes back to waiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from blitz.dag import Dag
from blitz.domain import GoalState, Plan, Task, TaskState
from blitz.errors import UserError
from blitz.events import Event, EventKind
from blitz.planner import check_plan

if TYPE_CHECKING:
    from blitz.conductor import Engine, GoalRun

_RETRYABLE = (TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED)
_SKIPPABLE = (TaskState.PENDING, TaskState.READY, TaskState.FAILED, TaskState.CANCELLED)
_REOPENABLE = (GoalState.FAILED, GoalState.CANCELLED)
_REQUESTS: set[asyncio.Task[None]] = set()  # stored retry/skip requests being applied


# -- plan approval ----------------------------------------------------------------------


def approve(engine: Engine, goal_id: str, plan: Plan | None = None) -> None:
    """Let a goal that waits for approval run; ``plan``, if given, replaces its plan."""
    run = _waiting(engine, goal_id)
    if plan is not None:
        _replace_plan(engine, run, plan)
    run.goal = run.goal.evolve(state=GoalState.RUNNING)
    engine.store.write(
        run.goal,
        events=[
            engine._event(run, EventKind.PLAN_APPROVED, f"{len(run.tasks)} tasks approved"),
            engine._event(
                run, EventKind.GOAL_STARTED, f"running on {run.goal.branch or 'no branch'}"
            ),
        ],
    )
    engine._feed(run)
    engine._settle(run)
    engine._wake()


def reject(engine: Engine, goal_id: str, reason: str = "") -> None:
    """Cancel a goal whose plan waits for approval."""
    run = _waiting(engine, goal_id)
    why = f"plan rejected: {reason}" if reason else "plan rejected"
    engine._emit(run, EventKind.PLAN_REJECTED, why)
    engine.cancel(goal_id, why)
    engine._wake()


def _waiting(engine: Engine, goal_id: str) -> GoalRun:
    run = engine.runs.get(goal_id)
    if run is None:
        goal = engine.store.get_goal(goal_id)
        if goal is None:
            raise UserError(f"no goal {goal_id}")
        raise UserError(f"goal {goal_id} is {goal.state}, not awaiting approval")
    if run.goal.state is not GoalState.AWAITING_APPROVAL:
        raise UserError(f"goal {goal_id} is {run.goal.state}, not awaiting approval")
    return run


def _replace_plan(engine: Engine, run: GoalRun, plan: Plan) -> None:
    from blitz.conductor import _task

    limits = run.services.limits
    check_plan(plan.tasks, max_tasks=limits.max_tasks)
    tasks = [
        _task(run.goal.id, spec, origin="plan", position=i) for i, spec in enumerate(plan.tasks)
    ]
    run.dag = Dag(tasks, max_nodes=max(limits.max_tasks, len(tasks)), check=False)
    run.tasks = {t.id: t for t in tasks}
    if plan.summary:
        run.goal = run.goal.evolve(summary=plan.summary)
    engine.store.replace_plan(run.goal.id, tasks)
    engine.store.write(
        run.goal,
        events=[
            engine._event(
                run,
                EventKind.PLAN_EDITED,
                f"plan edited: {len(tasks)} tasks",
                data={"tasks": [t.id for t in tasks]},
            )
        ],
    )


# -- tasks ------------------------------------------------------------------------------


async def retry_task(engine: Engine, goal_id: str, task_id: str) -> None:
    """Give a failed, skipped or cancelled task another attempt (reopening its goal if the
    goal has ended)."""
    run = engine.runs.get(goal_id)
    if run is None:
        await _reopen(engine, goal_id, task_id, retry=True)
        return
    task = _task_of(engine, run, task_id)
    if task.state is not TaskState.FAILED or run.dag is None:
        raise UserError(f"task {task_id} is {task.state}; only a failed task can be retried")
    run.dag.retry(task_id)
    task = task.evolve(state=TaskState.READY, reason="", crashes=0, recoveries=0)
    engine._set_task(run, task, EventKind.TASK_RETRIED, "retried by a person")
    engine._feed(run)
    engine._wake()


async def skip_task(engine: Engine, goal_id: str, task_id: str) -> None:
    """Drop a task that has not succeeded; the tasks after it go on without it."""
    run = engine.runs.get(goal_id)
    if run is None:
        await _reopen(engine, goal_id, task_id, retry=False)
        return
    task = _task_of(engine, run, task_id)
    if task.state not in _SKIPPABLE or run.dag is None or task.state is TaskState.CANCELLED:
        raise UserError(
            f"task {task_id} is {task.state}; only a pending, ready or failed task can be skipped"
        )
    if task.state is TaskState.READY:
        engine.router.withdraw(goal_id, task_id)
    run.dag.skip(task_id)
    task = task.evolve(state=TaskState.SKIPPED, reason="skipped by a person")
    engine._set_task(run, task, EventKind.TASK_SKIPPED, task.reason)
    engine._feed(run)
    engine._settle(run)
    engine._wake()


def _task_of(engine: Engine, run: GoalRun, task_id: str) -> Task:
    if run.goal.state is GoalState.AWAITING_APPROVAL:
        raise UserError(
            f"goal {run.goal.id} waits for its plan to be approved: approve it with an edited "
            "plan instead"
        )
    task = run.tasks.get(task_id)
    if task is None:
        raise UserError(f"goal {run.goal.id} has no task {task_id}")
    return task


async def _reopen(engine: Engine, goal_id: str, task_id: str, *, retry: bool) -> None:
    goal = engine.store.get_goal(goal_id)
    if goal is None:
        raise UserError(f"no goal {goal_id}")
    tasks = {t.id: t for t in engine.store.load_tasks(goal_id)}
    task = tasks.get(task_id)
    if task is None:
        raise UserError(f"goal {goal_id} has no task {task_id}")
    if goal.state not in _REOPENABLE:
        raise UserError(
            f"goal {goal_id} is {goal.state}: it is not being run by this process "
            "(start it with `blitz resume` or the daemon first)"
        )
    allowed = _RETRYABLE if retry else _SKIPPABLE
    if task.state not in allowed:
        verb = "retried" if retry else "skipped"
        raise UserError(f"task {task_id} is {task.state}; it cannot be {verb}")
    changed: list[Task] = []
    if retry:
        changed.append(task.evolve(state=TaskState.PENDING, reason="", crashes=0, recoveries=0))
    else:
        changed.append(task.evolve(state=TaskState.SKIPPED, reason="skipped by a person"))
    # What was only skipped or cancelled because the goal stopped gets its chance again.
    for other in tasks.values():
        if other.id != task_id and other.state in (TaskState.SKIPPED, TaskState.CANCELLED):
            if other.state is TaskState.SKIPPED and not _skipped_by_blitz(other):
                continue
            changed.append(other.evolve(state=TaskState.PENDING, reason=""))
    reopened = goal.evolve(state=GoalState.RUNNING, error="", finished_at=0.0)
    note = f"reopened: task {task_id} {'retried' if retry else 'skipped'} by a person"
    engine.store.write(
        reopened,
        *changed,
        events=[
            Event(
                kind=EventKind.GOAL_REOPENED,
                goal_id=goal_id,
                project_id=goal.project_id,
                task_id=task_id,
                message=note,
                ts=engine.clock.time(),
            )
        ],
    )
    await engine.store.flush()
    engine.finished.pop(goal_id, None)
    await engine.resume(reopened)
    engine._wake()


# -- projects ---------------------------------------------------------------------------


def resume_project(engine: Engine, project_id: str) -> None:
    """Let a paused project's tasks start again."""
    stored = engine.store.get_project(project_id)
    if stored is None:
        raise UserError(f"no project {project_id}")
    engine._paused.pop(project_id, None)
    engine.router.resume_project(project_id)
    resumed = dataclasses.replace(stored, paused=False, pause_reason="")
    for run in engine.runs.values():
        if run.project.id == project_id:
            run.project = resumed
    if stored.paused:
        engine.store.write(
            resumed,
            events=[
                Event(
                    kind=EventKind.PROJECT_RESUMED,
                    project_id=project_id,
                    message=f"{stored.name} resumed",
                    ts=engine.clock.time(),
                )
            ],
        )
    engine._wake()


# -- shutdown ---------------------------------------------------------------------------


async def drain(engine: Engine, grace: float) -> None:
    """Stop starting work, let running attempts finish for up to ``grace`` seconds, then
    interrupt the rest (they are re-queued when the goal is resumed) and stop the loop."""
    engine._draining = True
    engine._wake()
    deadline = asyncio.get_running_loop().time() + grace
    while _attempts_running(engine) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    for run in list(engine.runs.values()):
        for job in list(run.attempt_jobs.values()):
            job.cancel()
    for _ in range(200):  # the interrupted attempts remove their worktrees and report
        if not _attempts_running(engine):
            break
        await asyncio.sleep(0.025)
    await asyncio.sleep(0)
    engine.stop()


def _attempts_running(engine: Engine) -> bool:
    return any(run.attempt_jobs for run in engine.runs.values())


# -- commands from other processes --------------------------------------------------------


def command(engine: Engine, goal_id: str, kind: str) -> None:
    """A request stored by another process (``blitz cancel``, ``blitz approve``)."""
    verb, _, task_id = kind.partition(":")
    try:
        if verb == "cancel":
            engine.cancel(goal_id, "cancelled by `blitz cancel`")
        elif verb == "approve":
            approve(engine, goal_id)
        elif verb == "reject":
            reject(engine, goal_id, task_id)
        elif verb in ("retry", "skip") and task_id:
            method = engine.retry_task if verb == "retry" else engine.skip_task
            job = asyncio.ensure_future(_refusing(engine, goal_id, kind, method(goal_id, task_id)))
            _REQUESTS.add(job)  # held until done: the loop keeps only weak references to tasks
            job.add_done_callback(_REQUESTS.discard)
        else:
            raise UserError(f"unknown command {kind!r}")
    except UserError as exc:
        _refused(engine, goal_id, kind, exc)


async def _refusing(
    engine: Engine, goal_id: str, kind: str, request: Coroutine[Any, Any, None]
) -> None:
    try:
        await request
    except UserError as exc:
        _refused(engine, goal_id, kind, exc)


def _refused(engine: Engine, goal_id: str, kind: str, exc: UserError) -> None:
    """Say in the goal's log that a stored request did not apply, and why."""
    goal = engine.store.get_goal(goal_id)
    engine.store.write(
        events=[
            Event(
                kind=EventKind.COMMAND_REFUSED,
                goal_id=goal_id,
                project_id=goal.project_id if goal else "",
                message=f"`{kind}` refused: {exc}",
                ts=engine.clock.time(),
            )
        ]
    )


def _skipped_by_blitz(task: Task) -> bool:
    from blitz.conductor import BLOCKED, OVER_BUDGET

    return task.reason.startswith((BLOCKED, OVER_BUDGET))
