"""One goal being driven: its records in memory, its graph, and the rules of how its tasks move
from state to state.

A :class:`GoalRun` writes every change of its own records through the journal and *returns*
what the engine must do next (:class:`Recover`, :class:`Pause`, :class:`Publish`, :class:`End`)
instead of calling back into it: the engine owns the router, the jobs and the other goals.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blitz.conductor.outcomes import BLOCKED, OVER_BUDGET, nothing_done
from blitz.dag import Dag, NodeStatus
from blitz.domain import (
    Attempt,
    Baseline,
    Goal,
    GoalState,
    Plan,
    Project,
    Recovery,
    Task,
    TaskState,
    Usage,
)
from blitz.errors import BlitzError
from blitz.events import Event, EventKind
from blitz.executors.base import AttemptReport, Outcome
from blitz.planner import RecoveryRequest, replacements

if TYPE_CHECKING:
    from blitz.conductor.journal import Journal
    from blitz.conductor.services import Services


DONE_GOALS = (GoalState.SUCCEEDED, GoalState.FAILED, GoalState.CANCELLED)
SETTLED_GOALS = (GoalState.FINISHING, *DONE_GOALS)  # no task of the goal starts any more


@dataclass(frozen=True, slots=True)
class Recover:
    """Ask the planner how to recover from a failed attempt."""

    request: RecoveryRequest
    task_id: str
    attempt_id: str


@dataclass(frozen=True, slots=True)
class Pause:
    """Pause the goal's project: the user must fix something first."""

    reason: str


@dataclass(frozen=True, slots=True)
class Publish:
    """Every task is settled: push the goal branch and open the pull request."""


@dataclass(frozen=True, slots=True)
class End:
    """The goal is over."""

    state: GoalState
    error: str
    events: tuple[Event, ...] = field(default_factory=tuple)


Next = Recover | Pause | Publish | End | None


class GoalRun:
    """The in-memory state of one goal being driven."""

    __slots__ = (
        "aborted",
        "activity",
        "attempt_jobs",
        "baseline",
        "budget_stop",
        "cancelled",
        "dag",
        "goal",
        "jobs",
        "journal",
        "plan",
        "project",
        "recoveries",
        "services",
        "started",
        "tasks",
        "usage",
        "waits",
    )

    def __init__(self, project: Project, goal: Goal, services: Services, journal: Journal) -> None:
        self.project = project
        self.goal = goal
        self.services = services
        self.journal = journal
        self.dag: Dag | None = None
        self.tasks: dict[str, Task] = {}
        self.baseline: Baseline | None = None
        self.jobs = 0  # jobs in flight: planning, attempts, recoveries, publishing
        self.attempt_jobs: dict[str, asyncio.Task[Any]] = {}  # by task id
        self.recoveries = 0
        self.cancelled = False
        self.aborted = False  # recovery said the goal cannot succeed: it ends failed, not cancelled
        self.plan: Plan | None = None
        self.usage = Usage()  # everything spent: attempts, planning, recovery
        self.budget_stop = ""  # why no new work starts (a budget was reached)
        self.started = 0.0
        self.activity = ""  # what planning is doing now, for a person watching (the live view)
        # Tasks waiting for their model provider: task id -> the monotonic time they may start.
        self.waits: dict[str, float] = {}

    # -- events -----------------------------------------------------------------------------

    def event(
        self,
        kind: EventKind,
        message: str,
        *,
        task: Task | None = None,
        attempt_id: str = "",
        data: dict[str, Any] | None = None,
    ) -> Event:
        """An event of this goal (of one of its tasks if ``task`` is given)."""
        return self.journal.event(
            kind,
            message,
            goal_id=self.goal.id,
            project_id=self.project.id,
            task_id=task.id if task else "",
            attempt_id=attempt_id,
            data=data,
        )

    def emit(self, kind: EventKind, message: str, *, task: Task | None = None) -> None:
        self.journal.write(events=[self.event(kind, message, task=task)])

    # -- tasks ------------------------------------------------------------------------------

    def set_task(self, task: Task, kind: EventKind | None = None, message: str = "") -> None:
        """Record a task's new state with its event; a cancelled task leaves the graph."""
        self.tasks[task.id] = task
        if kind is None:
            kind = _TASK_EVENT.get(task.state, EventKind.TASK_REQUEUED)
        self.journal.write(
            task, events=[self.event(kind, message or task.reason or task.state.value, task=task)]
        )
        dag = self.dag
        cancelled = task.state is TaskState.CANCELLED
        if dag is not None and cancelled and task.id in dag and dag.status(task.id) in _CANCELLABLE:
            with contextlib.suppress(BlitzError):
                dag.skip(task.id)

    def succeeded(self, task: Task, attempt: Attempt) -> None:
        """The attempt's work is on the goal branch (the engine feeds the goal afterwards)."""
        assert self.dag is not None
        task = task.evolve(state=TaskState.SUCCEEDED, commit=attempt.commit, crashes=0, reason="")
        self.tasks[task.id] = task
        self.dag.complete(task.id)
        journal, now = self.journal, self.journal.clock.time()
        goal_id, project_id, task_id = task.goal_id, self.project.id, task.id
        commit, cost = attempt.commit, attempt.usage.cost_usd
        events = [
            journal.event(
                EventKind.ATTEMPT_FINISHED,
                f"attempt {attempt.number}: succeeded",
                goal_id=goal_id,
                project_id=project_id,
                task_id=task_id,
                attempt_id=attempt.id,
                data={"outcome": "succeeded", "commit": commit, "cost_usd": cost},
                ts=now,
            ),
            journal.event(
                EventKind.TASK_SUCCEEDED,
                f"committed {commit[:10]}" if commit else "succeeded (no change)",
                goal_id=goal_id,
                project_id=project_id,
                task_id=task_id,
                attempt_id=attempt.id,
                data={"commit": commit, "cost_usd": cost},
                ts=now,
            ),
        ]
        if commit:
            events.append(
                journal.event(
                    EventKind.CHECKPOINT_INTEGRATED,
                    f"{commit[:10]} on {self.goal.branch}",
                    goal_id=goal_id,
                    project_id=project_id,
                    task_id=task_id,
                    attempt_id=attempt.id,
                    data={"commit": commit},
                    ts=now,
                )
            )
        journal.write(task, attempt, events=events)

    def attempt_finished(self, task: Task, report: AttemptReport) -> None:
        """Record an attempt that did not succeed (or whose goal was cancelled)."""
        final, outcome = report.attempt, report.outcome
        data = {"outcome": outcome.value, "commit": final.commit, "cost_usd": final.usage.cost_usd}
        if report.error:
            data["error"] = report.error[:2000]
        message = f"attempt {final.number}: {outcome.value}"
        event = self.event(
            EventKind.ATTEMPT_FINISHED, message, task=task, attempt_id=final.id, data=data
        )
        self.journal.write(final, events=[event])

    def after_attempt(self, task: Task, report: AttemptReport, *, interrupted: bool) -> Next:
        """Move a task on after an attempt that did not succeed (or whose goal was cancelled);
        ``interrupted``: it was stopped by a shutdown, not at fault."""
        outcome = report.outcome
        if self.cancelled:
            self.set_task(task.evolve(state=TaskState.CANCELLED, reason="cancelled"))
        elif interrupted:
            self.requeue(task, "interrupted by shutdown; re-queued")
        elif outcome is Outcome.CONFLICT:
            return self.conflict(task, report)
        elif outcome is Outcome.CRASHED:
            self.crashed(task, report.error)
        elif outcome is Outcome.UNAVAILABLE:
            self.wait(task, report.error, report.retry_after, executor=report.executor_down)
        elif outcome is Outcome.CONFIG:
            self.requeue(task, f"waiting: {report.error}")
            return Pause(report.error)
        else:
            return self.failed(task, report.attempt, report.error, report.messages)
        return None

    def requeue(self, task: Task, message: str) -> None:
        """Put a task back in the queue as it was (the work was not at fault)."""
        assert self.dag is not None
        task = task.evolve(state=TaskState.READY)
        self.tasks[task.id] = task
        if self.dag.status(task.id) is NodeStatus.RUNNING:
            self.dag.requeue(task.id)
        self.journal.write(task, events=[self.event(EventKind.TASK_REQUEUED, message, task=task)])

    def wait(
        self, task: Task, reason: str, retry_after: float | None, *, executor: bool = False
    ) -> None:
        """The task's model provider (``executor``: the executor's cluster) is out: the task
        waits (it has not crashed), and is re-queued to start once the wait is over and the
        provider's (the executor's) breaker lets it. The executor's breaker is the wait: no time
        of its own unless the executor said one."""
        assert self.dag is not None
        clock = self.journal.clock
        seconds = (retry_after or 0.0) if executor else self.services.retry.wait(retry_after)
        until = clock.time() + seconds
        self.waits[task.id] = clock.monotonic() + seconds
        shown = time.strftime("%H:%M:%S", time.localtime(until))
        what = "the executor" if executor else "the model provider"
        why = reason.splitlines()[0] if reason else f"{what} is unavailable"
        wait = f"waiting until {shown}" if seconds else f"waiting for {what}"
        task = task.evolve(state=TaskState.READY, reason=f"{wait}: {why}"[:4000])
        self.tasks[task.id] = task
        if self.dag.status(task.id) is NodeStatus.RUNNING:
            self.dag.requeue(task.id)
        event = self.event(
            EventKind.TASK_WAITING,
            f"waiting {seconds:.0f}s for {what}: {why}" if seconds else f"{wait}: {why}",
            task=task,
            data={"until": until, "seconds": seconds, "reason": reason[:2000]},
        )
        self.journal.write(task, events=[event])

    def crashed(self, task: Task, error: str, *, requeue_only: bool = False) -> None:
        """The machinery broke: retry, up to the crash limit (always after a restart)."""
        assert self.dag is not None
        if task.state is TaskState.RUNNING:
            task = task.evolve(state=TaskState.CRASHED, crashes=task.crashes + 1, reason=error)
            self.set_task(task, EventKind.TASK_CRASHED, error)
        if task.crashes <= self.services.limits.max_crash_retries or requeue_only:
            self.requeue(task, f"retrying after a crash ({task.crashes})")
            return
        task = task.evolve(state=TaskState.FAILED, reason=f"crashed {task.crashes} times: {error}")
        self.tasks[task.id] = task
        if self.dag.status(task.id) is NodeStatus.RUNNING:
            self.dag.fail(task.id)
        self.journal.write(task, events=[self.event(EventKind.TASK_FAILED, task.reason, task=task)])

    def conflict(self, task: Task, report: AttemptReport) -> Next:
        """The change does not apply on the goal branch's new head: run it again from there,
        a bounded number of times."""
        assert self.dag is not None
        limit = self.services.limits.max_conflict_reruns
        if task.conflicts >= limit:
            error = f"{report.error}\n(re-ran {limit} times on the new head; still conflicting)"
            return self.failed(task, report.attempt, error, report.messages)
        task = task.evolve(state=TaskState.READY, conflicts=task.conflicts + 1)
        self.tasks[task.id] = task
        self.dag.requeue(task.id)
        message = f"re-running on the new goal branch head ({task.conflicts}/{limit}): "
        self.journal.write(
            task,
            events=[self.event(EventKind.TASK_REQUEUED, message + report.error, task=task)],
        )
        return None

    def failed(
        self, task: Task, attempt: Attempt, error: str, messages: tuple[str, ...]
    ) -> Recover | None:
        """The work was wrong: the task fails, and the planner is asked how to recover."""
        assert self.dag is not None
        task = task.evolve(state=TaskState.FAILED, reason=error[:4000])
        self.tasks[task.id] = task
        self.dag.fail(task.id)
        event = self.event(
            EventKind.TASK_FAILED,
            error.splitlines()[0] if error else "failed",
            task=task,
            attempt_id=attempt.id,
            data={"error": error[:4000]},
        )
        self.journal.write(task, events=[event])
        return self.recover(task, attempt, error, messages)

    def recover(
        self, task: Task, attempt: Attempt, error: str, messages: tuple[str, ...]
    ) -> Recover | None:
        """A recovery request for a failed task, unless its goal or it has had enough."""
        limits = self.services.limits
        if (
            task.recoveries >= limits.max_recoveries_per_task
            or self.recoveries >= limits.max_recoveries_per_goal
        ):
            which = "task" if task.recoveries >= limits.max_recoveries_per_task else "goal"
            self.emit(
                EventKind.RECOVERY_EXHAUSTED,
                f"no more recoveries for this {which}; the task stays failed",
                task=task,
            )
            return None
        self.recoveries += 1
        task = task.evolve(recoveries=task.recoveries + 1)
        self.tasks[task.id] = task
        event = self.event(
            EventKind.RECOVERY_REQUESTED,
            error.splitlines()[0] if error else "",
            task=task,
            attempt_id=attempt.id,
        )
        self.journal.write(task, events=[event])
        request = RecoveryRequest(
            goal_id=self.goal.id,
            goal=self.goal.title,
            task=task,
            attempt=attempt,
            error=error,
            gates=attempt.gates,
            diff=attempt.diff,
            messages=messages,
            earlier=tuple(self.journal.store.load_recoveries(self.goal.id)),
            task_ids=tuple(self.tasks),
            dependents=tuple(t.id for t in self.tasks.values() if task.id in t.depends_on),
            replaced=replacements(self.tasks),
            on_reask=lambda line: self.emit(EventKind.PLAN_REASKED, line, task=task),
        )
        return Recover(request, task.id, attempt.id)

    def cancel_tasks(self, reason: str, withdrawn: list[str]) -> None:
        """Cancel every task that has not started (``withdrawn`` were queued)."""
        for task_id in withdrawn:
            self.set_task(self.tasks[task_id].evolve(state=TaskState.CANCELLED, reason=reason))
        for task in list(self.tasks.values()):
            if task.state in _CANCELLED_ON_STOP:
                self.set_task(task.evolve(state=TaskState.CANCELLED, reason=reason))

    def skip_over_budget(self, ready: list[str]) -> None:
        """Skip tasks that became ready after the goal's budget was spent (and what follows)."""
        assert self.dag is not None
        while ready:
            for task_id in ready:
                task = self.tasks[task_id]
                self.set_task(
                    task.evolve(state=TaskState.SKIPPED, reason=OVER_BUDGET + self.budget_stop),
                    EventKind.TASK_SKIPPED,
                )
                self.dag.skip(task_id)  # the dependents it releases are READY: popped below
            ready = self.dag.pop_ready()

    # -- the goal ---------------------------------------------------------------------------

    def settle(self) -> Publish | End | None:
        """After anything changed: skip what can never run, and say whether the goal is ready
        to publish or over."""
        stopped = GoalState.FAILED if self.aborted else GoalState.CANCELLED
        if self.jobs or self.goal.state in SETTLED_GOALS:
            if self.cancelled and not self.jobs and self.goal.state not in DONE_GOALS:
                return End(stopped, self.goal.error or "cancelled")
            return None
        if self.cancelled:
            return End(stopped, self.goal.error or "cancelled")
        dag = self.dag
        if dag is None:
            return None
        if dag.deadlocked():
            self._skip_blocked(dag)
        if dag.finished():
            if undone := nothing_done(self.tasks):  # no empty branch or pull request
                return End(GoalState.FAILED, undone)
            self.goal = self.goal.evolve(state=GoalState.FINISHING)
            self.journal.write(self.goal)
            return Publish()
        return None

    def _skip_blocked(self, dag: Dag) -> None:
        blocked = dag.block_unreachable()
        events = [
            self.event(
                EventKind.DEADLOCK_DETECTED,
                f"nothing can run: skipped {len(blocked)} blocked task(s)",
                data={"blocked": blocked},
            )
        ]
        for task_id, why in blocked.items():
            task = self.tasks[task_id].evolve(state=TaskState.SKIPPED, reason=BLOCKED + why)
            self.tasks[task_id] = task
            self.journal.write(task)
            events.append(self.event(EventKind.TASK_SKIPPED, task.reason, task=task))
        self.journal.write(events=events)

    def end(self, end: End) -> None:
        """Record the goal's end with its events."""
        if self.goal.state is end.state and end.state in DONE_GOALS:
            # It had ended already: publishing was retried (blitz publish, resume).
            self.journal.write(self.goal, events=list(end.events))
            return
        if self.goal.state is not end.state:
            self.goal = self.goal.evolve(
                state=end.state, error=end.error, finished_at=self.journal.clock.time()
            )
        done = self.event(
            _GOAL_EVENT[end.state],
            end.error or "all tasks done",
            data={"cost_usd": self.usage.cost_usd, "pr": self.goal.pr_url},
        )
        self.journal.write(self.goal, events=[*end.events, done])

    def recovery_record(self, recovery: Recovery, task: Task) -> None:
        """Write a planned recovery with its event."""
        self.journal.write(
            recovery,
            events=[
                self.event(
                    EventKind.RECOVERY_PLANNED,
                    f"{recovery.action.value}: {recovery.root_cause}",
                    task=task,
                    data={
                        "action": recovery.action.value,
                        "root_cause": recovery.root_cause,
                        "new_tasks": list(recovery.new_tasks),
                    },
                )
            ],
        )


_TASK_EVENT = {
    TaskState.CANCELLED: EventKind.TASK_SKIPPED,
    TaskState.SKIPPED: EventKind.TASK_SKIPPED,
    TaskState.FAILED: EventKind.TASK_FAILED,
}
_GOAL_EVENT = {
    GoalState.SUCCEEDED: EventKind.GOAL_SUCCEEDED,
    GoalState.FAILED: EventKind.GOAL_FAILED,
    GoalState.CANCELLED: EventKind.GOAL_CANCELLED,
}
_CANCELLABLE = (NodeStatus.WAITING, NodeStatus.READY, NodeStatus.RUNNING, NodeStatus.FAILED)
_CANCELLED_ON_STOP = (TaskState.PENDING, TaskState.READY, TaskState.FAILED, TaskState.CRASHED)
