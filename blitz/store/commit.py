"""Group commit: writes staged in memory, made durable together by one transaction per flush.

``write`` stages records and turns events into rows at once (so bad event data fails in its
writer, never in a flush); only the last version of each record is kept, and it becomes a row
when flushed, so a record written many times between flushes is converted once. A flush moves
everything staged into one transaction run in a worker thread, so records and their events land
together or not at all, and writes made meanwhile wait for the next flush. A failed flush puts
its rows back, behind any newer versions staged since, and raises to everyone awaiting it.

A notifiable event also gets a row of the notification outbox in the same transaction
(:meth:`~blitz.store.outbox.Outbox.stage`), so a notification exists exactly when its event does.

The transaction first asks the store's leases which of the goals it writes to were taken over
by another process (:meth:`~blitz.store.leases.LeaseBook.fence`): their records and events are
dropped, not written, so a process that lost a goal cannot change it any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from blitz.domain import Goal
from blitz.events import Event
from blitz.store.base import Record
from blitz.store.database import BulkInsert
from blitz.store.leases import LeaseBook
from blitz.store.outbox import Outbox
from blitz.store.rows import EVENTS, RECORDS, RowCodec

log = logging.getLogger(__name__)

StagedKey = tuple[RowCodec[Any], Any]
"""A staged record's identity: its codec and its primary key."""


class GroupCommit:
    """The staged writes of one store and the flushes that commit them.

    ``writer`` is the engine that writes; ``upserts`` the upsert of each record type's rows and
    ``insert_events`` the insert of event rows. ``flush_delay``: seconds from the first staged
    write to the background flush; ``retry_delay``: seconds it waits after a failed flush.
    ``leases``: the goals this store holds, whose writes are fenced (None: nothing is).
    ``outbox``: where notifiable events become notifications (None: nowhere).
    """

    def __init__(
        self,
        writer: sa.Engine,
        upserts: Mapping[RowCodec[Any], BulkInsert],
        insert_events: BulkInsert,
        *,
        flush_delay: float,
        retry_delay: float,
        leases: LeaseBook | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.writer = writer
        self._outbox = outbox
        self._leases = leases
        self.flush_delay = flush_delay
        self.retry_delay = retry_delay
        self._upserts = upserts
        self._insert_events = insert_events
        self._lock = threading.Lock()  # guards the staged rows and the counters
        self.commit_lock = threading.Lock()
        """One transaction at a time: flushes, and the store's transactions that change staged
        rows (hold it around them)."""
        self._rows: dict[StagedKey, Any] = {}  # staged records by codec and primary key
        self._events: list[tuple[Any, ...]] = []
        self._staged = 0  # number of write() calls so far
        self._durable = 0  # every write() up to this number is committed
        self._inflight: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    def write(self, records: Sequence[Record], events: Sequence[Event]) -> None:
        """Stage ``records`` (upserts) and ``events``; start the background flusher if there is
        a running loop (otherwise :meth:`flush_sync` commits)."""
        try:
            staged = [((codec := RECORDS[type(r)], codec.key(r)), r) for r in records]
        except KeyError:
            wrong = next(r for r in records if type(r) not in RECORDS)
            raise TypeError(f"the store cannot write {type(wrong).__name__}") from None
        to_row = EVENTS.to_row
        event_rows = [to_row(e) for e in events]
        with self._lock:
            self._rows.update(staged)
            self._events += event_rows
            self._staged += 1
        flusher = self._flusher
        if flusher is None or flusher.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._flusher = loop.create_task(self._flush_in_background())

    async def flush(self) -> None:
        """Return once everything staged before the call is committed."""
        target = self._staged
        while self._durable < target:
            inflight = self._inflight
            if inflight is None or inflight.done():
                inflight = self._inflight = asyncio.ensure_future(asyncio.to_thread(self._commit))
            # Shielded: a cancelled caller must not cancel the flush others are waiting for.
            await asyncio.shield(inflight)

    def flush_sync(self) -> None:
        """Commit everything staged, in the calling thread."""
        target = self._staged
        while self._durable < target:
            self._commit()

    async def stop(self) -> None:
        """Stop the background flusher (what it has not flushed stays staged)."""
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            flusher.cancel()
            await asyncio.wait([flusher])

    def stop_sync(self) -> None:
        """Stop the background flusher from synchronous code."""
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            with contextlib.suppress(RuntimeError):  # its loop is already closed
                flusher.cancel()

    def unstage(
        self, pick: Callable[[Mapping[StagedKey, Any]], Collection[StagedKey]]
    ) -> dict[StagedKey, Any]:
        """Drop the staged records whose keys ``pick`` chooses from all those staged (it runs
        while no write can stage more), and return them."""
        with self._lock:
            dropped = {key: self._rows.pop(key) for key in pick(self._rows)}
        return dropped

    def restage(self, records: Mapping[StagedKey, Any]) -> None:
        """Stage again records :meth:`unstage` dropped, behind those staged since."""
        with self._lock:
            self._rows = {**records, **self._rows}

    async def _flush_in_background(self) -> None:
        delay = self.flush_delay
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
            except Exception:
                log.exception("store flush failed; the data stays staged and is retried")
                delay = self.retry_delay
                continue
            if self._durable >= self._staged:
                return
            delay = self.flush_delay

    def _commit(self) -> None:
        """Commit everything staged now in one transaction; on failure stage it again."""
        with self.commit_lock:
            with self._lock:
                rows, event_rows, staged = self._rows, self._events, self._staged
                self._rows, self._events = {}, []
            if rows or event_rows:
                by_codec: dict[RowCodec[Any], list[tuple[Any, ...]]] = {}
                try:
                    for (codec, _), record in rows.items():
                        by_codec.setdefault(codec, []).append(codec.to_row(record))
                    with self.writer.begin() as connection:
                        kept_events = event_rows
                        if self._leases is not None and self._leases.active:
                            lost = self._leases.fence(connection, _goals_of(rows, event_rows))
                            if lost:  # taken over: nothing of those goals is written
                                by_codec, kept_events = _without(lost, rows, event_rows)
                        for codec, codec_rows in by_codec.items():
                            self._upserts[codec].run(connection, codec_rows)
                        if kept_events:
                            self._insert_events.run(connection, kept_events)
                            if self._outbox is not None:
                                self._outbox.stage(connection, kept_events)
                except BaseException:
                    with self._lock:
                        rows.update(self._rows)  # rows staged since then are newer: they win
                        self._rows = rows
                        self._events = event_rows + self._events
                    raise
            self._durable = staged


_EVENT_GOAL = EVENTS.columns.index("goal_id")


def _goal_of(record: Record) -> str:
    """The goal a record belongs to ("" for projects and breakers)."""
    if isinstance(record, Goal):
        return record.id
    return getattr(record, "goal_id", "")


def _goals_of(rows: Mapping[StagedKey, Any], event_rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """The goals staged records and events belong to."""
    goals = {_goal_of(record) for record in rows.values()}
    goals.update(row[_EVENT_GOAL] for row in event_rows)
    goals.discard("")
    return goals


def _without(
    lost: Collection[str], rows: Mapping[StagedKey, Any], event_rows: Sequence[tuple[Any, ...]]
) -> tuple[dict[RowCodec[Any], list[tuple[Any, ...]]], list[tuple[Any, ...]]]:
    """The rows of the records, and the event rows, that do not belong to a ``lost`` goal."""
    by_codec: dict[RowCodec[Any], list[tuple[Any, ...]]] = {}
    for (codec, _), record in rows.items():
        if _goal_of(record) not in lost:
            by_codec.setdefault(codec, []).append(codec.to_row(record))
    return by_codec, [row for row in event_rows if row[_EVENT_GOAL] not in lost]
