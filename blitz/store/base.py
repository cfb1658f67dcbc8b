"""The store interface the engine depends on."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from blitz.domain import (
    Attempt,
    AttemptState,
    Baseline,
    BreakerRecord,
    Command,
    Goal,
    GoalState,
    Project,
    Recovery,
    Task,
    Usage,
)
from blitz.events import Event
from blitz.gatecache import GateCache
from blitz.store.leases import Lease
from blitz.store.slack import StoredSlack

Record = Project | Goal | Task | Attempt | Recovery | BreakerRecord | Baseline
"""Anything :meth:`Store.write` accepts; each is an upsert keyed by its id (task: goal_id + id)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GoalQuery:
    """Which goals to list, one page at a time, newest first: of a project, in some states
    (None: any), whose title, id or branch holds every word of ``text`` (case-insensitive)."""

    project_id: str | None = None
    states: frozenset[GoalState] | None = None
    text: str = ""
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class GoalPage:
    """One page of the goals a query found, and how many it found in all."""

    goals: list[Goal]
    total: int


class Store(Protocol):
    """Durable state with group commit.

    ``write`` stages records and events in memory and returns at once; ``flush`` makes everything
    staged so far durable in one transaction (concurrent callers share it). A background flusher
    also flushes on its own shortly after anything is staged. Within one flush only the last
    version of each record is written; every event is appended. Reads see what was flushed.
    """

    @property
    def gate_results(self) -> GateCache:
        """Kept gate results, shared by every process on the store (written at once)."""
        ...

    @property
    def slack(self) -> StoredSlack:
        """Slack's channels, threads and deliveries (:mod:`blitz.store.slack`)."""
        ...

    # -- writes -----------------------------------------------------------------------------
    def write(self, *records: Record, events: Sequence[Event] = ()) -> None: ...

    async def flush(self) -> None: ...

    def flush_sync(self) -> None:
        """Flush from synchronous code (CLI commands outside the event loop)."""
        ...

    def delete_project(self, project_id: str) -> None:
        """Remove a project and everything of its goals (durable when it returns)."""
        ...

    def replace_plan(self, goal_id: str, tasks: Sequence[Task]) -> None:
        """Make ``tasks`` the goal's only tasks, dropping the others (a plan edited while it
        awaited approval); durable when it returns."""
        ...

    def add_command(self, goal_id: str, kind: str) -> int:
        """Queue a request for the process running ``goal_id`` (durable when it returns)."""
        ...

    def take_commands(self, goal_ids: Collection[str]) -> list[Command]:
        """Return and delete the queued commands for these goals (the ones this process drives:
        another process's commands stay queued for it)."""
        ...

    # -- leases: one process drives a goal (see blitz/store/leases.py) ----------------------
    def claim(self, goal_id: str, owner: str, ttl: float) -> Lease:
        """Take the goal for ``owner`` for ``ttl`` seconds if nobody live holds it (a
        compare-and-swap); return its lease: ``owner``'s if taken, else the holder's. From then on
        this store's writes to the goal are fenced by the lease's epoch."""
        ...

    def renew(self, owner: str, ttl: float) -> set[str]:
        """Extend every lease this store holds; return the goals taken over meanwhile."""
        ...

    def release(self, goal_id: str) -> None:
        """Give up a goal this store holds (anyone may claim it at once)."""
        ...

    def lease(self, goal_id: str) -> Lease | None: ...

    def held(self) -> set[str]:
        """The goals this store holds."""
        ...

    def lost(self) -> frozenset[str]:
        """The goals this store held until another process took them over: its writes to them
        are dropped."""
        ...

    # -- reads ------------------------------------------------------------------------------
    def get_project(self, key: str) -> Project | None:
        """By id or by name."""
        ...

    def find_project_by_path(self, path: str) -> Project | None: ...

    def list_projects(self) -> list[Project]: ...

    def get_goal(self, goal_id: str) -> Goal | None:
        """By id, or by a prefix of an id that matches exactly one goal."""
        ...

    def list_goals(
        self, *, project_id: str | None = None, states: Collection[GoalState] | None = None
    ) -> list[Goal]: ...

    def find_goals(self, query: GoalQuery) -> GoalPage:
        """The page of goals ``query`` asks for, newest first, with the number that match."""
        ...

    def load_tasks(self, goal_id: str) -> list[Task]: ...

    def load_attempts(
        self,
        goal_id: str,
        task_id: str | None = None,
        *,
        states: Collection[AttemptState] | None = None,
    ) -> list[Attempt]:
        """The goal's attempts (or one task's; or only those in ``states``), oldest first."""
        ...

    def usage(self, goal_id: str) -> Usage:
        """The summed usage of every attempt of the goal."""
        ...

    def project_usage(self, project_id: str) -> Usage:
        """Everything the project's goals spent: their attempts, planning and recovery."""
        ...

    def load_recoveries(self, goal_id: str) -> list[Recovery]: ...

    def load_baseline(self, goal_id: str) -> Baseline | None: ...

    def load_breakers(self) -> list[BreakerRecord]: ...

    def events(
        self, *, goal_id: str | None = None, after: int = 0, limit: int = 1000, newest: bool = False
    ) -> list[Event]:
        """Events with id > ``after``, oldest first: the first ``limit`` of them, or with
        ``newest`` the last ``limit`` (``blitz events --last N`` reads only those)."""
        ...

    async def aclose(self) -> None:
        """Flush and stop the background flusher."""
        ...

    def close(self) -> None: ...
