"""The engine: drives every goal of this process from plan to pull request.

One loop owns all in-memory state. Work that waits on the outside world (planning, attempts,
recovery planning, publishing) runs as jobs; each job ends in a report that the loop applies:
it writes the changed records and their events (through the journal), feeds newly ready tasks
to the router and starts whatever the router lets start. Because the loop is the only writer,
no locks guard the state. Attempts run through the goal's executor, never here.

Durability: the store commits in groups, so a kill may lose the last few milliseconds of writes.
Nothing is lost by that: the plan is flushed before any task runs, and on resume the goal branch's
commit trailers say which tasks were integrated (see :mod:`.resume`)."""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from blitz.breaker import BreakerBoard, project_key
from blitz.clock import Clock
from blitz.conductor import best_of_n, draining, planning, publishing, resume, steering
from blitz.conductor.alarm import Alarm
from blitz.conductor.dispatch import Dispatch
from blitz.conductor.goal import End, GoalRun, Next, Pause, Publish, Recover
from blitz.conductor.jobs import AttemptJob, Job, PlanJob, PublishJob, RecoveryJob
from blitz.conductor.journal import Journal
from blitz.conductor.ownership import LEASE_SECONDS, GoalTaken, Ownership
from blitz.conductor.pausing import Pauses
from blitz.conductor.services import Services
from blitz.conductor.spending import NO_USAGE, Spending
from blitz.dag import NodeStatus
from blitz.domain import (
    AttemptState,
    BreakerRecord,
    Goal,
    GoalState,
    Plan,
    Project,
    TaskState,
    Usage,
)
from blitz.errors import ConfigError, PlanError, RepositoryError, RunError, UserError
from blitz.events import EventKind
from blitz.executors.base import AttemptReport, Outcome
from blitz.planner import Recovered, spent
from blitz.router import Router
from blitz.runner import runner_id
from blitz.store.base import Store


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
        runner: str = "",
        lease: float = LEASE_SECONDS,
    ) -> None:
        """``return_when_blocked``: :meth:`run` returns once every goal waits on a paused
        project (the CLI's case: a person must act; the goals stay resumable).
        ``keep_alive``: :meth:`run` goes on with no goals until :meth:`stop` (the daemon).
        ``runner``: who claims the goals (default: this process on this host); ``lease``: seconds
        a claim holds a goal unless renewed (:mod:`.ownership`)."""
        self._return_when_blocked = return_when_blocked
        self._keep_alive = keep_alive
        self._draining = False  # shutting down: nothing new starts; interrupted work re-queues
        self.user_errors: dict[str, UserError] = {}
        """Goals that failed on a configuration the user must fix (a rejected key), by id."""
        self.store = store
        self.clock = clock
        self.journal = Journal(store, clock)
        self.router = router
        self.breakers = breakers
        self.spending = Spending()
        self._services = services
        self._fault = fault
        self._poll_interval = poll_interval
        self.runs: dict[str, GoalRun] = {}
        self.finished: dict[str, Goal] = {}
        self._inbox: collections.deque[tuple[Job, Any]] = collections.deque()
        # Goals with tasks that succeeded in this step: fed and settled once per step.
        self._unfed: dict[str, GoalRun] = {}
        # The loop sleeps on a future that reports and the alarm resolve.
        self._waiter: asyncio.Future[None] | None = None
        self._alarm = Alarm(self._wake)
        self._me = runner or runner_id()
        self.ownership = Ownership(store, clock, owner=self._me, ttl=lease)
        self._stopping = False
        self._pauses = Pauses(runs=self.runs, router=router, journal=self.journal)
        self._dispatch = Dispatch(
            runs=self.runs,
            router=router,
            breakers=breakers,
            journal=self.journal,
            clock=clock,
            spending=self.spending,
            start=self._start,
            fault=fault,
        )

    # -- public -----------------------------------------------------------------------------

    def start(self, project: Project, goal: Goal, *, plan: Plan | None = None) -> GoalRun:
        """Take on a new goal (already written to the store in state PLANNING)."""
        self.ownership.claim(goal.id)
        run = self._adopt(project, goal)
        run.plan = plan
        self._start(PlanJob(run), planning.prepare(run))
        self._wake()
        return run

    submit = start

    async def resume(self, goal: Goal) -> GoalRun:
        """Take over an unfinished goal from the store, after a crash or a restart (GoalTaken if
        this engine drives it: a second run would plan and queue its tasks again)."""
        if goal.id in self.runs:
            raise GoalTaken(f"goal {goal.id} is driven here already", holder=self._me)
        project = self.store.get_project(goal.project_id)
        if project is None:
            raise UserError(f"goal {goal.id} belongs to a project that no longer exists")
        goal = self.ownership.take(goal)
        run = self._adopt(project, goal)
        run.emit(EventKind.GOAL_RESUMED, f"resumed by {self._me} from {goal.state}")
        with resume.gc_paused():
            tasks = self.store.load_tasks(goal.id)
        if goal.state is GoalState.PLANNING or not tasks:
            self._start(PlanJob(run), planning.prepare(run))
            return run
        try:
            resumed = await resume.reconcile(run, tasks)
        except RunError as exc:  # its repository is gone or broken: others go on without it
            del self.runs[goal.id]
            await self.ownership.let_go(goal.id)
            raise RepositoryError(f"goal {goal.id} cannot be resumed: {exc}") from exc
        if resumed.publish:
            self._start(PublishJob(run), publishing.publish(run))
            return run
        if resumed.waiting:
            return run  # nothing runs until a person approves the plan
        for task in resumed.crashed:
            run.crashed(task, "interrupted", requeue_only=True)
        for task, attempt in resumed.unrecovered:
            self._next(run, run.recover(task, attempt, attempt.error, ()))
        self._dispatch.feed(run)
        self._settle(run)
        return run

    def cancel(self, goal_id: str, reason: str = "cancelled by the user") -> bool:
        run = self.runs.get(goal_id)
        if run is None or run.cancelled:
            return False
        run.cancelled = True
        run.cancel_tasks(reason, [item.task_id for item in self.router.withdraw(goal_id)])
        for job in run.attempt_jobs.values():
            job.cancel()
        run.goal = run.goal.evolve(error=reason)
        self._settle(run)
        return True

    def approve(self, goal_id: str, plan: Plan | None = None) -> None:
        """Let a goal that waits for plan approval run, with ``plan`` instead if given."""
        run = steering.waiting(self.runs, self.journal, goal_id)
        planning.approved(run, plan)
        self._dispatch.feed(run)
        self._settle(run)
        self._wake()

    def reject(self, goal_id: str, reason: str = "") -> None:
        """Cancel a goal whose plan waits for approval."""
        run = steering.waiting(self.runs, self.journal, goal_id)
        why = f"plan rejected: {reason}" if reason else "plan rejected"
        run.emit(EventKind.PLAN_REJECTED, why)
        self.cancel(goal_id, why)
        self._wake()

    async def retry_task(self, goal_id: str, task_id: str) -> None:
        """Another attempt at a failed, skipped or cancelled task (reopens an ended goal)."""
        await self._steer(goal_id, task_id, retry=True)

    async def skip_task(self, goal_id: str, task_id: str) -> None:
        """Drop a task; the tasks after it go on without it (reopens an ended goal)."""
        await self._steer(goal_id, task_id, retry=False)

    async def _steer(self, goal_id: str, task_id: str, *, retry: bool) -> None:
        run = self.runs.get(goal_id)
        if run is None:  # an ended goal: reopened in the store, then resumed
            reopened = steering.reopen(self.journal, goal_id, task_id, retry=retry)
            await self.store.flush()
            self.finished.pop(goal_id, None)
            await self.resume(reopened)
        elif retry:
            steering.retry(run, task_id)
            self._dispatch.feed(run)
        else:
            if steering.skip(run, task_id):
                self.router.withdraw(goal_id, task_id)
            self._dispatch.feed(run)
            self._settle(run)
        self._wake()

    def pause_project(self, project_id: str, reason: str) -> None:
        """Stop starting tasks of a project until it is resumed (queued tasks wait)."""
        self._pauses.pause(project_id, reason)

    def resume_project(self, project_id: str) -> None:
        """Let a paused project's tasks start again."""
        self._pauses.resume(project_id)
        self._wake()

    def blocked(self) -> dict[str, str]:
        """Goals held by a paused project with nothing running: goal id -> the pause reason."""
        return self._pauses.blocked()

    def reset_breaker(self, key: str) -> BreakerRecord:
        """Close a breaker by hand (its cause is fixed): the work it held back may start."""
        self._dispatch.breaker_changes(self.breakers.reset(key))
        self._wake()
        return self.breakers.get(key).to_record()

    async def drain(self, grace: float) -> None:
        """Stop gently: nothing new starts, running attempts get ``grace`` seconds, then are
        interrupted (re-queued when the goal is resumed), and the loop stops."""
        self._draining = True
        self._wake()
        await draining.interrupt_attempts(self.runs, grace)
        self.stop()

    def stop(self) -> None:
        """Stop the loop after the current step (the daemon's shutdown; goals stay resumable)."""
        self._stopping = True
        self._wake()

    async def run(self) -> dict[str, Goal]:
        """Drive every goal until all are finished; return their final records."""
        keeping = asyncio.ensure_future(self.ownership.keep(lambda: self.runs, self._wake))
        try:
            await self._loop()
        finally:
            self._alarm.cancel()
            keeping.cancel()
        await self.store.flush()
        await self.ownership.release()
        return dict(self.finished)

    # -- the loop ---------------------------------------------------------------------------

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = self.clock.monotonic() + self._poll_interval
        inbox = self._inbox
        while self._busy() and not self._stopping:
            blocked = len(self.blocked()) == len(self.runs) and not self.ownership.jobs_out
            if self._return_when_blocked and blocked:
                return  # every goal waits for its user to act; they stay resumable
            self.ownership.abandon_lost(self.runs, self.router)
            # Apply every report that arrived, then start whatever may start, then wait.
            while inbox and not self._stopping:
                job, result = inbox.popleft()
                job.run.jobs -= 1
                if not self.ownership.discarded(job, self.router, self.spending):
                    self._apply(job, result)
            if self._unfed:
                self._feed_succeeded()
            if not self._draining:
                self._dispatch.start_ready()
            now = self.clock.monotonic()
            if now >= next_poll:
                self._poll_commands()
                for change in self.breakers.poll():
                    self._dispatch.breaker_changed(change)
                next_poll = now + self._poll_interval
            if inbox or self._stopping or not self._busy():
                continue
            wake = next_poll
            retry_at = self.router.next_wakeup()
            if retry_at is not None:
                wake = min(wake, retry_at)
            deadline = loop.time() + max(0.0, wake - now)
            self._alarm.set(loop, deadline)
            self._waiter = loop.create_future()
            await self._waiter
            self._waiter = None

    def _busy(self) -> bool:
        """Goals to drive, the daemon's keep-alive, or jobs of goals taken over unwinding."""
        return bool(self.runs) or self._keep_alive or self.ownership.jobs_out

    def _wake(self) -> None:
        """End the loop's wait: a report arrived, or it should stop."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _start(self, job: Job, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a job; when it ends, its result (or exception) goes to the inbox."""
        job.run.jobs += 1
        running = asyncio.ensure_future(work)
        running.add_done_callback(functools.partial(self._ended, job))
        return running

    def _ended(self, job: Job, running: asyncio.Task[Any]) -> None:
        if running.cancelled():
            result: Any = asyncio.CancelledError()
        else:
            result = running.exception() or running.result()
        self._inbox.append((job, result))
        self._wake()

    def _apply(self, job: Job, result: Any) -> None:
        """Apply a job's report."""
        if isinstance(job, AttemptJob):
            self._attempted(job, result)
        elif isinstance(job, PlanJob):
            self._planned(job.run, result)
        elif isinstance(job, RecoveryJob):
            self._recovered(job, result)
        else:
            self._next(job.run, publishing.published(job.run, result))

    def _next(self, run: GoalRun, step: Next) -> None:
        """Do what a goal said comes next."""
        if isinstance(step, Recover):
            recover = planning.recover(run, step.request)
            self._start(RecoveryJob(run, step.task_id, step.attempt_id), recover)
        elif isinstance(step, Pause):
            self.pause_project(run.project.id, step.reason)
        elif isinstance(step, Publish):
            self._start(PublishJob(run), publishing.publish(run))
        elif isinstance(step, End):
            run.end(step)
            self.router.withdraw(run.goal.id)
            self.runs.pop(run.goal.id, None)
            self.finished[run.goal.id] = run.goal

    def _settle(self, run: GoalRun) -> None:
        self._next(run, run.settle())

    # -- adoption and planning --------------------------------------------------------------

    def _adopt(self, project: Project, goal: Goal) -> GoalRun:
        run = GoalRun(project, goal, self._services(project, goal), self.journal)
        run.started = self.clock.monotonic()
        self.runs[goal.id] = run
        self.router.set_project_limit(project.id, max(1, goal.max_parallel or project.max_parallel))
        self.breakers.configure(project_key(project.id), run.services.breaker)
        if run.services.project_budget_usd is not None and not self.spending.known(project.id):
            self.spending.start_project(project.id, self.store.project_usage(project.id).cost_usd)
        if project.paused:
            self._pauses.hold(project.id, project.pause_reason or "paused")
        run.goal = goal.evolve(runner=self._me)
        self.journal.write(run.goal)
        return run

    def _planned(self, run: GoalRun, result: planning.Prepared | BaseException) -> None:
        if isinstance(result, BaseException):
            self._charge(run, spent(result), planning=True)  # a failed plan cost something too
            rejected = isinstance(result, PlanError)
            kind = EventKind.PLAN_REJECTED if rejected else EventKind.GOAL_FAILED
            run.emit(kind, str(result))
            if isinstance(result, ConfigError):
                # A rejected key or a spend cap: every goal of the project would fail alike.
                self.user_errors[run.goal.id] = result
                self.pause_project(run.project.id, str(result))
            self._next(run, End(GoalState.FAILED, str(result)))
            return
        self._charge(run, result.usage, planning=True)
        if planning.planned(run, result):
            return  # it waits for a person's approval
        self._dispatch.feed(run)
        self._settle(run)

    # -- feeding and dispatching ------------------------------------------------------------

    def _feed_succeeded(self) -> None:
        """Feed and settle each goal whose tasks succeeded since the last step."""
        runs = list(self._unfed.values())
        self._unfed.clear()
        for run in runs:
            self._dispatch.feed(run)
            self._settle(run)

    def _attempted(self, job: AttemptJob, result: Any) -> None:
        """An attempt (or a best-of-N exploration, tallied as one) ended."""
        run, item, made = job.run, job.item, job.made
        run.attempt_jobs.pop(item.task_id, None)
        if isinstance(result, BaseException):
            self._lost(job, result)
            return
        task = run.tasks[item.task_id]
        if len(made) == 1:
            report: AttemptReport = result
            self.spending.forget(made[0].id)
            usage, error, interrupted = report.attempt.usage, report.error, False
        else:
            tally = best_of_n.tally(run, task, made, result, self.spending, draining=self._draining)
            report, usage, error = tally.report, tally.usage, tally.error
            interrupted = tally.interrupted
        if usage != NO_USAGE:
            self._charge(run, usage)
        if len(made) > 1:
            if tally.judged != NO_USAGE:  # no attempt's: kept on the goal record
                self._charge(run, tally.judged, planning=True)
            self.journal.write(*tally.losers, events=[tally.event])
        outcome = report.outcome
        self._dispatch.ended(item, report, error)
        if outcome is Outcome.SUCCEEDED and not run.cancelled:
            run.succeeded(task, report.attempt)  # writes the attempt with the task
            self._unfed[run.goal.id] = run  # fed and settled after this step's other reports
            return
        if len(made) == 1:
            run.attempt_finished(task, report)
        self._next(run, run.after_attempt(task, report, interrupted=interrupted))
        self._dispatch.feed(run)
        self._settle(run)

    def _lost(self, job: AttemptJob, exc: BaseException) -> None:
        """An attempt job ended by an exception: cancelled (the goal was cancelled, or blitz is
        shutting down) or a bug in blitz."""
        run, item = job.run, job.item
        task = run.tasks[item.task_id]
        cancelled = isinstance(exc, asyncio.CancelledError)
        error = "cancelled" if cancelled else f"engine error: {exc!r}"
        if cancelled and self._draining:
            error = "interrupted: blitz stopped"
        state = AttemptState.CANCELLED if cancelled else AttemptState.CRASHED
        finals = self.spending.close(job.made, state=state, error=error, at=self.clock.time())
        spent = sum((a.usage for a in finals), Usage())
        if spent != NO_USAGE:
            self._charge(run, spent)
        done = self.router.done(item, outcome="cancelled" if cancelled else "crashed", error=error)
        self._dispatch.breaker_changes(done)
        self.journal.write(*finals)
        if cancelled and self._draining and not run.cancelled:
            run.requeue(task, "interrupted by shutdown; re-queued")
            self._dispatch.feed(run)
        elif cancelled or run.cancelled:
            if task.state is TaskState.RUNNING:
                run.set_task(task.evolve(state=TaskState.CANCELLED, reason="cancelled"))
        else:
            run.crashed(task, error)
            self._dispatch.feed(run)
        self._settle(run)

    def _recovered(self, job: RecoveryJob, result: Recovered | BaseException) -> None:
        run = job.run
        assert run.dag is not None
        task = run.tasks[job.task_id]
        if run.cancelled or task.state is not TaskState.FAILED:
            self._settle(run)
            return
        if isinstance(result, BaseException):
            self._charge(run, spent(result), planning=True)
            why = f"recovery planning failed: {result}"
            run.emit(EventKind.RECOVERY_EXHAUSTED, why, task=task)
            self._settle(run)
            return
        self._charge(run, result.usage, planning=True)
        plan = result.recovery
        abort = planning.recovered(run, task, plan, job.attempt_id)
        if abort is None:  # the plan was rejected
            self._settle(run)
            return
        if abort:
            self.cancel(run.goal.id, reason=f"recovery aborted the goal: {plan.root_cause}")
            run.goal = run.goal.evolve(error=f"aborted: {plan.root_cause}")
        self._dispatch.feed(run)
        self._settle(run)

    # -- spending, commands and breakers ------------------------------------------------------

    def _charge(self, run: GoalRun, usage: Usage, *, planning: bool = False) -> None:
        paused = run.project.id in self._pauses
        charged = self.spending.charge(run, usage, planning=planning, paused=paused)
        if charged.goal_stopped:
            withdrawn = self.router.withdraw(run.goal.id)
            if run.dag is not None:
                for item in withdrawn:
                    if run.dag.status(item.task_id) is NodeStatus.RUNNING:
                        run.dag.requeue(item.task_id)
                self._dispatch.feed(run)
        if charged.pause:
            self.pause_project(run.project.id, charged.pause)

    def _poll_commands(self) -> None:
        projects = steering.poll(self, self.store, self.journal, list(self.runs))
        if projects is not None:
            self._pauses.follow({p.id: p for p in projects})
