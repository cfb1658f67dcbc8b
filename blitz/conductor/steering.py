"""What a person may ask of the engine while it runs, and when it applies: approve or reject a
plan, retry or skip a task, and the requests other processes store (``blitz cancel``).

The engine's public methods of the same names call these with a goal's run; nothing here
knows the engine (stored requests reach it through :class:`Steerable`, its public methods).
Each raises :class:`UserError` with a message for the person when a request does not apply. A
finished goal can be reopened: retrying or skipping one of its tasks puts it back to running,
and everything that was skipped only because that task failed goes back to waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

from blitz.conductor.goal import GoalRun
from blitz.conductor.journal import Journal
from blitz.conductor.outcomes import BLOCKED, OVER_BUDGET
from blitz.domain import Goal, GoalState, Plan, Project, Task, TaskState
from blitz.errors import UserError
from blitz.events import EventKind
from blitz.store.base import Store

_RETRYABLE = (TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED)
_SKIPPABLE = (TaskState.PENDING, TaskState.READY, TaskState.FAILED, TaskState.CANCELLED)
_REOPENABLE = (GoalState.FAILED, GoalState.CANCELLED)
_REQUESTS: set[asyncio.Task[None]] = set()  # stored retry/skip requests being applied


class Steerable(Protocol):
    """The engine's public methods that stored requests call."""

    def cancel(self, goal_id: str, reason: str = ...) -> bool: ...

    def approve(self, goal_id: str, plan: Plan | None = None) -> None: ...

    def reject(self, goal_id: str, reason: str = "") -> None: ...

    async def retry_task(self, goal_id: str, task_id: str) -> None: ...

    async def skip_task(self, goal_id: str, task_id: str) -> None: ...


def waiting(runs: Mapping[str, GoalRun], journal: Journal, goal_id: str) -> GoalRun:
    """The goal, which must wait for its plan's approval."""
    run = runs.get(goal_id)
    if run is None:
        goal = journal.store.get_goal(goal_id)
        if goal is None:
            raise UserError(f"no goal {goal_id}")
        raise UserError(f"goal {goal_id} is {goal.state}, not awaiting approval")
    if run.goal.state is not GoalState.AWAITING_APPROVAL:
        raise UserError(f"goal {goal_id} is {run.goal.state}, not awaiting approval")
    return run


def retry(run: GoalRun, task_id: str) -> None:
    """Give a failed task another attempt (with fresh crash and recovery counts)."""
    task = _task_of(run, task_id)
    if task.state is not TaskState.FAILED or run.dag is None:
        raise UserError(f"task {task_id} is {task.state}; only a failed task can be retried")
    run.dag.retry(task_id)
    task = task.evolve(state=TaskState.READY, reason="", crashes=0, recoveries=0)
    run.set_task(task, EventKind.TASK_RETRIED, "retried by a person")


def skip(run: GoalRun, task_id: str) -> bool:
    """Drop a task that has not started or has failed; True if it was queued (the caller
    takes it off the router's queue)."""
    task = _task_of(run, task_id)
    if task.state not in _SKIPPABLE or run.dag is None or task.state is TaskState.CANCELLED:
        raise UserError(
            f"task {task_id} is {task.state}; only a pending, ready or failed task can be skipped"
        )
    run.dag.skip(task_id)
    run.set_task(
        task.evolve(state=TaskState.SKIPPED, reason="skipped by a person"), EventKind.TASK_SKIPPED
    )
    return task.state is TaskState.READY


def _task_of(run: GoalRun, task_id: str) -> Task:
    if run.goal.state is GoalState.AWAITING_APPROVAL:
        raise UserError(
            f"goal {run.goal.id} waits for its plan to be approved: approve it with an edited "
            "plan instead"
        )
    task = run.tasks.get(task_id)
    if task is None:
        raise UserError(f"goal {run.goal.id} has no task {task_id}")
    return task


def reopen(journal: Journal, goal_id: str, task_id: str, *, retry: bool) -> Goal:
    """Reopen an ended goal in the store for a retried or skipped task; return it, to resume."""
    store = journal.store
    goal = store.get_goal(goal_id)
    if goal is None:
        raise UserError(f"no goal {goal_id}")
    tasks = {t.id: t for t in store.load_tasks(goal_id)}
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
    event = journal.event(
        EventKind.GOAL_REOPENED,
        note,
        goal_id=goal_id,
        project_id=goal.project_id,
        task_id=task_id,
    )
    journal.write(reopened, *changed, events=[event])
    return reopened


def _skipped_by_blitz(task: Task) -> bool:
    return task.reason.startswith((BLOCKED, OVER_BUDGET))


# -- commands from other processes --------------------------------------------------------


def command(engine: Steerable, journal: Journal, goal_id: str, kind: str) -> None:
    """A request stored by another process (``blitz cancel``, ``blitz approve``)."""
    verb, _, task_id = kind.partition(":")
    try:
        if verb == "cancel":
            engine.cancel(goal_id, "cancelled by `blitz cancel`")
        elif verb == "approve":
            engine.approve(goal_id)
        elif verb == "reject":
            engine.reject(goal_id, task_id)
        elif verb in ("retry", "skip") and task_id:
            method = engine.retry_task if verb == "retry" else engine.skip_task
            request = _refusing(journal, goal_id, kind, method(goal_id, task_id))
            job = asyncio.ensure_future(request)
            _REQUESTS.add(job)  # held until done: the loop keeps only weak references to tasks
            job.add_done_callback(_REQUESTS.discard)
        else:
            raise UserError(f"unknown command {kind!r}")
    except UserError as exc:
        _refused(journal, goal_id, kind, exc)


def poll(
    engine: Steerable, store: Store, journal: Journal, goals: list[str]
) -> list[Project] | None:
    """Apply the requests other processes stored for ``goals``: the projects as stored now, or
    None when the store could not be read (another process may hold it a moment: next time)."""
    try:
        commands = store.take_commands(goals)
        projects = store.list_projects()
    except Exception:
        return None
    for stored in commands:
        command(engine, journal, stored.goal_id, stored.kind)
    return projects


async def _refusing(
    journal: Journal, goal_id: str, kind: str, request: Coroutine[Any, Any, None]
) -> None:
    try:
        await request
    except UserError as exc:
        _refused(journal, goal_id, kind, exc)


def _refused(journal: Journal, goal_id: str, kind: str, exc: UserError) -> None:
    """Say in the goal's log that a stored request did not apply, and why."""
    goal = journal.store.get_goal(goal_id)
    event = journal.event(
        EventKind.COMMAND_REFUSED,
        f"`{kind}` refused: {exc}",
        goal_id=goal_id,
        project_id=goal.project_id if goal else "",
    )
    journal.write(events=[event])
