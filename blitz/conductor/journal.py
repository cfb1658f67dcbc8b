"""The journal: the one way the conductor writes to the store. A record and the event that
says what happened to it are written together, in one call, so the log never disagrees with
the records; every event is built here, stamped with the journal's clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blitz.clock import Clock
from blitz.events import Event, EventKind
from blitz.store.base import Record, Store


class Journal:
    """Writes records and their events to a store."""

    __slots__ = ("clock", "store")

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def event(
        self,
        kind: EventKind,
        message: str,
        *,
        goal_id: str = "",
        project_id: str = "",
        task_id: str = "",
        attempt_id: str = "",
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> Event:
        """An event, stamped now unless ``ts`` is given (a batch shares one time)."""
        return Event(
            kind=kind,
            goal_id=goal_id,
            project_id=project_id,
            task_id=task_id,
            attempt_id=attempt_id,
            message=message,
            data=data or {},
            ts=self.clock.time() if ts is None else ts,
        )

    def write(self, *records: Record, events: Sequence[Event] = ()) -> None:
        """Write records and the events that tell of them, together."""
        self.store.write(*records, events=events)

    def emit(self, event: Event) -> None:
        """Write an event on its own (what an attempt reports as it goes)."""
        self.store.write(events=(event,))
