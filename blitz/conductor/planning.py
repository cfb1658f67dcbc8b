"""Planning: everything before a goal's first task runs (goal branch, plan, baseline), a plan
edited at approval, and recovery plans applied to a goal's graph.

The planner's calls wait out a model provider that is down, overloaded or rate-limited (the
shared :mod:`blitz.waiting` policy, up to the services' ``planning_patience``), announcing each
wait as ``plan.waiting``: a storm delays a goal's planning, it does not fail the goal."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from blitz import followups
from blitz.conductor.attempt import SetupFailed
from blitz.conductor.goal import GoalRun
from blitz.conductor.outcomes import SKIPPED_BY_RECOVERY
from blitz.dag import Dag, Node
from blitz.domain import (
    Baseline,
    GoalState,
    Plan,
    Recovery,
    RecoveryAction,
    RecoveryPlan,
    Task,
    TaskSpec,
    TaskState,
    Usage,
    new_id,
)
from blitz.errors import ConfigError, PlanError
from blitz.events import Event, EventKind
from blitz.executors.base import worktree_name
from blitz.planner import (
    PlanningFailed,
    PlanRequest,
    Recovered,
    RecoveryRequest,
    check_plan,
    plain_retry,
)
from blitz.waiting import Outage, wait_out

T = TypeVar("T")


async def recover(run: GoalRun, request: RecoveryRequest) -> Recovered:
    """The planner's recovery plan for a failed task, waiting out a provider that is out. A model
    planner whose every answer was unusable (small local models) gives the task a plain retry
    with its failure shown, bounded like any recovery, rather than leaving it failed. Its new
    tasks may take the routes a plan's may (``services.routes``)."""
    request = dataclasses.replace(request, backends=run.services.routes)
    try:
        return await patiently(
            run, lambda: run.services.planner.recover(request), "recovery planning"
        )
    except PlanningFailed as exc:
        first = exc.problems[0] if exc.problems else "no usable answer"
        why = f"the planner gave no usable recovery ({first.rstrip(':')})"
        return Recovered(recovery=plain_retry(request, why), usage=exc.usage)


async def patiently(run: GoalRun, call: Callable[[], Awaitable[T]], what: str) -> T:
    """``call()``, made again after each provider outage once the wait the policy gives is over
    (each wait a ``plan.waiting`` event), for at most the services' ``planning_patience``."""
    services, clock = run.services, run.journal.clock

    def waiting(outage: Outage, seconds: float) -> None:
        reason = str(outage)
        event = run.event(
            EventKind.PLAN_WAITING,
            f"{what} waits {seconds:.0f}s for the model provider: {reason.splitlines()[0]}",
            data={"until": clock.time() + seconds, "seconds": seconds, "reason": reason[:2000]},
        )
        run.journal.write(events=[event])

    return await wait_out(
        call,
        clock=clock,
        policy=services.retry,
        patience=services.planning_patience,
        on_wait=waiting,
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """What planning produced: the tasks, the base branch's gate results, what it cost."""

    tasks: list[Task]
    baseline: Baseline | None
    usage: Usage


def task_of(goal_id: str, spec: TaskSpec, *, origin: str, position: int) -> Task:
    """A task record from a planned task."""
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
        labels=spec.labels,
    )


async def prepare(run: GoalRun) -> Prepared:
    """Goal branch, plan, baseline: everything before the first task runs."""
    goal, ws = run.goal, run.services.workspace
    base_sha = goal.base_sha
    if ws is not None:
        base_sha = base_sha or await ws.rev_parse(f"refs/heads/{goal.base_branch}")
        await ws.ensure_goal_branch(goal.branch, goal.base_branch)
    usage = Usage()
    plan = run.plan
    if plan is None:
        async with _planned_tree(run, base_sha) as repo:
            request = PlanRequest(
                goal_id=goal.id,
                goal=goal.title,
                repo=repo,
                gates=run.project.gates.configured(),
                max_tasks=run.services.limits.max_tasks,
                backends=run.services.routes,
                earlier=followups.planning_context(run.journal.store, goal),
                on_reask=lambda line: run.emit(EventKind.PLAN_REASKED, line),
            )
            planned = await patiently(run, lambda: run.services.planner.plan(request), "planning")
        plan, usage = planned.plan, planned.usage
    check_plan(plan.tasks, max_tasks=run.services.limits.max_tasks)
    _check_routes(run, plan)
    run.goal = run.goal.evolve(base_sha=base_sha, summary=plan.summary)
    tasks = [task_of(goal.id, spec, origin="plan", position=i) for i, spec in enumerate(plan.tasks)]
    baseline = None
    gates = run.project.gates.configured()
    if ws is not None and run.services.validator is not None and gates:
        run.activity = f"checking the base branch: {', '.join(gates)}"
        try:
            baseline = await _baseline(run, base_sha)
        finally:
            run.activity = ""
    return Prepared(tasks, baseline, usage)


@asynccontextmanager
async def _planned_tree(run: GoalRun, sha: str) -> AsyncIterator[Path]:
    """The tree the planner is shown: the user's checkout, or for a follow-up goal a worktree
    of the branch it continues, at ``sha`` (the checkout has not seen that work)."""
    ws, pool = run.services.workspace, run.services.pool
    if not run.goal.follows or ws is None or not sha:
        yield Path(run.project.path)
    elif pool is None:
        worktree = await ws.add_worktree(worktree_name(run.goal.id, "planning"), sha)
        try:
            yield worktree
        finally:
            await asyncio.shield(ws.remove_worktree(worktree))
    else:
        async with pool.worktree(sha, purpose=f"planning of goal {run.goal.id}") as pooled:
            yield pooled.path


def _check_routes(run: GoalRun, plan: Plan) -> None:
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


async def _baseline(run: GoalRun, sha: str) -> Baseline:
    ws, validator, pool = run.services.workspace, run.services.validator, run.services.pool
    assert ws is not None and validator is not None
    setup = run.services.setup
    if setup is None:
        # Every gate's result on this commit is kept (another goal started from it): no worktree.
        kept = await validator.kept_baseline(ws.repo, goal_id=run.goal.id, sha=sha)
        if kept is not None:
            return kept
    if pool is None:
        worktree = await ws.add_worktree(worktree_name(run.goal.id, "baseline"), sha)
        try:
            return await validator.baseline(worktree, goal_id=run.goal.id, sha=sha)
        finally:
            await asyncio.shield(ws.remove_worktree(worktree))
    async with pool.worktree(sha, purpose=f"baseline of goal {run.goal.id}") as pooled:
        how = "reused" if pooled.reused else "new"
        data = {"worktree": str(pooled.path), "name": pooled.name, "reused": pooled.reused}
        event = run.event(
            EventKind.WORKSPACE_READY, f"baseline in {pooled.name} ({how})", data=data
        )
        run.journal.write(events=[event])
        digest = ""
        if setup is not None:
            result = await setup.ensure(pooled.path, marker=pooled.marker)
            if result is not None and not result.passed:
                raise SetupFailed(result)  # on the base commit: the goal cannot be judged
            digest = setup.digest(pooled.path)
        return await validator.baseline(
            pooled.path, goal_id=run.goal.id, sha=sha, env_digest=digest
        )


def planned(run: GoalRun, prepared: Prepared) -> bool:
    """Put the plan in place and record it; True when it waits for a person's approval."""
    tasks, baseline = prepared.tasks, prepared.baseline
    run.baseline = baseline
    run.dag = Dag(
        tasks,
        max_nodes=max(run.services.limits.max_tasks, len(tasks)),
        check=False,  # prepare() validated the plan (check_plan) with the same rules
    )
    run.tasks = {t.id: t for t in tasks}
    waits = run.project.require_plan_approval
    run.goal = run.goal.evolve(state=GoalState.AWAITING_APPROVAL if waits else GoalState.RUNNING)
    records: list[Task | Baseline] = list(tasks)
    events = [
        run.event(
            EventKind.PLAN_CREATED,
            f"{len(tasks)} tasks: {run.goal.summary}",
            data={"tasks": [t.id for t in tasks]},
        ),
        run.event(
            EventKind.PLAN_AWAITING_APPROVAL,
            "the plan waits for approval (blitz approve, the API or the dashboard)",
        )
        if waits
        else _started(run),
    ]
    if baseline is not None:
        records.append(baseline)
        failing = [r.name for r in baseline.results if not r.passed]
        reused = [r.name for r in baseline.results if r.reused]
        events.append(
            run.event(
                EventKind.BASELINE_RECORDED,
                "base branch: "
                + (f"already failing: {', '.join(failing)}" if failing else "all gates pass")
                + (" (reused)" if reused and len(reused) == len(baseline.results) else ""),
                data={"failing": failing, "reused": reused},
            )
        )
    run.journal.write(run.goal, *records, events=events)
    return waits


def approved(run: GoalRun, plan: Plan | None) -> None:
    """A person approved the plan, or ``plan`` in its place: the goal runs."""
    if plan is not None:
        _replace(run, plan)
    run.goal = run.goal.evolve(state=GoalState.RUNNING)
    run.journal.write(
        run.goal,
        events=[
            run.event(EventKind.PLAN_APPROVED, f"{len(run.tasks)} tasks approved"),
            _started(run),
        ],
    )


def _started(run: GoalRun) -> Event:
    return run.event(EventKind.GOAL_STARTED, f"running on {run.goal.branch or 'no branch'}")


def _replace(run: GoalRun, plan: Plan) -> None:
    limits = run.services.limits
    check_plan(plan.tasks, max_tasks=limits.max_tasks)
    tasks = [
        task_of(run.goal.id, spec, origin="plan", position=i) for i, spec in enumerate(plan.tasks)
    ]
    run.dag = Dag(tasks, max_nodes=max(limits.max_tasks, len(tasks)), check=False)
    run.tasks = {t.id: t for t in tasks}
    if plan.summary:
        run.goal = run.goal.evolve(summary=plan.summary)
    run.journal.store.replace_plan(run.goal.id, tasks)
    run.journal.write(
        run.goal,
        events=[
            run.event(
                EventKind.PLAN_EDITED,
                f"plan edited: {len(tasks)} tasks",
                data={"tasks": [t.id for t in tasks]},
            )
        ],
    )


def apply_recovery(run: GoalRun, task: Task, plan: RecoveryPlan, attempt_id: str) -> Recovery:
    """Change the goal's graph as a recovery plan says; raises PlanError if it cannot be."""
    assert run.dag is not None
    dag = run.dag
    task = task.evolve(root_cause=plan.root_cause)
    new_tasks = [
        task_of(run.goal.id, spec, origin=f"recovery:{task.id}", position=len(run.tasks) + i)
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
            state=TaskState.PENDING, guidance=plan.guidance, depends_on=dag.node(task.id).depends_on
        )
    elif action is RecoveryAction.REPLACE:
        new_tasks = taking_the_place_of(task, new_tasks)
        dependents = dag.dependents(task.id)
        dag.inject(nodes, replace=task.id)
        task = task.evolve(
            state=TaskState.REPLACED, reason=f"replaced by {', '.join(t.id for t in new_tasks)}"
        )
        for dep_id in dependents:
            dep = run.tasks[dep_id] = run.tasks[dep_id].evolve(
                depends_on=dag.node(dep_id).depends_on
            )
            run.journal.write(dep)
    elif action is RecoveryAction.SKIP:
        dag.skip(task.id)
        reason = f"{SKIPPED_BY_RECOVERY}{plan.root_cause}"
        task = task.evolve(state=TaskState.SKIPPED, reason=reason)
    elif action is RecoveryAction.ABORT:
        task = task.evolve(reason=f"aborted: {plan.root_cause}")
    run.tasks[task.id] = task
    for t in new_tasks:
        run.tasks[t.id] = t
    events = [
        run.event(
            EventKind.TASK_INJECTED,
            f"added by recovery of {task.id}: {t.title}",
            task=t,
            data={"depends_on": list(t.depends_on)},
        )
        for t in new_tasks
    ]
    if task.state is TaskState.SKIPPED:
        events.append(run.event(EventKind.TASK_SKIPPED, task.reason, task=task))
    run.journal.write(task, *new_tasks, events=events)
    return Recovery(
        id=new_id("r"),
        goal_id=run.goal.id,
        task_id=task.id,
        attempt_id=attempt_id,
        root_cause=plan.root_cause,
        action=plan.action,
        guidance=plan.guidance,
        new_tasks=tuple(t.id for t in new_tasks),
        created_at=run.journal.clock.time(),
    )


TAKES_THE_PLACE = (
    "This task takes the place of task {id} ({title}). When it is done, the work that task asked"
    " for must be done too, by it or by the tasks before it:\n{instructions}"
)


def taking_the_place_of(old: Task, new_tasks: list[Task]) -> list[Task]:
    """``new_tasks`` replacing ``old``: the last of them (those none of the others depends on)
    also carry its work, its instructions (:data:`TAKES_THE_PLACE`), acceptance checks and files.
    A replacement is a way to do the replaced task's work, not a way to drop it: a small model's
    recovery planner replaced "add slugify and its test" with "add shout", which the branch had,
    and the goal succeeded without slugify."""
    needed = {d for t in new_tasks for d in t.depends_on}
    said = TAKES_THE_PLACE.format(
        id=old.id, title=old.title, instructions=(old.instructions or old.title).strip()
    )
    return [
        t
        if t.id in needed
        else t.evolve(
            instructions=f"{t.instructions.strip()}\n\n{said}".strip(),
            checks=(*t.checks, *(c for c in old.checks if c not in t.checks)),
            files=(*t.files, *(f for f in old.files if f not in t.files)),
        )
        for t in new_tasks
    ]


def recovered(run: GoalRun, task: Task, plan: RecoveryPlan, attempt_id: str) -> bool | None:
    """Apply a recovery plan to the failed ``task``. Returns None if the plan was rejected (the
    task stays failed, recovery exhausted), True if the plan aborts the goal (the engine then
    cancels it), else False."""
    try:
        recovery = apply_recovery(run, task, plan, attempt_id)
    except PlanError as exc:
        run.emit(EventKind.RECOVERY_EXHAUSTED, f"recovery plan rejected: {exc}", task=task)
        return None
    run.recovery_record(recovery, task)
    if recovery.action is RecoveryAction.ABORT:
        run.aborted = True
        return True
    return False
