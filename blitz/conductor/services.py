"""What the engine is given to run one project's goals, and what it hands the publisher."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blitz import executors
from blitz.breaker import BreakerPolicy
from blitz.domain import Attempt, Goal, Project, Recovery, Task
from blitz.executors.base import Executor, Setup
from blitz.planner import Planner
from blitz.waiting import RetryPolicy

if TYPE_CHECKING:
    from blitz.backends.base import AgentBackend
    from blitz.conductor.selection import Judge
    from blitz.pool import WorktreePool
    from blitz.validation import Validator
    from blitz.workspace import Workspace


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
    pool: WorktreePool | None = None  # the repository's warm worktrees (None: a fresh one each)
    setup: Setup | None = None  # the project's environment set-up (None: there is none)
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
    executor: Executor = field(default_factory=executors.load)  # where attempts run
    labels: tuple[str, ...] = ()  # worker labels every attempt of the project needs
    fetch_remote: str = ""  # the git remote workers fetch the base branch from ("" = bundles)
    publish_retry_for: float = 300.0  # seconds of retrying a failed publish before leaving it
    # How long work waits for a model provider that is out (the policy model calls follow too).
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Planning and recovery planning wait at most this long for a provider that is out.
    planning_patience: float = 6 * 3600.0


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
