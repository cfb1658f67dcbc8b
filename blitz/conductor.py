"""The conductor: drives every goal of this process from plan to pull request.

One loop owns all in-memory state. Work that waits on the outside world (planning, attempts,
recovery planning, publishing) runs as asyncio jobs that report back through one inbox; the loop
applies each report, writes the changed records and their events to the store, feeds newly ready
tasks to the router and starts whatever the router lets start. Because the loop is the only
writer, no locks guard the state.

Durability: the store commits in groups, so a kill may lose the last few milliseconds of writes.
Nothing is lost by that: the plan is flushed before any task runs, and on resume the goal
branch's commit trailers (``Blitz-Task: <id>``) say which tasks were integrated, whatever the
store last heard. Running attempts are re-queued; their worktrees are removed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blitz import attempt as attempts
from blitz import exploring, steering
from blitz.breaker import (
    GLOBAL,
    BreakerBoard,
    BreakerPolicy,
    Change,
    backend_key,
    project_key,
)
from blitz.clock import Clock
from blitz.dag import Dag, Node, NodeStatus
from blitz.domain import (
    Attempt,
    AttemptState,
    Baseline,
    BreakerRecord,
    BreakerState,
    Goal,
    GoalState,
    Plan,
    Project,
    Recovery,
    RecoveryAction,
    RecoveryPlan,
    Task,
    TaskSpec,
    TaskState,
    Usage,
    new_id,
)
from blitz.errors import BlitzError, ConfigError, PlanError, UserError
from blitz.events import Event, EventKind
from blitz.planner import Planner, PlanRequest, RecoveryRequest, check_plan
from blitz.router import Router, WorkItem
from blitz.store.base import Store

if TYPE_CHECKING:
    from blitz.backends.base import AgentBackend
    from blitz.explore import Judge, Selection
    from blitz.validation import Validator
    from blitz.workspace import Workspace

BLOCKED = "blocked: "
"""Reason prefix of tasks skipped because a dependency can never finish."""

OVER_BUDGET = "budget reached: "
"""Reason prefix of tasks skipped because the goal's budget was spent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_tasks: int = 200
    max_recoveries_per_task: int = 2
    max_recoveries_per_goal: int = 10
    max_crash_retries: int = 3
    max_conflict_reruns: int = 2
    attempt_timeout: float = 1800.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """What the engine needs to run one project's goals."""

    planner: Planner
    backend: AgentBackend
    workspace: Workspace | None  # None: no git at all (benchmarks only)
    validator: Validator | None
    publish: Callable[[GoalReport], Any] | None = None  # async: push + PR; returns Published
    limits: Limits = field(default_factory=Limits)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    scripted: bool = False
    goal_budget_usd: float | None = None  # hard limits; reaching one stops new work
    project_budget_usd: float | None = None
    # The backend for a (name, model) pair, for tasks routed away from ``backend`` (a plan's
    # per-task choice, the project's fallback, a best-of-N portfolio). None: always ``backend``.
    backend_for: Callable[[str, str], AgentBackend] | None = None
    judge: Judge | None = None  # breaks ties between passing best-of-N candidates
    routes: tuple[str, ...] = ()  # backends ("name" or "name:model") a planner may send tasks to


@dataclass(frozen=True, slots=True, kw_only=True)
class GoalReport:
    """Everything the publisher needs to push a goal branch and describe it."""

    project: Project
    goal: Goal
    tasks: tuple[Task, ...]
    attempts: tuple[Attempt, ...]
    recoveries: tuple[Recovery, ...]
    scripted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    pr_url: str = ""
    description_path: str = ""
    pushed: bool = False
    note: str = ""


class GoalRun:
    """The in-memory state of one goal being driven."""

    __slots__ = (
        "aborted",
        "attempt_jobs",
        "baseline",
        "budget_stop",
        "cancelled",
        "dag",
        "goal",
        "jobs",
        "plan",
        "project",
        "recoveries",
        "services",
        "started",
        "tasks",
        "usage",
    )

    def __init__(self, project: Project, goal: Goal, services: Services) -> None:
        self.project = project
        self.goal = goal
        self.services = services
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


def runner_id() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def runner_alive(runner: str) -> bool:
    """Whether the process that claimed a goal still runs (checked on this host; a runner on
    another host is assumed alive)."""
    if not runner:
        return False
    pid_text, _, host = runner.partition("@")
    if host != socket.gethostname():
        return True
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed but not yet reaped by its parent) is dead for our purposes.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat", encoding="ascii") as f:
        if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    return True


class Engine:
    """Drives goals. Create it, add goals with :meth:`start` or :meth:`resume`, then :meth:`run`."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        router: Router,
        breakers: BreakerBoard,
        services: Callable[[Project, Goal], Services],
        fault: Callable[[str], None] = lambda point: None,
        poll_interval: float = 0.5,
        return_when_blocked: bool = False,
        keep_alive: bool = False,
    ) -> None:
        """``return_when_blocked``: :meth:`run` returns once every goal waits on a paused
        project (the CLI's case: a person must act; the goals stay resumable).
        ``keep_alive``: :meth:`run` goes on with no goals until :meth:`stop` (the daemon)."""
        self._return_when_blocked = return_when_blocked
        self._keep_alive = keep_alive
        self._draining = False  # shutting down: nothing new starts; interrupted work re-queues
        self.user_errors: dict[str, UserError] = {}
        """Goals that failed on a configuration the user must fix (a rejected key), by id."""
        self._paused: dict[str, str] = {}  # project id -> why it is paused
        # What each project has spent: from the store when its first goal is taken on, then
        # counted here as this process spends (other processes' live spending is not seen).
        self._project_spent: dict[str, float] = {}
        self.store = store
        self.clock = clock
        self.router = router
        self.breakers = breakers
        self._services = services
        self._fault = fault
        self._poll_interval = poll_interval
        self.runs: dict[str, GoalRun] = {}
        self.finished: dict[str, Goal] = {}
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        # Goals with tasks that succeeded in this step: fed and settled once per step, not once
        # per task.
        self._unfed: dict[str, GoalRun] = {}
        # The loop sleeps on a future that reports resolve, with one timer for the next poll
        # or breaker retry that is kept across steps while its time stays the same.
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._me = runner_id()
        self._stopping = False
        self._meters: dict[str, attempts.Meter] = {}  # by attempt id, while it runs

    # -- public -----------------------------------------------------------------------------

    def start(self, project: Project, goal: Goal, *, plan: Plan | None = None) -> GoalRun:
        """Take on a new goal (already written to the store in state PLANNING)."""
        run = self._adopt(project, goal)
        run.plan = plan
        self._spawn(run, self._prepare(run), self._prepared)
        self._wake()
        return run

    submit = start

    def approve(self, goal_id: str, plan: Plan | None = None) -> None:
        """Let a goal that waits for plan approval run, with ``plan`` instead if given."""
        steering.approve(self, goal_id, plan)

    def reject(self, goal_id: str, reason: str = "") -> None:
        """Cancel a goal whose plan waits for approval."""
        steering.reject(self, goal_id, reason)

    async def retry_task(self, goal_id: str, task_id: str) -> None:
        """Another attempt at a failed, skipped or cancelled task (reopens an ended goal)."""
        await steering.retry_task(self, goal_id, task_id)

    async def skip_task(self, goal_id: str, task_id: str) -> None:
        """Drop a task; the tasks after it go on without it (reopens an ended goal)."""
        await steering.skip_task(self, goal_id, task_id)

    def resume_project(self, project_id: str) -> None:
        steering.resume_project(self, project_id)

    async def drain(self, grace: float) -> None:
        """Stop gently: running attempts get ``grace`` seconds, then are re-queued for later."""
        await steering.drain(self, grace)

    def _command(self, goal_id: str, kind: str) -> None:
        steering.command(self, goal_id, kind)

    async def resume(self, goal: Goal) -> GoalRun:
        """Take over an unfinished goal from the store, after a crash or a restart."""
        project = self.store.get_project(goal.project_id)
        if project is None:
            raise UserError(f"goal {goal.id} belongs to a project that no longer exists")
        run = self._adopt(project, goal)
        self._emit(run, EventKind.GOAL_RESUMED, f"resumed by {self._me} from {goal.state}")
        with _gc_paused():
            tasks = self.store.load_tasks(goal.id)
        if goal.state is GoalState.PLANNING or not tasks:
            self._spawn(run, self._prepare(run), self._prepared)
            return run
        await self._reconcile(run, tasks)
        return run

    def cancel(self, goal_id: str, reason: str = "cancelled by the user") -> bool:
        run = self.runs.get(goal_id)
        if run is None or run.cancelled:
            return False
        run.cancelled = True
        for item in self.router.withdraw(goal_id):
            self._set_task(
                run, run.tasks[item.task_id].evolve(state=TaskState.CANCELLED, reason=reason)
            )
        for task in list(run.tasks.values()):
            if task.state in (
                TaskState.PENDING,
                TaskState.READY,
                TaskState.FAILED,
                TaskState.CRASHED,
            ):
                self._set_task(run, task.evolve(state=TaskState.CANCELLED, reason=reason))
        for job in run.attempt_jobs.values():
            job.cancel()
        run.goal = run.goal.evolve(error=reason)
        self._settle(run)
        return True

    def stop(self) -> None:
        """Stop the loop after the current step (the daemon's shutdown; goals stay resumable)."""
        self._stopping = True
        self._wake()

    async def run(self) -> dict[str, Goal]:
        """Drive every goal until all are finished; return their final records."""
        try:
            await self._loop()
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        await self.store.flush()
        return dict(self.finished)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = self.clock.monotonic() + self._poll_interval
        inbox = self._inbox
        while (self.runs or self._keep_alive) and not self._stopping:
            if self._return_when_blocked and len(self.blocked()) == len(self.runs):
                return  # every goal waits for its user to act; they stay resumable
            # Apply every report that arrived, then start whatever may start, then wait.
            while inbox and not self._stopping:
                inbox.popleft()()
            if self._unfed:
                self._feed_succeeded()
            self._dispatch()
            now = self.clock.monotonic()
            if now >= next_poll:
                self._poll_commands()
                for change in self.breakers.poll():
                    self._breaker_changed(change)
                next_poll = now + self._poll_interval
            if inbox or self._stopping or not (self.runs or self._keep_alive):
                continue
            wake = next_poll
            retry_at = self.router.next_wakeup()
            if retry_at is not None:
                wake = min(wake, retry_at)
            deadline = loop.time() + max(0.0, wake - now)
            timer = self._timer
            # Keep the timer unless it would fire late; one that fires early costs one idle step.
            if timer is None or timer.when() > deadline + _TIMER_SLACK:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(deadline, self._timer_fired)
            self._waiter = loop.create_future()
            await self._waiter
            self._waiter = None

    def _wake(self) -> None:
        """End the loop's wait: a report arrived, or it should stop."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _timer_fired(self) -> None:
        self._timer = None
        self._wake()

    # -- adoption, planning -----------------------------------------------------------------

    def _adopt(self, project: Project, goal: Goal) -> GoalRun:
        run = GoalRun(project, goal, self._services(project, goal))
        run.started = self.clock.monotonic()
        self.runs[goal.id] = run
        self.router.set_project_limit(project.id, max(1, goal.max_parallel or project.max_parallel))
        self.breakers.configure(project_key(project.id), run.services.breaker)
        if run.services.project_budget_usd is not None and project.id not in self._project_spent:
            self._project_spent[project.id] = self.store.project_usage(project.id).cost_usd
        if project.paused:
            self._paused[project.id] = project.pause_reason or "paused"
            self.router.pause_project(project.id)
        run.goal = goal.evolve(runner=self._me)
        self.store.write(run.goal)
        return run

    async def _prepare(self, run: GoalRun) -> tuple[list[Task], Baseline | None, Usage]:
        """Goal branch, plan, baseline: everything before the first task runs."""
        goal, ws = run.goal, run.services.workspace
        base_sha = goal.base_sha
        if ws is not None:
            base_sha = base_sha or await ws.rev_parse(f"refs/heads/{goal.base_branch}")
            await ws.ensure_goal_branch(goal.branch, goal.base_branch)
        usage = Usage()
        plan = run.plan
        if plan is None:
            planned = await run.services.planner.plan(
                PlanRequest(
                    goal_id=goal.id,
                    goal=goal.title,
                    repo=Path(run.project.path),
                    gates=run.project.gates.configured(),
                    max_tasks=run.services.limits.max_tasks,
                    backends=run.services.routes,
                )
            )
            plan, usage = planned.plan, planned.usage
        check_plan(plan.tasks, max_tasks=run.services.limits.max_tasks)
        self._check_routes(run, plan)
        run.goal = run.goal.evolve(base_sha=base_sha, summary=plan.summary)
        tasks = [
            _task(goal.id, spec, origin="plan", position=i) for i, spec in enumerate(plan.tasks)
        ]
        baseline = None
        if ws is not None and run.services.validator is not None and run.project.gates.configured():
            baseline = await self._baseline(run, base_sha)
        return tasks, baseline, usage

    def _check_routes(self, run: GoalRun, plan: Plan) -> None:
        """Every backend and model the plan names must exist before anything runs."""
        make = run.services.backend_for
        routes = {(s.backend, s.model) for s in plan.tasks if s.backend or s.model}
        if make is None or not routes:
            return
        problems = []
        for backend, model in sorted(routes):
            try:
                make(backend or run.services.backend.name, model)
            except ConfigError as exc:
                tasks = [s.id for s in plan.tasks if (s.backend, s.model) == (backend, model)]
                problems.append(f"task {', '.join(tasks)}: {exc}")
        if problems:
            raise PlanError(problems)

    async def _baseline(self, run: GoalRun, sha: str) -> Baseline:
        ws, validator = run.services.workspace, run.services.validator
        assert ws is not None and validator is not None
        worktree = await ws.add_worktree(attempts.worktree_name(run.goal.id, "baseline"), sha)
        try:
            return await validator.baseline(worktree, goal_id=run.goal.id, sha=sha)
        finally:
            await asyncio.shield(ws.remove_worktree(worktree))

    def _prepared(
        self, run: GoalRun, result: tuple[list[Task], Baseline | None, Usage] | BaseException
    ) -> None:
        if isinstance(result, BaseException):
            kind = (
                EventKind.PLAN_REJECTED if isinstance(result, PlanError) else EventKind.GOAL_FAILED
            )
            self._emit(run, kind, str(result))
            if isinstance(result, ConfigError):
                # A rejected key or a spend cap: every goal of the project would fail the same
                # way until the user fixes it.
                self.user_errors[run.goal.id] = result
                self.pause_project(run.project.id, str(result))
            self._fail_goal(run, str(result))
            return
        tasks, baseline, usage = result
        self._spent(run, usage, planning=True)
        run.baseline = baseline
        run.dag = Dag(
            tasks,
            max_nodes=max(run.services.limits.max_tasks, len(tasks)),
            check=False,  # _prepare validated the plan (check_plan) with the same rules
        )
        run.tasks = {t.id: t for t in tasks}
        waits = run.project.require_plan_approval
        run.goal = run.goal.evolve(
            state=GoalState.AWAITING_APPROVAL if waits else GoalState.RUNNING
        )
        records: list[Any] = [run.goal, *tasks]
        events = [
            self._event(
                run,
                EventKind.PLAN_CREATED,
                f"{len(tasks)} tasks: {run.goal.summary}",
                data={"tasks": [t.id for t in tasks]},
            ),
            self._event(
                run,
                EventKind.PLAN_AWAITING_APPROVAL,
                "the plan waits for approval (blitz approve, the API or the dashboard)",
            )
            if waits
            else self._event(
                run, EventKind.GOAL_STARTED, f"running on {run.goal.branch or 'no branch'}"
            ),
        ]
        if baseline is not None:
            records.append(baseline)
            failing = [r.name for r in baseline.results if not r.passed]
            events.append(
                self._event(
                    run,
                    EventKind.BASELINE_RECORDED,
                    "base branch: "
                    + (f"already failing: {', '.join(failing)}" if failing else "all gates pass"),
                    data={"failing": failing},
                )
            )
        self.store.write(*records, events=events)
        if waits:
            return
        self._feed(run)
        self._settle(run)

    # -- resume -----------------------------------------------------------------------------

    def _rebuild(self, run: GoalRun, tasks: list[Task], committed: dict[str, str]) -> list[Task]:
        """Settle the stored tasks against the goal branch and rebuild the graph; return the
        tasks whose state changed (committed but not recorded; interrupted while running)."""
        statuses: dict[str, NodeStatus] = {}
        fixed: list[Task] = []
        for t in tasks:
            if t.id in committed and t.state is not TaskState.SUCCEEDED:
                t = t.evolve(state=TaskState.SUCCEEDED, commit=committed[t.id])
                fixed.append(t)
            elif t.state is TaskState.RUNNING:
                t = t.evolve(state=TaskState.READY)
                fixed.append(t)
            statuses[t.id] = _node_status(t)
            run.tasks[t.id] = t
        run.dag = Dag.restore(
            tasks,
            statuses,
            max_nodes=max(run.services.limits.max_tasks, len(tasks)),
            check=False,  # validated when it was planned; a 100k-task resume must stay fast
        )
        return fixed

    async def _reconcile(self, run: GoalRun, tasks: list[Task]) -> None:
        goal, ws = run.goal, run.services.workspace
        run.baseline = self.store.load_baseline(goal.id)
        committed: dict[str, str] = {}
        if ws is not None and goal.branch:
            committed = await ws.committed_tasks(goal.branch, goal.base_sha, goal.id)
        run.usage = self.store.usage(goal.id) + goal.usage
        for a in self.store.load_attempts(goal.id, states=[AttemptState.RUNNING]):
            self.store.write(
                a.evolve(state=AttemptState.CRASHED, error="interrupted: blitz stopped")
            )
        if ws is not None:
            # Every worktree of this goal is stale now, including any whose attempt never
            # reached the store: they are named after the goal.
            prefix = attempts.worktree_name(goal.id, "")
            if ws.worktrees_dir.is_dir():
                for stale_dir in sorted(ws.worktrees_dir.glob(f"{prefix}*")):
                    await ws.remove_worktree(stale_dir)
        recoveries = self.store.load_recoveries(goal.id)
        run.recoveries = len(recoveries)
        with _gc_paused():
            fixed = self._rebuild(run, tasks, committed)
        for t in fixed:
            kind = (
                EventKind.TASK_SUCCEEDED
                if t.state is TaskState.SUCCEEDED
                else EventKind.TASK_REQUEUED
            )
            note = (
                f"found its commit {t.commit[:10]} on the goal branch"
                if t.commit
                else "re-queued: its attempt was interrupted"
            )
            self.store.write(t, events=[self._event(run, kind, note, task=t)])
        if goal.state is GoalState.FINISHING:
            self._spawn(run, self._publish(run), self._published)
            return
        if goal.state is GoalState.AWAITING_APPROVAL:
            return  # nothing runs until a person approves the plan
        recovered = {r.attempt_id for r in recoveries}
        for t in list(run.tasks.values()):
            if t.state is TaskState.CRASHED:
                self._crashed(run, t, "interrupted", requeue_only=True)
            elif t.state is TaskState.FAILED:
                # A failure whose recovery was never planned (the process died first).
                attempt_list = self.store.load_attempts(goal.id, t.id)
                if attempt_list and attempt_list[-1].id not in recovered:
                    self._recover(run, t, attempt_list[-1], attempt_list[-1].error, ())
        self._feed(run)
        self._settle(run)

    # -- the loop's helpers -----------------------------------------------------------------

    def _spawn(
        self, run: GoalRun, coro: Any, then: Callable[..., None], *args: Any
    ) -> asyncio.Task[Any]:
        run.jobs += 1
        job = asyncio.ensure_future(coro)

        def done(j: asyncio.Task[Any]) -> None:
            def apply() -> None:
                run.jobs -= 1
                if j.cancelled():
                    then(run, *args, asyncio.CancelledError())
                elif j.exception() is not None:
                    then(run, *args, j.exception())
                else:
                    then(run, *args, j.result())

            self._inbox.append(apply)
            self._wake()

        job.add_done_callback(done)
        return job

    def _feed(self, run: GoalRun) -> None:
        """Hand every newly ready task of a goal to the router."""
        if run.dag is None or run.cancelled:
            return
        ready = run.dag.pop_ready()
        if not ready:
            return
        if run.budget_stop:
            self._skip_over_budget(run, ready)
            return
        goal_id, project_id = run.goal.id, run.project.id
        now = self.clock.time()
        tasks = run.tasks
        submit = self.router.submit
        changed = []
        events = []
        for task_id in ready:
            task = tasks[task_id]
            if task.state is not TaskState.READY:
                task = tasks[task_id] = task.evolve(state=TaskState.READY)
            changed.append(task)
            events.append(
                Event(
                    kind=EventKind.TASK_READY,
                    goal_id=goal_id,
                    project_id=project_id,
                    task_id=task_id,
                    message="ready",
                    ts=now,
                )
            )
            submit(
                WorkItem(
                    goal_id=goal_id,
                    task_id=task_id,
                    project_id=project_id,
                    priority=task.priority,
                    backend=self._route(run, task),
                )
            )
        self.store.write(*changed, events=events)

    def _route(self, run: GoalRun, task: Task) -> str:
        """The backend a task runs on: its own choice, else the goal's; the project's fallback
        while that backend's breaker is open."""
        name = task.backend or run.services.backend.name
        fallback = run.project.fallback_backend
        if fallback and fallback != name and not self.breakers.get(backend_key(name)).would_allow():
            self._emit(
                run,
                EventKind.TASK_ROUTED,
                f"{name} is unavailable (its breaker is open): running on {fallback}",
                task=task,
            )
            return fallback
        return name

    def _reroute(self, backend: str) -> None:
        """A backend's breaker opened: move the queued tasks of projects with a fallback."""
        for run in list(self.runs.values()):
            fallback = run.project.fallback_backend
            if not fallback or fallback == backend:
                continue
            for item in self.router.withdraw(run.goal.id):
                if item.backend == backend:
                    item = dataclasses.replace(item, backend=fallback)
                    self._emit(
                        run,
                        EventKind.TASK_ROUTED,
                        f"{backend} is unavailable (its breaker is open): running on {fallback}",
                        task=run.tasks[item.task_id],
                    )
                self.router.submit(item)

    def _backend(self, run: GoalRun, name: str, model: str) -> AgentBackend:
        services = run.services
        if services.backend_for is None or (name == services.backend.name and not model):
            return services.backend
        return services.backend_for(name, model)

    # -- spending -----------------------------------------------------------------------------

    def _spent(self, run: GoalRun, usage: Usage, *, planning: bool = False) -> None:
        """Count model usage against the goal (and its budgets). Planning and recovery usage is
        kept on the goal record; attempts keep their own."""
        if usage == _NO_USAGE:
            return
        run.usage += usage
        if planning:
            run.goal = run.goal.evolve(usage=run.goal.usage + usage)
            self.store.write(run.goal)
        services = run.services
        goal_limit = services.goal_budget_usd
        if goal_limit is not None and run.usage.cost_usd >= goal_limit and not run.budget_stop:
            run.budget_stop = (
                f"the goal's budget of ${goal_limit:.2f} is spent (${run.usage.cost_usd:.2f})"
            )
            self._emit(
                run,
                EventKind.BUDGET_EXCEEDED,
                run.budget_stop + "; no new work starts, running attempts finish",
            )
            withdrawn = self.router.withdraw(run.goal.id)
            if run.dag is not None:
                for item in withdrawn:
                    if run.dag.status(item.task_id) is NodeStatus.RUNNING:
                        run.dag.requeue(item.task_id)
                self._feed(run)
        project_id = run.project.id
        self._project_spent[project_id] = self._project_spent.get(project_id, 0.0) + usage.cost_usd
        project_limit = services.project_budget_usd
        if project_limit is not None and project_id not in self._paused:
            spent = self._project_spent[project_id]
            if spent >= project_limit:
                reason = (
                    f"the project's budget of ${project_limit:.2f} is spent (${spent:.2f}); "
                    "raise [budget] project_usd in blitz.toml to go on"
                )
                self._emit(run, EventKind.BUDGET_EXCEEDED, reason)
                self.pause_project(run.project.id, reason)

    def _skip_over_budget(self, run: GoalRun, ready: list[str]) -> None:
        assert run.dag is not None
        while ready:
            more: list[str] = []
            for task_id in ready:
                task = run.tasks[task_id]
                self._set_task(
                    run,
                    task.evolve(state=TaskState.SKIPPED, reason=OVER_BUDGET + run.budget_stop),
                    EventKind.TASK_SKIPPED,
                )
                more.extend(run.dag.skip(task_id))
            ready = more + run.dag.pop_ready()

    def _feed_succeeded(self) -> None:
        """Feed and settle each goal whose tasks succeeded since the last step."""
        runs = list(self._unfed.values())
        self._unfed.clear()
        for run in runs:
            self._feed(run)
            self._settle(run)

    def _dispatch(self) -> None:
        if self._draining:
            return
        taken = self.router.take()
        # take() may have let a breaker's cooldown end (open -> half-open) to admit a probe: log
        # that before the probe's task.started, not when the probe's outcome is recorded.
        self._breaker_changes(self.breakers.poll())
        if not taken:
            return
        now = self.clock.time()
        records: list[Task | Attempt] = []
        events: list[Event] = []
        started: list[tuple[GoalRun, WorkItem, Task, list[Attempt]]] = []
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
                for candidate, (backend, model) in exploring.candidates(run, task, item.backend)
            ]
            records += (task, *made)
            events.append(
                Event(
                    kind=EventKind.TASK_STARTED,
                    goal_id=task.goal_id,
                    project_id=item.project_id,
                    task_id=task.id,
                    attempt_id=made[0].id,
                    message=f"attempt {task.attempts}"
                    + (f": best of {len(made)}" if len(made) > 1 else ""),
                    data={"attempts": [a.id for a in made]} if len(made) > 1 else {},
                    ts=now,
                )
            )
            started.append((run, item, task, made))
        # One write for the whole batch: each task's record still goes with its event.
        self.store.write(*records, events=events)
        for run, item, task, made in started:
            if len(made) == 1:
                job = self._spawn(
                    run,
                    attempts.run_attempt(self._context(run, task, made[0])),
                    self._attempt_done,
                    item,
                    made[0],
                )
            else:
                job = self._spawn(
                    run, self._explore(run, task, made), self._explored, item, task.id, made
                )
            run.attempt_jobs[task.id] = job

    def _context(
        self,
        run: GoalRun,
        task: Task,
        attempt: Attempt,
        *,
        selection: Selection | None = None,
        share: int = 1,
    ) -> attempts.AttemptContext:
        services = run.services
        budget = services.goal_budget_usd
        return attempts.AttemptContext(
            project=run.project,
            goal=run.goal,
            task=task,
            attempt=attempt,
            backend=self._backend(run, attempt.backend, attempt.model),
            workspace=services.workspace,
            validator=services.validator,
            baseline=run.baseline,
            timeout=services.limits.attempt_timeout,
            budget_usd=None if budget is None else max(0.0, budget - run.usage.cost_usd) / share,
            model=attempt.model,
            selection=selection,
            label=exploring.label(attempt),
            meter=self._meters.setdefault(attempt.id, attempts.Meter()),
            emit=self._write_event,
            now=self.clock.time,
            fault=self._fault,
        )

    async def _explore(
        self, run: GoalRun, task: Task, made: list[Attempt]
    ) -> exploring.Exploration:
        return await exploring.explore(self, run, task, made)

    def _write_event(self, event: Event) -> None:
        self.store.write(events=(event,))

    def _attempt_done(
        self,
        run: GoalRun,
        item: WorkItem,
        attempt: Attempt,
        result: attempts.AttemptReport | BaseException,
    ) -> None:
        run.attempt_jobs.pop(item.task_id, None)
        task = run.tasks[item.task_id]
        if isinstance(result, BaseException):
            self._job_lost(run, item, [attempt], result)
            return
        self._meters.pop(attempt.id, None)
        final = result.attempt
        if final.usage != _NO_USAGE:
            self._spent(run, final.usage)
        outcome = result.outcome
        self._breaker_changes(
            self.router.done(item, outcome=attempts.ROUTER_OUTCOME[outcome], error=result.error)
        )
        if outcome is attempts.Outcome.SUCCEEDED and not run.cancelled:
            self._succeeded(run, task, final)  # writes the attempt with the task
            self._unfed[run.goal.id] = run  # fed and settled after this step's other reports
            return
        self.store.write(
            final,
            events=[
                self._event(
                    run,
                    EventKind.ATTEMPT_FINISHED,
                    f"attempt {final.number}: {outcome.value}",
                    task=task,
                    attempt_id=final.id,
                    data={
                        "outcome": outcome.value,
                        "commit": final.commit,
                        "cost_usd": final.usage.cost_usd,
                    }
                    | ({"error": result.error[:2000]} if result.error else {}),
                )
            ],
        )
        if run.cancelled:
            self._set_task(run, task.evolve(state=TaskState.CANCELLED, reason="cancelled"))
        elif outcome is attempts.Outcome.CONFLICT:
            self._conflict(run, task, final, result)
        elif outcome is attempts.Outcome.CRASHED:
            self._crashed(run, task, result.error)
        elif outcome is attempts.Outcome.CONFIG:
            self._requeue(run, task, f"waiting: {result.error}")
            self.pause_project(run.project.id, result.error)
        else:
            self._failed(run, task, final, result.error, result.messages)
        self._settle(run)

    def _job_lost(
        self, run: GoalRun, item: WorkItem, made: list[Attempt], exc: BaseException
    ) -> None:
        """An attempt job ended by an exception: cancelled (the goal was cancelled, or blitz is
        shutting down) or a bug in blitz."""
        task = run.tasks[item.task_id]
        cancelled = isinstance(exc, asyncio.CancelledError)
        error = "cancelled" if cancelled else f"engine error: {exc!r}"
        if cancelled and self._draining:
            error = "interrupted: blitz stopped"
        finals = [
            a.evolve(
                state=AttemptState.CANCELLED if cancelled else AttemptState.CRASHED,
                error=error,
                finished_at=self.clock.time(),
                usage=self._metered(a),
            )
            for a in made
        ]
        spent = sum((a.usage for a in finals), Usage())
        if spent != _NO_USAGE:
            self._spent(run, spent)
        self._breaker_changes(
            self.router.done(item, outcome="cancelled" if cancelled else "crashed", error=error)
        )
        self.store.write(*finals)
        if cancelled and self._draining and not run.cancelled:
            self._requeue(run, task, "interrupted by shutdown; re-queued")
        elif cancelled or run.cancelled:
            if task.state is TaskState.RUNNING:
                self._set_task(run, task.evolve(state=TaskState.CANCELLED, reason="cancelled"))
        else:
            self._crashed(run, task, error)
        self._settle(run)

    def _metered(self, attempt: Attempt) -> Usage:
        meter = self._meters.pop(attempt.id, None)
        return meter.usage if meter is not None else Usage()

    def _explored(
        self,
        run: GoalRun,
        item: WorkItem,
        task_id: str,
        made: list[Attempt],
        result: exploring.Exploration | BaseException,
    ) -> None:
        exploring.explored(self, run, item, task_id, made, result)

    # -- outcomes ---------------------------------------------------------------------------

    def _succeeded(self, run: GoalRun, task: Task, attempt: Attempt) -> None:
        assert run.dag is not None
        task = task.evolve(state=TaskState.SUCCEEDED, commit=attempt.commit, crashes=0, reason="")
        run.tasks[task.id] = task
        run.dag.complete(task.id)
        goal_id, project_id, now = task.goal_id, run.project.id, self.clock.time()
        commit, cost = attempt.commit, attempt.usage.cost_usd
        events = [
            Event(
                kind=EventKind.ATTEMPT_FINISHED,
                goal_id=goal_id,
                project_id=project_id,
                task_id=task.id,
                attempt_id=attempt.id,
                message=f"attempt {attempt.number}: succeeded",
                data={"outcome": "succeeded", "commit": commit, "cost_usd": cost},
                ts=now,
            ),
            Event(
                kind=EventKind.TASK_SUCCEEDED,
                goal_id=goal_id,
                project_id=project_id,
                task_id=task.id,
                attempt_id=attempt.id,
                message=f"committed {commit[:10]}" if commit else "succeeded (no change)",
                data={"commit": commit, "cost_usd": cost},
                ts=now,
            ),
        ]
        if attempt.commit:
            events.append(
                self._event(
                    run,
                    EventKind.CHECKPOINT_INTEGRATED,
                    f"{attempt.commit[:10]} on {run.goal.branch}",
                    task=task,
                    attempt_id=attempt.id,
                    data={"commit": attempt.commit},
                )
            )
        self.store.write(task, attempt, events=events)

    def _conflict(
        self, run: GoalRun, task: Task, attempt: Attempt, result: attempts.AttemptReport
    ) -> None:
        assert run.dag is not None
        limit = run.services.limits.max_conflict_reruns
        if task.conflicts < limit:
            task = task.evolve(state=TaskState.READY, conflicts=task.conflicts + 1)
            run.tasks[task.id] = task
            run.dag.requeue(task.id)
            self.store.write(
                task,
                events=[
                    self._event(
                        run,
                        EventKind.TASK_REQUEUED,
                        f"re-running on the new goal branch head ({task.conflicts}/{limit}): "
                        + result.error,
                        task=task,
                    )
                ],
            )
            self._feed(run)
        else:
            self._failed(
                run,
                task,
                attempt,
                f"{result.error}\n(re-ran {limit} times on the new head; still conflicting)",
                result.messages,
            )

    def _requeue(self, run: GoalRun, task: Task, message: str) -> None:
        """Put a running task back in the queue as it was (the work was not at fault)."""
        assert run.dag is not None
        task = task.evolve(state=TaskState.READY)
        run.tasks[task.id] = task
        if run.dag.status(task.id) is NodeStatus.RUNNING:
            run.dag.requeue(task.id)
        self.store.write(
            task, events=[self._event(run, EventKind.TASK_REQUEUED, message, task=task)]
        )
        self._feed(run)

    def _crashed(self, run: GoalRun, task: Task, error: str, *, requeue_only: bool = False) -> None:
        assert run.dag is not None
        if task.state is TaskState.RUNNING:
            task = task.evolve(state=TaskState.CRASHED, crashes=task.crashes + 1, reason=error)
            self._set_task(run, task, EventKind.TASK_CRASHED, error)
        if task.crashes <= run.services.limits.max_crash_retries or requeue_only:
            task = task.evolve(state=TaskState.READY)
            run.tasks[task.id] = task
            if run.dag.status(task.id) is NodeStatus.RUNNING:
                run.dag.requeue(task.id)
            self.store.write(
                task,
                events=[
                    self._event(
                        run,
                        EventKind.TASK_REQUEUED,
                        f"retrying after a crash ({task.crashes})",
                        task=task,
                    )
                ],
            )
            self._feed(run)
        else:
            task = task.evolve(
                state=TaskState.FAILED, reason=f"crashed {task.crashes} times: {error}"
            )
            run.tasks[task.id] = task
            if run.dag.status(task.id) is NodeStatus.RUNNING:
                run.dag.fail(task.id)
            self.store.write(
                task, events=[self._event(run, EventKind.TASK_FAILED, task.reason, task=task)]
            )

    def _failed(
        self, run: GoalRun, task: Task, attempt: Attempt, error: str, messages: tuple[str, ...]
    ) -> None:
        assert run.dag is not None
        task = task.evolve(state=TaskState.FAILED, reason=error[:4000])
        run.tasks[task.id] = task
        run.dag.fail(task.id)
        self.store.write(
            task,
            events=[
                self._event(
                    run,
                    EventKind.TASK_FAILED,
                    error.splitlines()[0] if error else "failed",
                    task=task,
                    attempt_id=attempt.id,
                    data={"error": error[:4000]},
                )
            ],
        )
        self._recover(run, task, attempt, error, messages)

    def _recover(
        self, run: GoalRun, task: Task, attempt: Attempt, error: str, messages: tuple[str, ...]
    ) -> None:
        limits = run.services.limits
        if (
            task.recoveries >= limits.max_recoveries_per_task
            or run.recoveries >= limits.max_recoveries_per_goal
        ):
            which = "task" if task.recoveries >= limits.max_recoveries_per_task else "goal"
            self._emit(
                run,
                EventKind.RECOVERY_EXHAUSTED,
                f"no more recoveries for this {which}; the task stays failed",
                task=task,
            )
            return
        run.recoveries += 1
        task = task.evolve(recoveries=task.recoveries + 1)
        run.tasks[task.id] = task
        self.store.write(
            task,
            events=[
                self._event(
                    run,
                    EventKind.RECOVERY_REQUESTED,
                    error.splitlines()[0] if error else "",
                    task=task,
                    attempt_id=attempt.id,
                )
            ],
        )
        request = RecoveryRequest(
            goal_id=run.goal.id,
            goal=run.goal.title,
            task=task,
            attempt=attempt,
            error=error,
            gates=attempt.gates,
            diff=attempt.diff,
            messages=messages,
            earlier=tuple(self.store.load_recoveries(run.goal.id)),
            task_ids=tuple(run.tasks),
        )
        self._spawn(
            run, run.services.planner.recover(request), self._recovered, task.id, attempt.id
        )

    def _recovered(self, run: GoalRun, task_id: str, attempt_id: str, result: Any) -> None:
        assert run.dag is not None
        task = run.tasks[task_id]
        if run.cancelled or task.state is not TaskState.FAILED:
            self._settle(run)
            return
        if isinstance(result, BaseException):
            self._emit(
                run, EventKind.RECOVERY_EXHAUSTED, f"recovery planning failed: {result}", task=task
            )
            self._settle(run)
            return
        self._spent(run, result.usage, planning=True)
        plan: RecoveryPlan = result.recovery
        try:
            new_tasks = self._apply_recovery(run, task, plan)
        except PlanError as exc:
            self._emit(
                run, EventKind.RECOVERY_EXHAUSTED, f"recovery plan rejected: {exc}", task=task
            )
            self._settle(run)
            return
        recovery = Recovery(
            id=new_id("r"),
            goal_id=run.goal.id,
            task_id=task.id,
            attempt_id=attempt_id,
            root_cause=plan.root_cause,
            action=plan.action,
            guidance=plan.guidance,
            new_tasks=tuple(t.id for t in new_tasks),
            created_at=self.clock.time(),
        )
        self.store.write(
            recovery,
            events=[
                self._event(
                    run,
                    EventKind.RECOVERY_PLANNED,
                    f"{plan.action.value}: {plan.root_cause}",
                    task=task,
                    data={
                        "action": plan.action.value,
                        "root_cause": plan.root_cause,
                        "new_tasks": list(recovery.new_tasks),
                    },
                )
            ],
        )
        if plan.action is RecoveryAction.ABORT:
            run.aborted = True
            self.cancel(run.goal.id, reason=f"recovery aborted the goal: {plan.root_cause}")
            run.goal = run.goal.evolve(error=f"aborted: {plan.root_cause}")
        self._feed(run)
        self._settle(run)

    def _apply_recovery(self, run: GoalRun, task: Task, plan: RecoveryPlan) -> list[Task]:
        assert run.dag is not None
        dag = run.dag
        task = task.evolve(root_cause=plan.root_cause)
        new_tasks = [
            _task(run.goal.id, spec, origin=f"recovery:{task.id}", position=len(run.tasks) + i)
            for i, spec in enumerate(plan.tasks)
        ]
        nodes = [Node(id=t.id, depends_on=t.depends_on, priority=t.priority) for t in new_tasks]
        if len(run.tasks) + len(new_tasks) > max(run.services.limits.max_tasks, len(run.tasks)):
            raise PlanError(
                [f"recovery would grow the goal past {run.services.limits.max_tasks} tasks"]
            )
        action = plan.action
        if action is RecoveryAction.RETRY:
            dag.retry(task.id)
            task = task.evolve(state=TaskState.READY, guidance=plan.guidance)
        elif action is RecoveryAction.INSERT:
            dag.inject(nodes, before=task.id)
            task = task.evolve(
                state=TaskState.PENDING,
                guidance=plan.guidance,
                depends_on=dag.node(task.id).depends_on,
            )
        elif action is RecoveryAction.REPLACE:
            dependents = dag.dependents(task.id)
            dag.inject(nodes, replace=task.id)
            task = task.evolve(
                state=TaskState.REPLACED, reason=f"replaced by {', '.join(t.id for t in new_tasks)}"
            )
            for dep_id in dependents:
                dep = run.tasks[dep_id]
                run.tasks[dep_id] = dep.evolve(depends_on=dag.node(dep_id).depends_on)
                self.store.write(run.tasks[dep_id])
        elif action is RecoveryAction.SKIP:
            dag.skip(task.id)
            task = task.evolve(
                state=TaskState.SKIPPED, reason=f"skipped by recovery: {plan.root_cause}"
            )
        elif action is RecoveryAction.ABORT:
            task = task.evolve(reason=f"aborted: {plan.root_cause}")
        run.tasks[task.id] = task
        for t in new_tasks:
            run.tasks[t.id] = t
        events = [
            self._event(
                run,
                EventKind.TASK_INJECTED,
                f"added by recovery of {task.id}: {t.title}",
                task=t,
                data={"depends_on": list(t.depends_on)},
            )
            for t in new_tasks
        ]
        if task.state is TaskState.SKIPPED:
            events.append(self._event(run, EventKind.TASK_SKIPPED, task.reason, task=task))
        self.store.write(task, *new_tasks, events=events)
        return new_tasks

    # -- settling and finishing ---------------------------------------------------------------

    def _settle(self, run: GoalRun) -> None:
        """Detect deadlock and completion of a goal after anything changed."""
        stopped = GoalState.FAILED if run.aborted else GoalState.CANCELLED
        if run.jobs or run.goal.state in _SETTLED_GOALS:
            if run.cancelled and not run.jobs and run.goal.state not in _DONE_GOALS:
                self._end_goal(run, stopped, run.goal.error or "cancelled")
            return
        if run.cancelled:
            self._end_goal(run, stopped, run.goal.error or "cancelled")
            return
        dag = run.dag
        if dag is None:
            return
        if dag.deadlocked():
            blocked = dag.block_unreachable()
            events = []
            for task_id, why in blocked.items():
                task = run.tasks[task_id].evolve(state=TaskState.SKIPPED, reason=BLOCKED + why)
                run.tasks[task_id] = task
                self.store.write(task)
                events.append(self._event(run, EventKind.TASK_SKIPPED, task.reason, task=task))
            events.insert(
                0,
                self._event(
                    run,
                    EventKind.DEADLOCK_DETECTED,
                    f"nothing can run: skipped {len(blocked)} blocked task(s)",
                    data={"blocked": blocked},
                ),
            )
            self.store.write(events=events)
        if dag.finished():
            run.goal = run.goal.evolve(state=GoalState.FINISHING)
            self.store.write(run.goal)
            self._spawn(run, self._publish(run), self._published)

    async def _publish(self, run: GoalRun) -> Published:
        await self.store.flush()
        if run.services.publish is None:
            return Published()
        report = GoalReport(
            project=run.project,
            goal=run.goal,
            tasks=tuple(run.tasks.values()),
            attempts=tuple(self.store.load_attempts(run.goal.id)),
            recoveries=tuple(self.store.load_recoveries(run.goal.id)),
            scripted=run.services.scripted,
        )
        published: Published = await run.services.publish(report)
        return published

    def _published(self, run: GoalRun, result: Published | BaseException) -> None:
        failed = [
            t
            for t in run.tasks.values()
            if t.state is TaskState.FAILED or t.reason.startswith((BLOCKED, OVER_BUDGET))
        ]
        events = []
        if isinstance(result, BaseException):
            error = f"publishing failed: {result}"
            events.append(self._event(run, EventKind.GOAL_FAILED, error))
            self._end_goal(run, GoalState.FAILED, error, events=events)
            return
        if result.pushed:
            events.append(self._event(run, EventKind.PR_PUSHED, f"pushed {run.goal.branch}"))
        if result.pr_url:
            events.append(
                self._event(run, EventKind.PR_OPENED, result.pr_url, data={"url": result.pr_url})
            )
        if result.description_path:
            events.append(
                self._event(
                    run,
                    EventKind.PR_WRITTEN,
                    result.description_path,
                    data={"path": result.description_path},
                )
            )
        run.goal = run.goal.evolve(pr_url=result.pr_url or result.description_path)
        if failed:
            error = f"{len(failed)} task(s) did not succeed: {', '.join(t.id for t in failed)}"
            self._end_goal(run, GoalState.FAILED, error, events=events)
        else:
            self._end_goal(run, GoalState.SUCCEEDED, "", events=events)

    def _end_goal(
        self, run: GoalRun, state: GoalState, error: str, *, events: Iterable[Event] = ()
    ) -> None:
        if run.goal.state is not state:
            run.goal = run.goal.evolve(state=state, error=error, finished_at=self.clock.time())
        kind = {
            GoalState.SUCCEEDED: EventKind.GOAL_SUCCEEDED,
            GoalState.FAILED: EventKind.GOAL_FAILED,
            GoalState.CANCELLED: EventKind.GOAL_CANCELLED,
        }[state]
        done = self._event(
            run,
            kind,
            error or "all tasks done",
            data={"cost_usd": run.usage.cost_usd, "pr": run.goal.pr_url},
        )
        self.store.write(run.goal, events=[*events, done])
        self.router.withdraw(run.goal.id)
        self.runs.pop(run.goal.id, None)
        self.finished[run.goal.id] = run.goal

    def _fail_goal(self, run: GoalRun, error: str) -> None:
        self._end_goal(run, GoalState.FAILED, error)

    # -- commands and breakers ----------------------------------------------------------------

    def _poll_commands(self) -> None:
        try:
            commands = self.store.take_commands(list(self.runs))
            projects = {p.id: p for p in self.store.list_projects()}
        except Exception:  # the store may be briefly locked by another process; try next time
            return
        for command in commands:
            self._command(command.goal_id, command.kind)
        # Follow `blitz projects pause/resume` made by other processes.
        for project_id in {run.project.id for run in self.runs.values()}:
            stored = projects.get(project_id)
            if stored is None or stored.paused == (project_id in self._paused):
                continue
            if stored.paused:
                self._paused[project_id] = stored.pause_reason or "paused"
                self.router.pause_project(project_id)
            else:
                del self._paused[project_id]
                self.router.resume_project(project_id)
                for run in self.runs.values():
                    if run.project.id == project_id:
                        run.project = stored

    def pause_project(self, project_id: str, reason: str) -> None:
        """Stop starting tasks of a project until it is resumed (queued tasks wait)."""
        if project_id in self._paused:
            return
        self._paused[project_id] = reason
        self.router.pause_project(project_id)
        run = next((r for r in self.runs.values() if r.project.id == project_id), None)
        stored = self.store.get_project(project_id) or (run.project if run else None)
        if stored is None:
            return
        paused = dataclasses.replace(stored, paused=True, pause_reason=reason)
        for r in self.runs.values():
            if r.project.id == project_id:
                r.project = paused
        self.store.write(
            paused,
            events=[
                Event(
                    kind=EventKind.PROJECT_PAUSED,
                    project_id=project_id,
                    message=f"{paused.name} paused: {reason}",
                    ts=self.clock.time(),
                )
            ],
        )

    def blocked(self) -> dict[str, str]:
        """Goals that cannot move because their project is paused and nothing of theirs runs:
        goal id -> the pause reason."""
        held = {}
        for goal_id, run in self.runs.items():
            reason = self._paused.get(run.project.id)
            if reason is not None and not run.jobs:
                held[goal_id] = reason
        return held

    def reset_breaker(self, key: str) -> BreakerRecord:
        """Close a breaker by hand (its cause is fixed): the work it held back may start."""
        self._breaker_changes(self.breakers.reset(key))
        self._wake()
        return self.breakers.get(key).to_record()

    def _breaker_changes(self, changes: Iterable[Change]) -> None:
        for change in changes:
            self._breaker_changed(change)

    def _breaker_changed(self, change: Change) -> None:
        kind = {
            BreakerState.OPEN: EventKind.BREAKER_OPENED,
            BreakerState.HALF_OPEN: EventKind.BREAKER_HALF_OPEN,
            BreakerState.CLOSED: EventKind.BREAKER_CLOSED,
        }[change.new]
        record = self.breakers.get(change.key).to_record()
        self.store.write(
            record,
            events=[
                Event(
                    kind=kind,
                    message=f"{change.key}: {change.reason}",
                    data={"key": change.key, "from": change.old.value, "to": change.new.value},
                    ts=self.clock.time(),
                )
            ],
        )
        if change.new is BreakerState.OPEN and change.key.startswith(backend_key("")):
            self._reroute(change.key.removeprefix(backend_key("")))

    # -- records and events ---------------------------------------------------------------------

    def _set_task(
        self, run: GoalRun, task: Task, kind: EventKind | None = None, message: str = ""
    ) -> None:
        run.tasks[task.id] = task
        if kind is None:
            kind = {
                TaskState.CANCELLED: EventKind.TASK_SKIPPED,
                TaskState.SKIPPED: EventKind.TASK_SKIPPED,
                TaskState.FAILED: EventKind.TASK_FAILED,
            }.get(task.state, EventKind.TASK_REQUEUED)
        self.store.write(
            task,
            events=[self._event(run, kind, message or task.reason or task.state.value, task=task)],
        )
        if run.dag is not None and task.state is TaskState.CANCELLED and task.id in run.dag:
            status = run.dag.status(task.id)
            if status in (
                NodeStatus.WAITING,
                NodeStatus.READY,
                NodeStatus.RUNNING,
                NodeStatus.FAILED,
            ):
                with contextlib.suppress(BlitzError):
                    run.dag.skip(task.id)

    def _event(
        self,
        run: GoalRun,
        kind: EventKind,
        message: str,
        *,
        task: Task | None = None,
        attempt_id: str = "",
        data: dict[str, Any] | None = None,
    ) -> Event:
        return Event(
            kind=kind,
            goal_id=run.goal.id,
            project_id=run.project.id,
            task_id=task.id if task else "",
            attempt_id=attempt_id,
            message=message,
            data=data or {},
            ts=self.clock.time(),
        )

    def _emit(
        self, run: GoalRun, kind: EventKind, message: str, *, task: Task | None = None
    ) -> None:
        self.store.write(events=[self._event(run, kind, message, task=task)])


_NO_USAGE = Usage()

_TIMER_SLACK = 0.001  # seconds the loop's timer may fire after the wanted time

_DONE_GOALS = (GoalState.SUCCEEDED, GoalState.FAILED, GoalState.CANCELLED)
_SETTLED_GOALS = (GoalState.FINISHING, *_DONE_GOALS)  # no task of the goal starts any more


def _task(goal_id: str, spec: TaskSpec, *, origin: str, position: int) -> Task:
    return Task(
        id=spec.id,
        goal_id=goal_id,
        title=spec.title,
        instructions=spec.instructions,
        depends_on=spec.depends_on,
        priority=spec.priority,
        checks=spec.checks,
        files=spec.files,
        origin=origin,
        allow_empty=spec.allow_empty,
        position=position,
        backend=spec.backend,
        model=spec.model,
        explore=spec.attempts,
    )


_NODE_STATUS = {
    TaskState.PENDING: NodeStatus.WAITING,
    TaskState.READY: NodeStatus.READY,
    TaskState.RUNNING: NodeStatus.RUNNING,
    TaskState.SUCCEEDED: NodeStatus.DONE,
    TaskState.FAILED: NodeStatus.FAILED,
    TaskState.CRASHED: NodeStatus.FAILED,
    TaskState.SKIPPED: NodeStatus.SKIPPED,
    TaskState.REPLACED: NodeStatus.REPLACED,
    TaskState.CANCELLED: NodeStatus.SKIPPED,
}


def _node_status(task: Task) -> NodeStatus:
    if task.state is TaskState.SKIPPED and task.reason.startswith(BLOCKED):
        return NodeStatus.BLOCKED
    return _NODE_STATUS[task.state]


__all__ = [
    "GLOBAL",
    "Engine",
    "GoalReport",
    "Limits",
    "Published",
    "Services",
    "backend_key",
    "project_key",
]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a bulk load of records: building 100k objects
    otherwise triggers full collections that re-scan every object already loaded."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
