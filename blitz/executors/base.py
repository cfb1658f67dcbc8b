"""The executor seam: an :class:`Executor` runs one attempt described by an
:class:`AttemptRequest` and returns its :class:`AttemptReport`.

These are the only types the engine and an executor share. The engine builds requests and
applies reports; an executor decides where the attempt runs (this process, a cluster).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from blitz.domain import Attempt, Baseline, GateResult, Goal, Project, Task, Usage
from blitz.events import Event

if TYPE_CHECKING:
    from blitz.backends.base import AgentBackend
    from blitz.conductor.selection import Selection
    from blitz.pool import WorktreePool
    from blitz.validation import Validator
    from blitz.workspace import Workspace


def worktree_name(goal_id: str, name: str) -> str:
    """Worktrees are named after their goal, so a resume can find every one a dead process left,
    even one whose attempt never reached the store."""
    return f"{goal_id}--{name}"


class Setup(Protocol):
    """Makes a worktree's environment ready (:class:`blitz.envsetup.EnvSetup`)."""

    async def ensure(self, worktree: Path, *, marker: Path) -> GateResult | None:
        """Run the project's set-up command when the files it depends on changed since
        ``marker`` was written (its result), else do nothing (None)."""
        ...

    def digest(self, worktree: Path) -> str:
        """What gate results in ``worktree`` depend on besides its tree: the set-up's inputs."""
        ...


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the work was wrong -> recovery
    CRASHED = "crashed"  # the machinery broke -> retry
    CONFLICT = "conflict"  # the change does not apply on the goal branch's new head -> re-run
    CONFIG = "config"  # the user must fix a setting (a rejected key) -> project paused, re-queued
    UNAVAILABLE = "unavailable"  # the model provider is out -> the task waits, then runs again
    LOST = "lost"  # a best-of-N candidate that another candidate beat (its work kept as a ref)


ROUTER_OUTCOME: dict[Outcome, Literal["succeeded", "failed", "crashed", "cancelled"]] = {
    Outcome.SUCCEEDED: "succeeded",
    Outcome.FAILED: "failed",  # the work was wrong; the machinery worked
    Outcome.CONFLICT: "failed",
    Outcome.CRASHED: "crashed",
    Outcome.CONFIG: "cancelled",  # neither the work nor the provider's health is at fault
    # The provider's own breaker has been told already (by the model calls or CircuitBackend);
    # blitz's machinery and the work are not at fault.
    Outcome.UNAVAILABLE: "cancelled",
    Outcome.LOST: "failed",
}
"""How each outcome counts for the router and the breakers."""

ATTEMPT_REFS = "refs/blitz/attempts"
"""Best-of-N candidates' commits are kept under ``refs/blitz/attempts/<goal>/<task>/<attempt>``."""


class Meter:
    """What an attempt has spent so far, as its backend reports each model call."""

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage = Usage()

    def add(self, usage: Usage) -> None:
        self.usage += usage


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRequest:
    """Everything one attempt needs: the records, where it runs (workspace), with which
    backend, how it is checked, its limits, and its best-of-N selection if any."""

    project: Project
    goal: Goal
    task: Task
    attempt: Attempt
    backend: AgentBackend
    workspace: Workspace | None  # None only for git-free benchmarks
    pool: WorktreePool | None = None  # where its worktree comes from (None: a fresh one)
    setup: Setup | None = None  # the project's environment set-up (None: there is none)
    validator: Validator | None
    baseline: Baseline | None
    timeout: float
    emit: Callable[[Event], None]
    budget_usd: float | None = None  # what this attempt may still spend (None = no cap)
    model: str = ""  # provider:model for this attempt ("" = the backend's default)
    selection: Selection | None = None  # set for best-of-N candidates: decides who integrates
    label: str = ""  # how a candidate is named in verdicts ("codex #2")
    # Worker labels the attempt needs (the task's and the project's): a remote executor runs it
    # only on a node that offers every one. The local executor ignores them.
    labels: tuple[str, ...] = ()
    # The project's git remote a remote executor's worker fetches the base branch from ("":
    # everything travels as bundles). The local executor ignores it.
    fetch_remote: str = ""
    meter: Meter | None = None  # counts spending as it happens (read if the attempt is cancelled)
    now: Callable[[], float] = time.time
    fault: Callable[[str], None] = lambda point: None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptReport:
    """What came of one attempt; the engine applies it."""

    outcome: Outcome
    attempt: Attempt  # the final record (state, commit, gates, diff, usage)
    error: str = ""
    messages: tuple[str, ...] = field(default_factory=tuple)
    # UNAVAILABLE: how long the provider asked to be left alone (None: not said).
    retry_after: float | None = None
    # UNAVAILABLE because the executor could not reach where attempts run (a cluster gone), not
    # the model provider: the task waits and the executor's breaker hears of it.
    executor_down: bool = False


class Executor(Protocol):
    """Runs attempts somewhere. ``run`` never raises except on cancellation: whatever goes
    wrong in the attempt is its report's outcome."""

    async def run(self, request: AttemptRequest) -> AttemptReport:
        """Run one attempt to its end and report what came of it."""
        ...
