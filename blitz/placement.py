"""Where a remote attempt stands in its wait for a worker, read from the event log.

A remote executor emits ``attempt.waiting`` (data ``{reason}``) while no worker node can take an
attempt, and ``attempt.placed`` once one does. An attempt still waits when its latest
``attempt.waiting`` has no ``attempt.placed`` (nor its end) after it.
"""

from __future__ import annotations

from collections.abc import Iterable

from blitz.events import Event, EventKind

_MOVED_ON = frozenset({EventKind.ATTEMPT_PLACED, EventKind.ATTEMPT_FINISHED})


def waiting_for_worker(events: Iterable[Event], running: Iterable[str]) -> dict[str, str]:
    """Why each of the ``running`` attempts waits for a worker (attempt id -> reason), from
    ``events`` oldest first; attempts that are placed (or never waited) are left out."""
    waits: dict[str, str] = {}
    for event in events:
        if not event.attempt_id:
            continue
        if event.kind is EventKind.ATTEMPT_WAITING:
            reason = event.data.get("reason")
            waits[event.attempt_id] = str(reason) if reason else event.message
        elif event.kind in _MOVED_ON:
            waits.pop(event.attempt_id, None)
    wanted = set(running)
    return {attempt: reason for attempt, reason in waits.items() if attempt in wanted}
