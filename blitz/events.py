"""The typed event catalogue.

Every state change is written as an :class:`Event` to the store's append-only log, in the same
transaction as the change itself. Events are what the CLI, the dashboard, Slack, MCP and voice
read. ``data`` holds small JSON-able facts about the change; it never holds secrets (the store
redacts known secret patterns as a second line of defence).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from blitz.domain import fast_init


class EventKind(StrEnum):
    PROJECT_ADDED = "project.added"
    PROJECT_PAUSED = "project.paused"
    PROJECT_RESUMED = "project.resumed"

    GOAL_CREATED = "goal.created"
    GOAL_STARTED = "goal.started"
    GOAL_RESUMED = "goal.resumed"
    GOAL_SUCCEEDED = "goal.succeeded"
    GOAL_FAILED = "goal.failed"
    GOAL_CANCELLED = "goal.cancelled"
    GOAL_REOPENED = "goal.reopened"
    GOAL_INTERRUPTED = "goal.interrupted"  # its process was stopped (Ctrl-C): resume continues it
    COMMAND_REFUSED = "command.refused"  # a request from another process did not apply

    PLAN_CREATED = "plan.created"
    PLAN_REJECTED = "plan.rejected"
    PLAN_AWAITING_APPROVAL = "plan.awaiting_approval"
    PLAN_APPROVED = "plan.approved"
    PLAN_EDITED = "plan.edited"
    # Planning or recovery planning waits for its model provider: data {until, reason, seconds}
    PLAN_WAITING = "plan.waiting"
    PLAN_REASKED = "plan.reasked"  # a model planner asks again: its answer would not do

    TASK_READY = "task.ready"
    TASK_STARTED = "task.started"
    TASK_SUCCEEDED = "task.succeeded"
    TASK_FAILED = "task.failed"
    TASK_CRASHED = "task.crashed"
    TASK_SKIPPED = "task.skipped"
    TASK_REQUEUED = "task.requeued"
    TASK_INJECTED = "task.injected"
    TASK_RETRIED = "task.retried"  # a person asked for another attempt
    TASK_ROUTED = "task.routed"  # sent to the fallback backend while the main one is down
    TASK_EXPLORED = "task.explored"  # best-of-N: every candidate and why the winner won
    TASK_WAITING = "task.waiting"  # its model provider is out: data {until, reason, seconds}

    ATTEMPT_STARTED = "attempt.started"
    ATTEMPT_FINISHED = "attempt.finished"
    # Remote executors: the attempt waits for a worker that can take it (data {reason}), then
    # runs on one (data {node, address}).
    ATTEMPT_WAITING = "attempt.waiting"
    ATTEMPT_PLACED = "attempt.placed"
    # Where an attempt (or a baseline) runs: data {worktree, name, reused, seconds}
    WORKSPACE_READY = "workspace.ready"
    AGENT_MESSAGE = "agent.message"

    BASELINE_RECORDED = "validation.baseline"
    VALIDATION_PASSED = "validation.passed"
    VALIDATION_FAILED = "validation.failed"

    RECOVERY_REQUESTED = "recovery.requested"
    RECOVERY_PLANNED = "recovery.planned"
    RECOVERY_EXHAUSTED = "recovery.exhausted"

    CHECKPOINT_COMMITTED = "checkpoint.committed"
    CHECKPOINT_INTEGRATED = "checkpoint.integrated"
    CHECKPOINT_CONFLICT = "checkpoint.conflict"

    BREAKER_OPENED = "breaker.opened"
    BREAKER_HALF_OPEN = "breaker.half_open"
    BREAKER_CLOSED = "breaker.closed"

    DEADLOCK_DETECTED = "deadlock.detected"

    BUDGET_EXCEEDED = "budget.exceeded"

    PR_PUSHED = "pr.pushed"
    PR_OPENED = "pr.opened"
    PR_WRITTEN = "pr.written"
    PUBLISH_FAILED = "publish.failed"  # a push or PR failed: retried later, or left pending

    NOTIFY_FAILED = "notify.failed"  # a notification sink kept failing: it was given up on


NOTIFIABLE = frozenset(
    {
        EventKind.GOAL_SUCCEEDED,
        EventKind.GOAL_FAILED,
        EventKind.PLAN_AWAITING_APPROVAL,
        EventKind.BUDGET_EXCEEDED,
        EventKind.PROJECT_PAUSED,
        EventKind.BREAKER_OPENED,
    }
)
"""The kinds of event people may be told about (``[notify]``): each one written gets a row in
the store's notification outbox in the same transaction (:mod:`blitz.store.outbox`)."""


@fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One entry of the event log. ``id`` is assigned by the store (0 until written)."""

    kind: EventKind
    goal_id: str = ""
    task_id: str = ""
    attempt_id: str = ""
    project_id: str = ""
    message: str = ""  # human-readable, its first line or :func:`headline` shown alone
    data: Mapping[str, Any] = field(default_factory=dict)
    ts: float = 0.0
    id: int = 0


_WRONG = re.compile(r"^\S.*?: (?:FAILED|TIMED OUT)\b")
"""A line of validation's summary saying a gate or check went wrong: ``test: FAILED (exit 1)``,
``check:command:make x: TIMED OUT after 60s`` (not a test runner's own ``FAILED tests/...``)."""


def headline(message: str) -> str:
    """The line of a multi-line ``message`` a person should read on one line: the lines that
    say what went wrong (the failing gate of a validation), else the first, with how many other
    lines there are. ``test: FAILED (exit 1) (+2 more lines)``."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    picked = [line for line in lines if _WRONG.match(line)] or lines[:1]
    rest = len(lines) - len(picked)
    return "; ".join(picked) + (f" (+{rest} more line{'s' if rest > 1 else ''})" if rest else "")
