"""Slack's records in the store (tables ``slack_channels``, ``slack_threads``, ``slack_seen``):
which project each channel's goals go to, the thread that follows each goal started from Slack,
and the deliveries already taken.

Each is written at once in a transaction of its own, not staged with the group commit: none
belongs to a goal's lease, and the thread of a goal must be known before the goal's first event
is read. What is kept here is ids and timestamps, nothing a person wrote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from blitz.store.schema import slack_channels, slack_seen, slack_threads


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackThread:
    """The Slack thread of a goal: the message that started it (``channel``, ``thread_ts``)
    and the replies edited since (the plan's, the progress's); ``ended`` once the end was
    posted."""

    goal_id: str
    channel: str
    thread_ts: str
    user: str = ""
    plan_ts: str = ""
    progress_ts: str = ""
    ended: bool = False
    created_at: float = 0.0

    def evolve(self, **changes: Any) -> SlackThread:
        return replace(self, **changes)


class StoredSlack:
    """Slack's records of one store."""

    def __init__(self, engine: sa.Engine, writer: sa.Engine) -> None:
        self._engine = engine
        self._writer = writer

    # -- channels ---------------------------------------------------------------------------

    def map_channel(self, channel: str, project_id: str) -> None:
        """Send the goals of ``channel`` to the project (replacing an earlier mapping)."""
        with self._writer.begin() as connection:
            connection.execute(sa.delete(slack_channels).where(slack_channels.c.channel == channel))
            connection.execute(
                sa.insert(slack_channels).values(channel=channel, project_id=project_id)
            )

    def unmap_channel(self, channel: str) -> bool:
        """Forget the channel's project; False if it had none."""
        with self._writer.begin() as connection:
            done = connection.execute(
                sa.delete(slack_channels).where(slack_channels.c.channel == channel)
            )
            return bool(done.rowcount)

    def channels(self) -> dict[str, str]:
        """Every mapped channel and its project id."""
        stmt = sa.select(slack_channels.c.channel, slack_channels.c.project_id).order_by(
            slack_channels.c.channel
        )
        with self._engine.connect() as connection:
            return {row.channel: row.project_id for row in connection.execute(stmt)}

    def forget_project(self, project_id: str) -> None:
        """Unmap every channel of a removed project."""
        with self._writer.begin() as connection:
            connection.execute(
                sa.delete(slack_channels).where(slack_channels.c.project_id == project_id)
            )

    # -- threads ----------------------------------------------------------------------------

    def put_thread(self, thread: SlackThread) -> None:
        """Keep ``thread`` (a newer version of a goal's thread replaces the older one)."""
        values = {
            "goal_id": thread.goal_id,
            "channel": thread.channel,
            "thread_ts": thread.thread_ts,
            "user": thread.user,
            "plan_ts": thread.plan_ts,
            "progress_ts": thread.progress_ts,
            "ended": thread.ended,
            "created_at": thread.created_at or time.time(),
        }
        with self._writer.begin() as connection:
            connection.execute(
                sa.delete(slack_threads).where(slack_threads.c.goal_id == thread.goal_id)
            )
            connection.execute(sa.insert(slack_threads).values(**values))

    def thread_of_goal(self, goal_id: str) -> SlackThread | None:
        found = self._threads(slack_threads.c.goal_id == goal_id)
        return found[0] if found else None

    def threads_at(self, channel: str, thread_ts: str) -> list[SlackThread]:
        """The goals of the thread rooted at ``thread_ts``, oldest first (a follow-up goal
        shares its thread with the goal it continues)."""
        return self._threads(
            sa.and_(slack_threads.c.channel == channel, slack_threads.c.thread_ts == thread_ts)
        )

    def open_threads(self) -> list[SlackThread]:
        """The threads whose end is still to be posted."""
        return self._threads(slack_threads.c.ended == sa.false())

    def _threads(self, where: sa.ColumnElement[bool]) -> list[SlackThread]:
        stmt = (
            sa.select(*slack_threads.c)
            .where(where)
            .order_by(slack_threads.c.created_at, slack_threads.c.goal_id)
        )
        with self._engine.connect() as connection:
            return [
                SlackThread(
                    goal_id=row.goal_id,
                    channel=row.channel,
                    thread_ts=row.thread_ts,
                    user=row.user,
                    plan_ts=row.plan_ts,
                    progress_ts=row.progress_ts,
                    ended=bool(row.ended),
                    created_at=row.created_at,
                )
                for row in connection.execute(stmt)
            ]

    # -- deliveries -------------------------------------------------------------------------

    def first_time(self, key: str) -> bool:
        """Record ``key`` (an event id, a message's channel:ts) as taken; False if it already
        was (a retried delivery, or the same message arriving as a mention and a message)."""
        try:
            with self._writer.begin() as connection:
                connection.execute(sa.insert(slack_seen).values(key=key, seen_at=time.time()))
        except sa.exc.IntegrityError:
            return False
        return True
