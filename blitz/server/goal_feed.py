"""Following one goal from inside the daemon: its events as the store gets them, each batch with
the goal's summary after it. For the integrations that tell people about a goal as it goes
(Slack's thread, notifications, MCP), so none of them polls the store its own way.

The events come from the daemon's :class:`~blitz.server.events.EventHub`, the one poller of the
event log that the SSE streams use too: a feed reads the store only when the hub has seen a new
event (or once a ``wait``), one page of the goal's events at a time, and then the goal's records
once for the whole batch (a burst of events gives one summary, so a progress message edited in
place is edited once, not once an event).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from blitz import goal_summary
from blitz.events import Event, EventKind
from blitz.goal_summary import GoalSummary
from blitz.server.events import EventHub, batches

ENDINGS = frozenset({EventKind.GOAL_SUCCEEDED, EventKind.GOAL_FAILED, EventKind.GOAL_CANCELLED})
"""The events a goal ends with (its record ended in the same write)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GoalUpdate:
    """Events of a goal new since the last update (oldest first), and the goal after them.
    ``ended``: this update carries the goal's end (with ``until_end`` the feed stops here)."""

    events: tuple[Event, ...]
    summary: GoalSummary
    ended: bool

    @property
    def last_id(self) -> int:
        """The id to follow on from (a feed resumed ``after`` it misses nothing)."""
        return self.events[-1].id


async def follow_goal(
    hub: EventHub,
    goal_id: str,
    *,
    after: int = 0,
    until_end: bool = True,
    wait: float = 1.0,
) -> AsyncGenerator[GoalUpdate, None]:
    """The updates of goal ``goal_id`` for events with ids above ``after``: what the store
    already holds first, then as they are written, until the hub closes, the caller stops, or
    (``until_end``) the goal has ended. :class:`~blitz.errors.NotFound` before anything if
    there is no such goal.

    A goal reopened after it ended (a task retried) goes on, so with ``until_end=False`` a
    caller sees it end more than once.
    """
    store = hub.store
    await asyncio.to_thread(goal_summary.read, store, goal_id)  # NotFound now, not later
    feed = batches(hub, goal_id=goal_id, after=after, wait=wait)
    async with contextlib.aclosing(feed):
        async for batch in feed:
            summary = await asyncio.to_thread(goal_summary.read, store, goal_id)
            ended = summary.ended and any(e.kind in ENDINGS for e in batch)
            yield GoalUpdate(events=tuple(batch), summary=summary, ended=ended)
            if ended and until_end:
                return
