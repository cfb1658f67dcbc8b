"""Resume: take over an unfinished goal from the store after a crash or a restart.

The store commits in groups, so a kill may lose its last few milliseconds of writes; the goal
branch's commit trailers (``Blitz-Task: <id>``) say which tasks were integrated, whatever the
store last heard. Running attempts are marked crashed and their tasks re-queued; every
worktree of its own the goal left behind is removed. The pooled worktrees its attempts held
need nothing here: their claims died with the process, and whoever takes one next resets and
verifies it (:mod:`blitz.pool`), never trusting what it holds.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field

from blitz.conductor.goal import GoalRun
from blitz.conductor.outcomes import BLOCKED
from blitz.conductor.publishing import PENDING, pending
from blitz.dag import Dag, NodeStatus
from blitz.domain import (
    GOAL_DONE,
    INTERRUPTED,
    Attempt,
    AttemptState,
    Goal,
    GoalState,
    Task,
    TaskState,
)
from blitz.events import EventKind
from blitz.executors.base import ATTEMPT_REFS, worktree_name


def interrupt(run: GoalRun) -> None:
    """Record that the process driving ``run`` is stopping on a person's request: the goal
    keeps its state and is nobody's any more, so ``blitz resume`` takes it over at once."""
    run.goal = run.goal.evolve(error=INTERRUPTED, runner="")
    event = run.event(EventKind.GOAL_INTERRUPTED, f"{INTERRUPTED} (it was {run.goal.state})")
    run.journal.write(run.goal, events=[event])


def resumable(goal: Goal) -> bool:
    """Whether ``blitz resume`` (or a daemon's start) takes ``goal`` on when nobody drives it:
    it is unfinished and not waiting for a person's approval, or it succeeded with publishing
    still pending."""
    if goal.state in GOAL_DONE:
        return pending(goal)
    return goal.state is not GoalState.AWAITING_APPROVAL


@dataclass(slots=True)
class Resumed:
    """What is left to do for a goal once its records agree with its branch."""

    publish: bool = False  # it was publishing when it stopped
    waiting: bool = False  # its plan waits for approval: nothing runs, nothing settles
    crashed: list[Task] = field(default_factory=list)  # re-queue
    unrecovered: list[tuple[Task, Attempt]] = field(default_factory=list)  # plan a recovery


async def reconcile(run: GoalRun, tasks: list[Task]) -> Resumed:
    """Settle a goal's stored records against its goal branch and rebuild its graph."""
    if run.goal.error == INTERRUPTED:
        run.goal = run.goal.evolve(error="")
        run.journal.write(run.goal)
    goal, ws, store = run.goal, run.services.workspace, run.journal.store
    run.baseline = store.load_baseline(goal.id)
    committed: dict[str, str] = {}
    if ws is not None and goal.branch:
        committed = await ws.committed_tasks(goal.branch, goal.base_sha, goal.id)
    run.usage = store.usage(goal.id) + goal.usage
    running = store.load_attempts(goal.id, states=[AttemptState.RUNNING])
    kept: dict[str, str] = {}
    if ws is not None and any(a.candidate for a in running):
        kept = await ws.refs(f"{ATTEMPT_REFS}/{goal.id}/")
    for a in running:
        run.journal.write(landed(a, running, committed, kept, run.journal.clock.time()))
    if ws is not None:
        # Every worktree of this goal's own (made where there is no pool) is stale now,
        # including any whose attempt never reached the store: they are named after the goal.
        prefix = worktree_name(goal.id, "")
        if ws.worktrees_dir.is_dir():
            for stale_dir in sorted(ws.worktrees_dir.glob(f"{prefix}*")):
                await ws.remove_worktree(stale_dir)
    recoveries = store.load_recoveries(goal.id)
    run.recoveries = len(recoveries)
    with gc_paused():
        fixed = rebuild(run, tasks, committed)
    for t in fixed:
        if t.state is TaskState.SUCCEEDED:
            kind = EventKind.TASK_SUCCEEDED
            note = f"found its commit {t.commit[:10]} on the goal branch"
        else:
            kind, note = EventKind.TASK_REQUEUED, "re-queued: its attempt was interrupted"
        run.journal.write(t, events=[run.event(kind, note, task=t)])
    if goal.state is GoalState.FINISHING or goal.publish_state == PENDING:
        return Resumed(publish=True)
    if goal.state is GoalState.AWAITING_APPROVAL:
        return Resumed(waiting=True)
    resumed = Resumed()
    recovered = {r.attempt_id for r in recoveries}
    for t in list(run.tasks.values()):
        if t.state is TaskState.CRASHED:
            resumed.crashed.append(t)
        elif t.state is TaskState.FAILED:
            # A failure whose recovery was never planned (the process died first).
            attempts = store.load_attempts(goal.id, t.id)
            if attempts and attempts[-1].id not in recovered:
                resumed.unrecovered.append((t, attempts[-1]))
    return resumed


def landed(
    attempt: Attempt,
    running: list[Attempt],
    committed: dict[str, str],
    kept: dict[str, str],
    now: float,
) -> Attempt:
    """A running attempt's end: succeeded if its task's commit is on the goal branch and it is
    the one that made it (the only attempt of the task still running, one already known to
    have made that commit, or the best-of-N candidate whose kept commit it is), else crashed
    by the stop. A candidate that had kept its work under its ref (``kept``: ref -> commit)
    keeps that ref on its record, so its work is not lost to the store. Candidates whose
    commit was rebased onto the goal branch cannot be told apart: they stay crashed."""
    ref = f"{ATTEMPT_REFS}/{attempt.goal_id}/{attempt.task_id}/{attempt.id}"
    if ref in kept:
        attempt = attempt.evolve(ref=ref)
    commit = committed.get(attempt.task_id, "")
    mine = [a for a in running if a.task_id == attempt.task_id]
    if commit and (len(mine) == 1 or commit in (attempt.commit, kept.get(ref))):
        return attempt.evolve(
            state=AttemptState.SUCCEEDED,
            commit=commit,
            finished_at=now,
            selected=attempt.candidate > 0,
        )
    return attempt.evolve(state=AttemptState.CRASHED, error="interrupted: blitz stopped")


def rebuild(run: GoalRun, tasks: list[Task], committed: dict[str, str]) -> list[Task]:
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
        statuses[t.id] = node_status(t)
        run.tasks[t.id] = t
    run.dag = Dag.restore(
        tasks,
        statuses,
        max_nodes=max(run.services.limits.max_tasks, len(tasks)),
        check=False,  # validated when it was planned; a 100k-task resume must stay fast
    )
    return fixed


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


def node_status(task: Task) -> NodeStatus:
    """The graph's status of a task in a given state."""
    if task.state is TaskState.SKIPPED and task.reason.startswith(BLOCKED):
        return NodeStatus.BLOCKED
    return _NODE_STATUS[task.state]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a bulk load of records: building 100k objects
    otherwise triggers full collections that re-scan every object already loaded."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
