"""The domain: projects, goals, tasks and attempts, and the state machines that move them.

Every state change goes through :func:`transition` (tasks), :func:`goal_transition` or
:func:`attempt_transition`, which either returns the new state or raises
:class:`IllegalTransition`. Nothing else may set a state.

``failed`` means the work was wrong (an agent error a human would blame on the output, a gate that
broke): it goes to recovery planning. ``crashed`` means the machinery broke (a backend process died,
a provider outage, a killed blitz): it is retried as-is, a bounded number of times, and counts
against circuit breakers.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from blitz.errors import BlitzError
from blitz.records import fast_init
from blitz.records import replace as _replace

__all__ = ["fast_init"]  # re-exported: events.py builds its records the same way


class IllegalTransition(BlitzError):
    """A state change that the transition table does not allow: a bug in blitz, never user error."""


class TaskState(StrEnum):
    PENDING = "pending"  # waiting for dependencies
    READY = "ready"  # dependencies done, queued in the router
    RUNNING = "running"  # an attempt is under way
    SUCCEEDED = "succeeded"  # validated, committed and integrated into the goal branch
    FAILED = "failed"  # the work was wrong; recovery decides what happens next
    CRASHED = "crashed"  # the machinery broke; retried without recovery planning
    SKIPPED = "skipped"  # not done on purpose (recovery said skip, or blocked by a failure)
    REPLACED = "replaced"  # recovery replaced it with new tasks that took over its dependents
    CANCELLED = "cancelled"  # the goal was cancelled


TASK_TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset(
        {TaskState.READY, TaskState.SKIPPED, TaskState.CANCELLED, TaskState.SUCCEEDED}
    ),
    TaskState.READY: frozenset(
        {
            TaskState.RUNNING,
            TaskState.PENDING,
            TaskState.SKIPPED,
            TaskState.CANCELLED,
            TaskState.SUCCEEDED,
        }
    ),
    TaskState.RUNNING: frozenset(
        {
            TaskState.SUCCEEDED,
            TaskState.FAILED,
            TaskState.CRASHED,
            TaskState.READY,  # re-queued: integration conflict, or resumed after a kill
            TaskState.CANCELLED,
        }
    ),
    TaskState.FAILED: frozenset(
        {
            TaskState.READY,
            TaskState.PENDING,
            TaskState.REPLACED,
            TaskState.SKIPPED,
            TaskState.CANCELLED,
        }
    ),
    TaskState.CRASHED: frozenset({TaskState.READY, TaskState.FAILED, TaskState.CANCELLED}),
    TaskState.SUCCEEDED: frozenset(),
    TaskState.SKIPPED: frozenset({TaskState.PENDING}),
    TaskState.REPLACED: frozenset(),
    TaskState.CANCELLED: frozenset({TaskState.PENDING, TaskState.SKIPPED}),
}
"""Legal task transitions. PENDING/READY -> SUCCEEDED exists only for resume reconciliation, when
the goal branch already carries the task's commit but the store never heard of it. SKIPPED and
CANCELLED -> PENDING exist only for reopening an ended goal (a person retried or skipped one of
its tasks)."""

TASK_DONE = frozenset(
    {TaskState.SUCCEEDED, TaskState.SKIPPED, TaskState.REPLACED, TaskState.CANCELLED}
)
"""States from which a task never moves again."""


def transition(current: TaskState, new: TaskState) -> TaskState:
    """Return ``new`` if a task may go from ``current`` to it, else raise IllegalTransition."""
    if new not in TASK_TRANSITIONS[current]:
        raise IllegalTransition(f"task cannot go from {current} to {new}")
    return new


class GoalState(StrEnum):
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    FINISHING = "finishing"  # all tasks settled; pushing and opening the pull request
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


GOAL_TRANSITIONS: Mapping[GoalState, frozenset[GoalState]] = {
    GoalState.PLANNING: frozenset(
        {GoalState.RUNNING, GoalState.AWAITING_APPROVAL, GoalState.FAILED, GoalState.CANCELLED}
    ),
    GoalState.AWAITING_APPROVAL: frozenset(
        {GoalState.RUNNING, GoalState.FAILED, GoalState.CANCELLED}
    ),
    GoalState.RUNNING: frozenset({GoalState.FINISHING, GoalState.FAILED, GoalState.CANCELLED}),
    GoalState.FINISHING: frozenset({GoalState.SUCCEEDED, GoalState.FAILED, GoalState.CANCELLED}),
    GoalState.SUCCEEDED: frozenset(),
    GoalState.FAILED: frozenset({GoalState.RUNNING}),  # reopened by a person
    GoalState.CANCELLED: frozenset({GoalState.RUNNING}),
}

GOAL_DONE = frozenset({GoalState.SUCCEEDED, GoalState.FAILED, GoalState.CANCELLED})

PUBLISH_PENDING, PUBLISHED = "pending", "published"
"""A goal's ``publish_state`` while publishing is to be retried, and once it pushed."""

INTERRUPTED = "interrupted (Ctrl-C): `blitz resume` continues it"
"""The error of a goal whose process was stopped by a person, until it is resumed."""


def goal_transition(current: GoalState, new: GoalState) -> GoalState:
    """Return ``new`` if a goal may go from ``current`` to it, else raise IllegalTransition."""
    if new not in GOAL_TRANSITIONS[current]:
        raise IllegalTransition(f"goal cannot go from {current} to {new}")
    return new


class AttemptState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CRASHED = "crashed"
    CANCELLED = "cancelled"


ATTEMPT_TRANSITIONS: Mapping[AttemptState, frozenset[AttemptState]] = {
    AttemptState.RUNNING: frozenset(
        {AttemptState.SUCCEEDED, AttemptState.FAILED, AttemptState.CRASHED, AttemptState.CANCELLED}
    ),
    AttemptState.SUCCEEDED: frozenset(),
    AttemptState.FAILED: frozenset(),
    AttemptState.CRASHED: frozenset(),
    AttemptState.CANCELLED: frozenset(),
}


def attempt_transition(current: AttemptState, new: AttemptState) -> AttemptState:
    """Return ``new`` if an attempt may go from ``current`` to it, else raise IllegalTransition."""
    if new not in ATTEMPT_TRANSITIONS[current]:
        raise IllegalTransition(f"attempt cannot go from {current} to {new}")
    return new


_ids = random.Random(os.urandom(16))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(16)))


def new_id(prefix: str, *, bits: int = 32) -> str:
    """A short random id such as ``g-3f9a1c2b``: readable in logs, unique enough per store.

    Ids of things that come in the hundreds of thousands (attempts) take ``bits=64``. The
    generator is seeded from the OS once per process: ids name things, they guard nothing.
    """
    return f"{prefix}-{_ids.getrandbits(bits):0{bits // 4}x}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """A per-task acceptance check: ``file_exists`` (path) or ``command`` (shell command)."""

    kind: str
    path: str = ""
    command: str = ""
    timeout: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Gates:
    """A project's validation commands; an empty string means the gate is not configured."""

    build: str = ""
    test: str = ""
    typecheck: str = ""
    lint: str = ""
    timeout: float = 600.0
    reuse: bool = True  # a result on the same tree, command and environment is not run again
    parallel: bool = False  # the gates run side by side
    fail_fast: bool = False  # a blamed failure cancels the gates still running (recorded not run)

    def configured(self) -> dict[str, str]:
        """The configured gates by name, in the order they run."""
        order = ("build", "typecheck", "lint", "test")
        return {name: getattr(self, name) for name in order if getattr(self, name)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Project:
    id: str
    name: str
    path: str  # absolute path of the user's repository
    base_branch: str = "main"
    remote: str = ""  # git remote name to push to; empty = no push
    gates: Gates = field(default_factory=Gates)
    backend: str = "scripted"
    max_parallel: int = 4
    paused: bool = False
    pause_reason: str = ""
    fallback_backend: str = ""  # used while the main backend's breaker is open; "" = wait
    require_plan_approval: bool = False  # goals wait after planning until a person approves
    model: str = ""  # the agent model of the project's goals; "" = the backend's default


@fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Goal:
    id: str
    project_id: str
    title: str  # the goal as the user wrote it
    state: GoalState = GoalState.PLANNING
    branch: str = ""  # the goal branch, e.g. blitz/add-rate-limiting-3f9a1c2b
    base_branch: str = "main"
    base_sha: str = ""
    backend: str = "scripted"
    summary: str = ""
    error: str = ""
    pr_url: str = ""
    created_at: float = 0.0
    finished_at: float = 0.0
    runner: str = ""  # "pid@host" of the process driving the goal; resume takes over dead ones
    max_parallel: int = 0  # 0 = the project's setting
    usage: Usage = field(default_factory=lambda: Usage())  # planning and recovery model calls
    explore: int = 0  # attempts per task run side by side (best-of-N); 0 or 1 = no exploration
    explore_mode: str = "all"  # "all": wait for every attempt; "first": the first that passes
    portfolio: tuple[str, ...] = ()  # backend specs attempts are spread over, e.g. "codex"
    model: str = ""  # the agent model of the goal's tasks; "" = the project's
    models: tuple[str, ...] = ()  # "role=provider:model" it was started with; resume uses them
    publish_state: str = ""  # "" (not yet), "pending" (to retry) or "published"
    publish_error: str = ""  # why the last try at publishing failed
    publish_attempts: int = 0  # tries at publishing so far
    follows: str = ""  # the earlier goal this one continues (same branch and pull request)

    def evolve(self, **changes: Any) -> Goal:
        if "state" in changes and changes["state"] != self.state:
            goal_transition(self.state, changes["state"])
        return _replace(self, changes)

    def model_for(self, role: str) -> str:
        """The model the goal was started with for ``role`` ("planner", "agent"...), or ""."""
        return self.model_map().get(role, "")

    def model_map(self) -> dict[str, str]:
        """The models the goal was started with, by role (an entry without ``=`` is skipped)."""
        pairs = (entry.partition("=") for entry in self.models)
        return {role: model for role, sep, model in pairs if sep}


@fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    id: str  # unique within the goal; the plan's id
    goal_id: str
    title: str
    instructions: str = ""
    depends_on: tuple[str, ...] = ()
    priority: int = 0  # higher runs first
    checks: tuple[Check, ...] = ()
    files: tuple[str, ...] = ()  # files the planner expects the task to touch (a hint)
    state: TaskState = TaskState.PENDING
    attempts: int = 0  # attempts started
    crashes: int = 0  # consecutive crashed attempts
    conflicts: int = 0  # integration conflicts that re-ran the task
    recoveries: int = 0  # recovery plans made for this task
    commit: str = ""  # the commit on the goal branch, once succeeded
    origin: str = "plan"  # "plan" or "recovery:<task id>"
    guidance: str = ""  # extra instructions added by recovery ("retry with guidance")
    root_cause: str = ""  # recovery's diagnosis of the last failure
    reason: str = ""  # why it was skipped, failed or replaced
    allow_empty: bool = False  # the task may legitimately change no files
    position: int = 0  # order within the goal (plan order, then injected): breaks priority ties
    backend: str = ""  # the backend that does this task; "" = the goal's
    model: str = ""  # the agent model for this task; "" = the goal's
    explore: int = 0  # attempts run side by side for this task (best-of-N); 0 = the goal's
    labels: tuple[str, ...] = ()  # worker labels its attempts need (a remote executor's nodes)

    def evolve(self, **changes: Any) -> Task:
        if "state" in changes and changes["state"] != self.state:
            transition(self.state, changes["state"])
        return _replace(self, changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class GateResult:
    """One gate or check run: its command, whether it passed, and the tail of its output."""

    name: str
    command: str
    passed: bool
    exit_code: int | None  # None when killed on timeout
    duration: float
    output_tail: str = ""
    timed_out: bool = False
    preexisting: bool = False  # it failed on the base branch too, so it is not blamed on the task
    new_failures: tuple[str, ...] = ()  # failing test ids that the baseline did not have
    reused: bool = False  # an earlier run's result on the same tree, command and environment


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Tokens and cost of the model calls behind an attempt, a plan or a recovery."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


@fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    id: str
    goal_id: str
    task_id: str
    number: int  # 1 for the first attempt of the task
    state: AttemptState = AttemptState.RUNNING
    backend: str = "scripted"
    worktree: str = ""
    base_sha: str = ""  # goal branch head the worktree started from
    commit: str = ""
    error: str = ""
    summary: str = ""  # the agent's own summary of what it did
    gates: tuple[GateResult, ...] = ()
    diff_stat: str = ""
    diff: str = ""  # the attempt's change (capped), kept for failure context and review
    usage: Usage = Usage()  # immutable, so one instance serves every attempt
    started_at: float = 0.0
    finished_at: float = 0.0
    model: str = ""  # the agent model it ran with; "" = the backend's default
    candidate: int = 0  # 1..N within a best-of-N exploration; 0 = a plain attempt
    ref: str = ""  # the git ref keeping a candidate's commit (refs/blitz/attempts/...)
    selected: bool = False  # the candidate whose work was kept
    verdict: str = ""  # one line: why the candidate won or lost

    def evolve(self, **changes: Any) -> Attempt:
        if "state" in changes and changes["state"] != self.state:
            attempt_transition(self.state, changes["state"])
        return _replace(self, changes)


class RecoveryAction(StrEnum):
    RETRY = "retry"  # run the same task again, with guidance
    REPLACE = "replace"  # replace the task with new tasks
    INSERT = "insert"  # add new tasks the failed task will depend on, then retry it
    SKIP = "skip"  # drop the task; its dependents go on without it
    ABORT = "abort"  # the goal cannot succeed


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """A task as a plan states it, before it belongs to a goal."""

    id: str
    title: str
    instructions: str = ""
    depends_on: tuple[str, ...] = ()
    priority: int = 0
    checks: tuple[Check, ...] = ()
    files: tuple[str, ...] = ()
    allow_empty: bool = False
    backend: str = ""  # the backend that should do it; "" = the goal's
    model: str = ""  # the agent model that should do it; "" = the goal's
    attempts: int = 0  # best-of-N attempts for this task; 0 = the goal's setting
    labels: tuple[str, ...] = ()  # worker labels its attempts need


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    summary: str = ""
    tasks: tuple[TaskSpec, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryPlan:
    root_cause: str
    action: RecoveryAction
    guidance: str = ""  # for RETRY (and INSERT: passed to the retried task)
    tasks: tuple[TaskSpec, ...] = ()  # for REPLACE and INSERT


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovery:
    """A recovery plan as recorded for a goal: which task failed and what was decided."""

    id: str
    goal_id: str
    task_id: str
    attempt_id: str
    root_cause: str
    action: RecoveryAction
    guidance: str = ""
    new_tasks: tuple[str, ...] = ()
    created_at: float = 0.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerRecord:
    """A circuit breaker's persisted state. ``opened_at`` is wall-clock time (it outlives the
    process, unlike the monotonic clock the breaker uses while running)."""

    key: str  # "global", "project:<id>", "backend:<name>"
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0  # consecutive failures while closed
    opened_at: float = 0.0
    last_error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """The gates run once on the goal's base commit: what already failed before any task."""

    goal_id: str
    sha: str
    results: tuple[GateResult, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """A request to a running goal from another process (``blitz cancel``, the API)."""

    id: int
    goal_id: str
    kind: str  # "cancel"
    created_at: float = 0.0
