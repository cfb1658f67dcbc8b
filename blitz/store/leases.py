"""Leases: one process owns (drives) a goal at a time, and a process a goal was taken from can
no longer write to it.

Each goal has a row in ``leases``: its owner (a runner id, ``pid@host``), an epoch and when the
lease expires (wall time). A claim is a compare-and-swap in one write transaction (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: the row locked ``FOR UPDATE``): it succeeds when the goal has no
lease, its lease expired or was released, its owner is a process of this host that is gone, or
the owner is this very process. Every change of owner adds one to the epoch, the fencing token:
a store remembers the epoch of each goal it holds, and its group commit checks that epoch, in
the same transaction as the write, before it writes anything of the goal (:meth:`LeaseBook.fence`).
A goal whose epoch moved on is *lost*: its staged records and events are dropped, and the engine
reads :attr:`LeaseBook.lost` and stops driving it. Rows are never deleted while their goal
exists, so an epoch is never reused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from blitz.domain import Goal
from blitz.proctree import runner_alive
from blitz.store.schema import leases


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """Who drives a goal, until when, and the epoch of that ownership."""

    goal_id: str
    owner: str  # "" once released
    epoch: int
    expires_at: float  # wall time

    def live(self, now: float) -> bool:
        return bool(self.owner) and self.expires_at > now


def held_elsewhere(lease: Lease | None, owner: str) -> bool:
    """Whether a live process other than ``owner`` holds ``lease`` (a claim would fail)."""
    if lease is None or lease.owner == owner or not lease.live(time.time()):
        return False
    return runner_alive(lease.owner)


def orphaned(goal: Goal, lease: Lease | None, *, owner: str, ttl: float) -> bool:
    """Whether an unfinished goal waits to be taken over: no live process but ``owner`` holds
    its lease. A goal that never had a lease is left alone while it is younger than a lease
    (``ttl`` seconds): its creator claims it right after writing it."""
    if lease is None:
        return time.time() - goal.created_at >= ttl
    return not held_elsewhere(lease, owner)


class LeaseBook:
    """The leases one store holds, and the claims, renewals and checks that keep them.

    ``engine``: the store's database; ``writer``: the same for writes. ``alive``: whether a
    runner id names a process that still runs (a dead owner on this host loses its lease at once,
    without waiting for it to expire).
    """

    def __init__(
        self,
        engine: sa.Engine,
        writer: sa.Engine,
        *,
        alive: Callable[[str], bool] = runner_alive,
    ) -> None:
        self.engine = engine
        self.writer = writer
        self._alive = alive
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}  # goal id -> the epoch this store holds it at
        self._lost: set[str] = set()  # goals taken over by another process: writes are dropped
        self._postgres = writer.dialect.name == "postgresql"

    # -- what this store holds ----------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether any write may need fencing (this store holds or lost a goal)."""
        return bool(self._held or self._lost)

    @property
    def held(self) -> dict[str, int]:
        """The goals this store holds, with their epochs."""
        with self._lock:
            return dict(self._held)

    @property
    def lost(self) -> frozenset[str]:
        """The goals this store held until another process took them over."""
        with self._lock:
            return frozenset(self._lost)

    # -- claiming, renewing, releasing -----------------------------------------------------------

    def claim(self, goal_id: str, owner: str, ttl: float) -> Lease:
        """Take the goal for ``owner`` for ``ttl`` seconds if it is free (see the module); return
        its lease afterwards: ``owner``'s if the claim succeeded, else the holder's."""
        now = time.time()
        with self.writer.begin() as connection:
            current = self._locked(connection, goal_id)
            if current is None:
                first = Lease(goal_id=goal_id, owner=owner, epoch=1, expires_at=now + ttl)
                insert = _insert_missing(self._postgres).values(
                    goal_id=goal_id, owner=owner, epoch=1, expires_at=first.expires_at
                )
                if connection.execute(insert.returning(leases.c.goal_id)).first() is not None:
                    return self._hold(first)
                current = self._locked(connection, goal_id)  # another process inserted it
                assert current is not None
            ours = current.owner == owner and self.held.get(goal_id) == current.epoch
            free = not current.live(now) or current.owner == owner or not self._alive(current.owner)
            if not ours and not free:
                return current
            epoch = current.epoch if ours else current.epoch + 1
            changed = connection.execute(
                sa.update(leases)
                .where(leases.c.goal_id == goal_id, leases.c.epoch == current.epoch)
                .values(owner=owner, epoch=epoch, expires_at=now + ttl)
            ).rowcount
            if not changed:  # cannot happen under the row lock; say so rather than guess
                raise RuntimeError(f"the lease of goal {goal_id} changed during its claim")
        return self._hold(Lease(goal_id=goal_id, owner=owner, epoch=epoch, expires_at=now + ttl))

    def renew(self, owner: str, ttl: float) -> set[str]:
        """Extend every lease this store holds by ``ttl`` seconds from now; return the goals
        found taken over meanwhile (they become lost)."""
        held = self.held
        if not held:
            return set()
        until = time.time() + ttl
        gone = set()
        with self.writer.begin() as connection:
            for goal_id, epoch in held.items():
                changed = connection.execute(
                    sa.update(leases)
                    .where(
                        leases.c.goal_id == goal_id,
                        leases.c.epoch == epoch,
                        leases.c.owner == owner,
                    )
                    .values(expires_at=until)
                ).rowcount
                if not changed:
                    gone.add(goal_id)
        self._lose(gone)
        return gone

    def release(self, goal_id: str) -> None:
        """Give the goal up (it ended, or this process stops): anyone may claim it at once."""
        with self._lock:
            epoch = self._held.pop(goal_id, None)
        if epoch is None:
            return
        with self.writer.begin() as connection:
            connection.execute(
                sa.update(leases)
                .where(leases.c.goal_id == goal_id, leases.c.epoch == epoch)
                .values(owner="", expires_at=0.0)
            )

    def get(self, goal_id: str) -> Lease | None:
        """The goal's lease as stored (None: it never had one)."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(leases).where(leases.c.goal_id == goal_id)).first()
        return _lease(row) if row is not None else None

    # -- the fence of group commit ---------------------------------------------------------------

    def fence(self, connection: sa.Connection, goal_ids: Collection[str]) -> set[str]:
        """Of ``goal_ids`` (the goals a flush writes to), those it must not write: the goals this
        store held and lost. Runs in the flush's transaction, so no claim can come between the
        check and the write (SQLite: the write lock is held; PostgreSQL: the rows are locked)."""
        with self._lock:
            lost = self._lost.intersection(goal_ids)
            held = {g: self._held[g] for g in goal_ids if g in self._held}
        if held:
            stmt = sa.select(leases.c.goal_id, leases.c.epoch).where(
                leases.c.goal_id.in_(list(held))
            )
            if self._postgres:
                stmt = stmt.with_for_update()
            stored = {goal_id: epoch for goal_id, epoch in connection.execute(stmt)}
            gone = {g for g, epoch in held.items() if stored.get(g) != epoch}
            self._lose(gone)
            lost |= gone
        return lost

    def forget(self, goal_ids: Collection[str]) -> None:
        """Drop what this store knows of these goals (they were deleted)."""
        with self._lock:
            for goal_id in goal_ids:
                self._held.pop(goal_id, None)
                self._lost.discard(goal_id)

    # -- internals ------------------------------------------------------------------------------

    def _locked(self, connection: sa.Connection, goal_id: str) -> Lease | None:
        stmt = sa.select(leases).where(leases.c.goal_id == goal_id)
        if self._postgres:
            stmt = stmt.with_for_update()
        row = connection.execute(stmt).first()
        return _lease(row) if row is not None else None

    def _hold(self, lease: Lease) -> Lease:
        with self._lock:
            self._held[lease.goal_id] = lease.epoch
            self._lost.discard(lease.goal_id)
        return lease

    def _lose(self, goal_ids: Collection[str]) -> None:
        with self._lock:
            for goal_id in goal_ids:
                self._held.pop(goal_id, None)
                self._lost.add(goal_id)


def _lease(row: sa.Row[Any]) -> Lease:
    goal_id, owner, epoch, expires_at = tuple(row)
    return Lease(goal_id=goal_id, owner=owner, epoch=int(epoch), expires_at=float(expires_at))


def _insert_missing(postgres: bool) -> sa.Insert:
    """An insert of a lease row that does nothing if the goal has one already."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if postgres else sqlite.insert
    return insert(leases).on_conflict_do_nothing(index_elements=["goal_id"])
