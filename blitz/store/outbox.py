"""The notification outbox: what people are to be told, kept until every sink has it.

A notifiable event (:data:`blitz.events.NOTIFIABLE`) gets a ``notifications`` row in the very
transaction that writes the event (:class:`~blitz.store.commit.GroupCommit` calls
:meth:`Outbox.stage`), so a notification exists if and only if its event does, whatever process
wrote it and whenever that process dies. The daemon's notifier
(:mod:`blitz.integrations.notify.notifier`) later *expands* it into one ``deliveries`` row per
sink that wants it, and records each delivery's attempts until it is delivered or given up on.
Delivery is at least once: a delivery is marked delivered only after the sink took it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from blitz.events import NOTIFIABLE
from blitz.store.database import fetch_rows
from blitz.store.rows import EVENTS
from blitz.store.schema import deliveries, notifications

_KINDS = frozenset(kind.value for kind in NOTIFIABLE)
_COLUMN = {name: i for i, name in enumerate(EVENTS.columns)}


class DeliveryState(StrEnum):
    PENDING = "pending"  # not delivered yet: tried again at ``next_at``
    DELIVERED = "delivered"
    FAILED = "failed"  # given up on (the bound of attempts, or an error no retry can fix)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """A notifiable event as the outbox keeps it; ``key`` is its idempotency key."""

    id: int
    key: str
    ts: float
    kind: str
    goal_id: str = ""
    project_id: str = ""
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One notification to one sink (named ``scope:kind``, e.g. ``daemon:webhook``)."""

    notification_id: int
    sink: str
    state: DeliveryState
    attempts: int = 0
    next_at: float = 0.0
    last_error: str = ""
    delivered_at: float = 0.0


class Outbox:
    """The outbox tables of one store. ``engine`` reads, ``writer`` writes."""

    def __init__(self, engine: sa.Engine, writer: sa.Engine) -> None:
        self._engine = engine
        self._writer = writer

    # -- in the event's transaction -----------------------------------------------------------

    @staticmethod
    def stage(connection: sa.Connection, event_rows: Sequence[tuple[Any, ...]]) -> None:
        """Add a notification for each notifiable event of ``event_rows`` (rows of the event
        log, already redacted), in the transaction ``connection`` writes them in."""
        kind = _COLUMN["kind"]
        rows = [
            {
                "key": uuid.uuid4().hex,
                "ts": row[_COLUMN["ts"]],
                "kind": row[kind],
                "goal_id": row[_COLUMN["goal_id"]],
                "project_id": row[_COLUMN["project_id"]],
                "message": row[_COLUMN["message"]],
                "data": row[_COLUMN["data"]],
                "expanded": False,
            }
            for row in event_rows
            if row[kind] in _KINDS
        ]
        if rows:
            connection.execute(sa.insert(notifications), rows)

    # -- the notifier's work ------------------------------------------------------------------

    def unexpanded(self, limit: int = 100) -> list[Notification]:
        """Notifications whose deliveries are not made yet, oldest first."""
        stmt = (
            sa.select(*notifications.c)
            .where(notifications.c.expanded == sa.false())
            .order_by(notifications.c.id)
            .limit(limit)
        )
        return [_notification(row) for row in fetch_rows(self._engine, stmt)]

    def expand(self, notification_id: int, sinks: Sequence[str], now: float) -> bool:
        """Make the notification's deliveries, one per sink in ``sinks``, due ``now``; False if
        another process made them first."""
        rows = [
            {
                "notification_id": notification_id,
                "sink": sink,
                "state": DeliveryState.PENDING.value,
                "attempts": 0,
                "next_at": now,
                "last_error": "",
                "delivered_at": 0.0,
            }
            for sink in dict.fromkeys(sinks)
        ]
        mark = (
            sa.update(notifications)
            .where(notifications.c.id == notification_id)
            .where(notifications.c.expanded == sa.false())
            .values(expanded=True)
        )
        with self._writer.begin() as connection:
            if connection.execute(mark).rowcount == 0:
                return False
            if rows:
                connection.execute(sa.insert(deliveries), rows)
        return True

    def take_due(
        self, now: float, hold: float, limit: int = 100
    ) -> list[tuple[Delivery, Notification]]:
        """Take the pending deliveries whose time has come, with their notifications, oldest
        first: each is due again only after ``hold`` seconds, so another process sharing the
        store does not send it meanwhile, and one that died sending it is retried then."""
        stmt = (
            sa.select(*deliveries.c, *notifications.c)
            .join(notifications, notifications.c.id == deliveries.c.notification_id)
            .where(deliveries.c.state == DeliveryState.PENDING.value)
            .where(deliveries.c.next_at <= now)
            .order_by(deliveries.c.next_at, deliveries.c.notification_id, deliveries.c.sink)
            .limit(limit)
        )
        if self._writer.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=deliveries, skip_locked=True)
        width = len(deliveries.c)
        taken = []
        # A writer's transaction (SQLite: BEGIN IMMEDIATE): no other process takes them too.
        with self._writer.begin() as connection:
            for row in connection.execute(stmt).all():
                delivery, notification = _delivery(row[:width]), _notification(row[width:])
                connection.execute(
                    sa.update(deliveries)
                    .where(deliveries.c.notification_id == delivery.notification_id)
                    .where(deliveries.c.sink == delivery.sink)
                    .values(next_at=now + hold)
                )
                taken.append((delivery, notification))
        return taken

    def next_due(self) -> float | None:
        """When the next pending delivery is due (None: none is pending)."""
        stmt = sa.select(sa.func.min(deliveries.c.next_at)).where(
            deliveries.c.state == DeliveryState.PENDING.value
        )
        [(when,)] = fetch_rows(self._engine, stmt)
        return None if when is None else float(when)

    def delivered(self, delivery: Delivery, now: float) -> None:
        self._update(
            delivery,
            state=DeliveryState.DELIVERED.value,
            attempts=delivery.attempts + 1,
            delivered_at=now,
            last_error="",
        )

    def retry(self, delivery: Delivery, error: str, next_at: float) -> None:
        """Record a failed attempt; the delivery is tried again at ``next_at``."""
        self._update(delivery, attempts=delivery.attempts + 1, next_at=next_at, last_error=error)

    def give_up(self, delivery: Delivery, error: str) -> None:
        """Record a failed attempt and give the delivery up."""
        self._update(
            delivery,
            state=DeliveryState.FAILED.value,
            attempts=delivery.attempts + 1,
            last_error=error,
        )

    def _update(self, delivery: Delivery, **values: Any) -> None:
        stmt = (
            sa.update(deliveries)
            .where(deliveries.c.notification_id == delivery.notification_id)
            .where(deliveries.c.sink == delivery.sink)
            .values(**values)
        )
        with self._writer.begin() as connection:
            connection.execute(stmt)

    # -- reading ------------------------------------------------------------------------------

    def deliveries(self, *, limit: int = 1000) -> list[tuple[Delivery, Notification]]:
        """The newest deliveries with their notifications, newest first."""
        stmt = (
            sa.select(*deliveries.c, *notifications.c)
            .join(notifications, notifications.c.id == deliveries.c.notification_id)
            .order_by(deliveries.c.notification_id.desc(), deliveries.c.sink)
            .limit(limit)
        )
        width = len(deliveries.c)
        return [
            (_delivery(row[:width]), _notification(row[width:]))
            for row in fetch_rows(self._engine, stmt)
        ]

    def waiting(self) -> int:
        """How many notifications wait to be expanded (none are while a daemon runs)."""
        stmt = sa.select(sa.func.count()).where(notifications.c.expanded == sa.false())
        [(count,)] = fetch_rows(self._engine, stmt)
        return int(count)


def _notification(row: Sequence[Any]) -> Notification:
    id_, key, ts, kind, goal_id, project_id, message, data, _expanded = row
    return Notification(
        id=int(id_),
        key=key,
        ts=float(ts),
        kind=kind,
        goal_id=goal_id,
        project_id=project_id,
        message=message,
        data=json.loads(data) if data else {},
    )


def _delivery(row: Sequence[Any]) -> Delivery:
    notification_id, sink, state, attempts, next_at, last_error, delivered_at = row
    return Delivery(
        notification_id=int(notification_id),
        sink=sink,
        state=DeliveryState(state),
        attempts=int(attempts),
        next_at=float(next_at),
        last_error=last_error,
        delivered_at=float(delivered_at),
    )
