"""Ownership: the leases of the goals one engine drives (see :mod:`blitz.store.leases`).

An engine drives a goal only once it has claimed the goal's lease in the store, a
compare-and-swap that fails while another live process holds it. While it runs, it renews its
leases every third of their length; a goal it stops driving is released after its last writes
are flushed. A goal found taken over (its renewal failed, or a flush found its epoch moved on
and dropped the writes) is *lost*: the engine stops driving it at once, without writing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from blitz.clock import Clock
from blitz.conductor.jobs import AttemptJob, Job
from blitz.conductor.publishing import pending as publishing_pending
from blitz.domain import GOAL_DONE, AttemptState, Goal
from blitz.errors import UserError
from blitz.store.base import Store

if TYPE_CHECKING:
    from blitz.conductor.goal import GoalRun
    from blitz.conductor.spending import Spending
    from blitz.router import Router

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
"""How long a claim holds a goal unless renewed (the ``lease_seconds`` setting)."""


class GoalTaken(UserError):
    """The goal cannot be taken: another live process drives it, or it has ended."""

    def __init__(self, message: str, *, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder


class Ownership:
    """Claims, renews and releases the leases of one engine's goals, as ``owner``."""

    def __init__(self, store: Store, clock: Clock, *, owner: str, ttl: float) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner
        self.ttl = ttl
        self._claimed: set[str] = set()  # the goals this engine holds (of those its store holds)
        self._abandoned: set[GoalRun] = set()  # goals taken over, with jobs still out

    def claim(self, goal_id: str) -> None:
        """Take the goal, or raise :class:`GoalTaken` naming the process that holds it."""
        if goal_id in self.store.held() and goal_id not in self._claimed:
            raise GoalTaken(
                f"goal {goal_id} is driven by another engine of this process ({self.owner})",
                holder=self.owner,
            )
        lease = self.store.claim(goal_id, self.owner, self.ttl)
        if lease.owner != self.owner:
            raise GoalTaken(
                f"goal {goal_id} is driven by another process ({lease.owner}); it is taken "
                "over only once that process ends or stops renewing its lease",
                holder=lease.owner,
            )
        self._claimed.add(goal_id)

    def take(self, goal: Goal) -> Goal:
        """Claim an unfinished goal and return its record as stored now: the process that held
        it before may have moved it on (even ended it) since ``goal`` was read."""
        self.claim(goal.id)
        now = self.store.get_goal(goal.id) or goal
        if now.state in GOAL_DONE and not publishing_pending(now):
            self._claimed.discard(goal.id)
            self.store.release(goal.id)
            raise GoalTaken(f"goal {goal.id} already ended ({now.state.value})")
        return now

    def abandon_lost(self, runs: dict[str, GoalRun], router: Router) -> None:
        """Stop driving the goals of ``runs`` another process took over: they leave ``runs`` and
        the router, and their attempts are cancelled. Nothing more of them is written (the
        store would drop it anyway); their jobs' reports are :meth:`discarded`."""
        lost = self.store.lost()
        for goal_id in [g for g in runs if g in lost]:
            run = runs.pop(goal_id)
            self._claimed.discard(goal_id)
            log.warning("goal %s was taken over by another process; no longer driving it", goal_id)
            router.withdraw(goal_id)
            for job in run.attempt_jobs.values():
                job.cancel()
            if run.jobs:
                self._abandoned.add(run)

    @property
    def jobs_out(self) -> bool:
        """Whether jobs of goals taken over are still unwinding (cancelled, not yet reported):
        the engine waits for them before it returns, so no agent outlives it."""
        return bool(self._abandoned)

    def discarded(self, job: Job, router: Router, spending: Spending) -> bool:
        """Whether ``job`` belongs to an abandoned goal: then what it held is freed (its router
        slot, its attempts' meters) and its report goes unrecorded."""
        if job.run not in self._abandoned:
            return False
        if isinstance(job, AttemptJob):
            spending.close(job.made, state=AttemptState.CANCELLED, error="", at=0.0)
            router.done(job.item, outcome="cancelled")
        if not job.run.jobs:
            self._abandoned.discard(job.run)
        return True

    async def keep(
        self, driving: Callable[[], Collection[str]], on_lost: Callable[[], None]
    ) -> None:
        """Renew the leases every third of their length, and release those of the goals no
        longer ``driving`` once their writes are flushed; ``on_lost`` is called when a renewal
        finds a goal taken over. Runs until cancelled."""
        while True:
            await self.clock.sleep(self.ttl / 3)
            try:
                if await asyncio.to_thread(self.store.renew, self.owner, self.ttl):
                    on_lost()
                await self.release(keep=driving)
            except Exception:  # the database may be briefly unreachable: try at the next turn
                log.exception("renewing the goal leases failed; trying again")

    async def let_go(self, goal_id: str) -> None:
        """Give up a goal this engine claimed but cannot drive, once its writes are flushed."""
        self._claimed.discard(goal_id)
        await self.store.flush()
        await asyncio.to_thread(self.store.release, goal_id)

    async def release(self, keep: Callable[[], Collection[str]] = tuple) -> None:
        """Flush, then give up every goal this engine holds but those ``keep`` names."""
        if not self._claimed - set(keep()):
            return
        await self.store.flush()
        for goal_id in self._claimed - set(keep()):  # asked again: the flush took a while
            self._claimed.discard(goal_id)
            await asyncio.to_thread(self.store.release, goal_id)
