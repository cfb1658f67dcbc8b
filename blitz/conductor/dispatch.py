"""Dispatch: ready tasks to the router, and what the router lets start to the executor.

:class:`Dispatch` feeds a goal's newly ready tasks to the router on the backend each should run
on and the goal's executor (whose breaker gates them), moves queued tasks to a project's fallback
while a backend's breaker is open, records breaker changes, and turns what the router lets start
into attempt jobs: one request per attempt, handed to the goal's executor (or N, side by side,
for best-of-N).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from blitz import executors
from blitz.backends.base import provider_of
from blitz.breaker import BreakerBoard, Change, backend_key
from blitz.clock import Clock
from blitz.conductor import best_of_n
from blitz.conductor.goal import GoalRun
from blitz.conductor.jobs import AttemptJob
from blitz.conductor.journal import Journal
from blitz.conductor.selection import Selection
from blitz.conductor.spending import Spending
from blitz.domain import Attempt, BreakerState, Task, TaskState, new_id
from blitz.events import EventKind
from blitz.executors.base import ROUTER_OUTCOME, AttemptReport, AttemptRequest
from blitz.router import Router, WorkItem

if TYPE_CHECKING:
    from blitz.backends.base import AgentBackend

StartJob = Callable[[AttemptJob, Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]
"""Runs a job and reports its end to the loop (the engine's)."""


class Dispatch:
    """Between the goals, the router and the executors. Shares the engine's ``runs``."""

    def __init__(
        self,
        *,
        runs: dict[str, GoalRun],
        router: Router,
        breakers: BreakerBoard,
        journal: Journal,
        clock: Clock,
        spending: Spending,
        start: StartJob,
        fault: Callable[[str], None],
    ) -> None:
        self.runs = runs
        self.router = router
        self.breakers = breakers
        self.journal = journal
        self.clock = clock
        self.spending = spending
        self._start = start
        self._fault = fault

    def feed(self, run: GoalRun) -> None:
        """Hand every newly ready task of a goal to the router."""
        if run.dag is None or run.cancelled:
            return
        ready = run.dag.pop_ready()
        if not ready:
            return
        if run.budget_stop:
            run.skip_over_budget(ready)
            return
        goal_id, project_id = run.goal.id, run.project.id
        executor = executors.name_of(run.services.executor)
        now = self.clock.time()
        tasks = run.tasks
        submit = self.router.submit
        event = self.journal.event
        changed = []
        events = []
        for task_id in ready:
            task = tasks[task_id]
            if task.state is not TaskState.READY:
                task = tasks[task_id] = task.evolve(state=TaskState.READY)
            changed.append(task)
            events.append(
                event(
                    EventKind.TASK_READY,
                    "ready",
                    goal_id=goal_id,
                    project_id=project_id,
                    task_id=task_id,
                    ts=now,
                )
            )
            backend = self._route(run, task)
            submit(
                WorkItem(
                    goal_id=goal_id,
                    task_id=task_id,
                    project_id=project_id,
                    priority=task.priority,
                    backend=backend,
                    provider=self._provider(run, task, backend),
                    executor=executor,
                ),
                not_before=run.waits.pop(task_id, None),
            )
        self.journal.write(*changed, events=events)

    def _route(self, run: GoalRun, task: Task) -> str:
        """The backend a task runs on: its own choice, else the goal's; the project's fallback
        while that backend's breaker is open."""
        name = task.backend or run.services.backend.name
        fallback = run.project.fallback_backend
        if fallback and fallback != name and not self.breakers.get(backend_key(name)).would_allow():
            run.emit(EventKind.TASK_ROUTED, _unavailable(name, fallback), task=task)
            return fallback
        return name

    def _provider(self, run: GoalRun, task: Task, backend: str) -> str:
        """The model provider a task's attempt calls, so the router holds it while that
        provider's breaker is open ("" when unknown, or spread over a best-of-N portfolio)."""
        if (task.explore or run.goal.explore) > 1:
            return ""
        try:
            return provider_of(self._backend(run, backend, task.model or run.goal.model))
        except Exception:  # the attempt will say what is wrong with the backend
            return ""

    def _reroute(self, backend: str) -> None:
        """A backend's breaker opened: move the queued tasks of projects with a fallback."""
        for run in list(self.runs.values()):
            fallback = run.project.fallback_backend
            if not fallback or fallback == backend:
                continue
            waits = self.router.waits(run.goal.id)
            for item in self.router.withdraw(run.goal.id):
                if item.backend == backend:
                    task = run.tasks[item.task_id]
                    item = dataclasses.replace(
                        item, backend=fallback, provider=self._provider(run, task, fallback)
                    )
                    run.emit(EventKind.TASK_ROUTED, _unavailable(backend, fallback), task=task)
                    # It waited for the old backend's provider; the fallback's breaker decides.
                    waits.pop(item.task_id, None)
                self.router.submit(item, not_before=waits.get(item.task_id))

    def start_ready(self) -> None:
        """Start attempts of what the router lets start."""
        # Changes made by model calls and agent runs since the last step (a provider's breaker).
        self.breaker_changes(self.breakers.drain())
        taken = self.router.take()
        # take() may have let a breaker's cooldown end (open -> half-open) to admit a probe: log
        # that before the probe's task.started, not when the probe's outcome is recorded.
        self.breaker_changes(self.breakers.poll())
        if not taken:
            return
        now = self.clock.time()
        event = self.journal.event
        records: list[Task | Attempt] = []
        events = []
        started: list[AttemptJob] = []
        for item in taken:
            run = self.runs.get(item.goal_id)
            task = run.tasks.get(item.task_id) if run else None
            if run is None or task is None or task.state is not TaskState.READY or run.cancelled:
                self.router.done(item, outcome="cancelled")
                continue
            task = task.evolve(state=TaskState.RUNNING, attempts=task.attempts + 1)
            run.tasks[task.id] = task
            made = [
                Attempt(
                    id=new_id("a", bits=64),
                    goal_id=task.goal_id,
                    task_id=task.id,
                    number=task.attempts,
                    backend=backend,
                    model=model,
                    candidate=candidate,
                    started_at=now,
                )
                for candidate, (backend, model) in best_of_n.candidates(run, task, item.backend)
            ]
            records += (task, *made)
            n = len(made)
            events.append(
                event(
                    EventKind.TASK_STARTED,
                    f"attempt {task.attempts}" + (f": best of {n}" if n > 1 else ""),
                    goal_id=task.goal_id,
                    project_id=item.project_id,
                    task_id=task.id,
                    attempt_id=made[0].id,
                    data={"attempts": [a.id for a in made]} if n > 1 else None,
                    ts=now,
                )
            )
            started.append(AttemptJob(run, item, made))
        # One write for the whole batch: each task's record still goes with its event.
        self.journal.write(*records, events=events)
        for job in started:
            run, made = job.run, job.made
            task = run.tasks[job.item.task_id]
            executor = run.services.executor
            if len(made) == 1:
                work: Coroutine[Any, Any, Any] = executor.run(self.request(run, task, made[0]))
            else:
                request_for = functools.partial(self.request, run, task)
                work = best_of_n.explore(executor, request_for, run, task, made)
            run.attempt_jobs[task.id] = self._start(job, work)

    def request(
        self,
        run: GoalRun,
        task: Task,
        attempt: Attempt,
        selection: Selection | None = None,
        share: int = 1,
    ) -> AttemptRequest:
        """What an executor needs to run one attempt."""
        services = run.services
        budget = services.goal_budget_usd
        return AttemptRequest(
            project=run.project,
            goal=run.goal,
            task=task,
            attempt=attempt,
            backend=self._backend(run, attempt.backend, attempt.model),
            workspace=services.workspace,
            pool=services.pool,
            setup=services.setup,
            validator=services.validator,
            baseline=run.baseline,
            timeout=services.limits.attempt_timeout,
            budget_usd=None if budget is None else max(0.0, budget - run.usage.cost_usd) / share,
            model=attempt.model,
            selection=selection,
            label=best_of_n.label(attempt),
            # The worker labels it needs: the task's own, then the project's ([executor] labels).
            labels=tuple(dict.fromkeys((*task.labels, *services.labels))),
            fetch_remote=services.fetch_remote,
            meter=self.spending.meter(attempt.id),
            emit=self.journal.emit,
            now=self.clock.time,
            fault=self._fault,
        )

    def _backend(self, run: GoalRun, name: str, model: str) -> AgentBackend:
        services = run.services
        if services.backend_for is None or (name == services.backend.name and not model):
            return services.backend
        return services.backend_for(name, model)

    # -- reports ----------------------------------------------------------------------------

    def ended(self, item: WorkItem, report: AttemptReport, error: str) -> None:
        """An attempt (or a best-of-N exploration, tallied as one report) ended: free its slot and
        tell its breakers, the executor's whether it reached the cluster (every attempt did but one
        whose report says the executor could not)."""
        outcome = ROUTER_OUTCOME[report.outcome]
        reached = not report.executor_down
        self.breaker_changes(self.router.done(item, outcome=outcome, error=error, reached=reached))

    def breaker_changes(self, changes: Iterable[Change]) -> None:
        for change in changes:
            self.breaker_changed(change)

    def breaker_changed(self, change: Change) -> None:
        record = self.breakers.get(change.key).to_record()
        event = self.journal.event(
            _BREAKER_EVENT[change.new],
            f"{change.key}: {change.reason}",
            data={"key": change.key, "from": change.old.value, "to": change.new.value},
        )
        self.journal.write(record, events=[event])
        if change.new is BreakerState.OPEN and change.key.startswith(backend_key("")):
            self._reroute(change.key.removeprefix(backend_key("")))


def _unavailable(backend: str, fallback: str) -> str:
    return f"{backend} is unavailable (its breaker is open): running on {fallback}"


_BREAKER_EVENT = {
    BreakerState.OPEN: EventKind.BREAKER_OPENED,
    BreakerState.HALF_OPEN: EventKind.BREAKER_HALF_OPEN,
    BreakerState.CLOSED: EventKind.BREAKER_CLOSED,
}
