"""Group commit: writes staged in memory, made durable together by one transaction per flush.

``write`` stages records and turns events into rows at once (so bad event data fails in its
writer, never in a flush); only the last version of each record is kept, and it becomes a row
when flushed, so a record written many times between flushes is converted once. A flush moves
everything staged into one transaction run in a worker thread, so records and their events land
together or not at all, and writes made meanwhile wait for the next flush. A failed flush puts
its rows back, behind any newer versions staged since, and raises to everyone awaiting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from blitz.events import Event
from blitz.store.base import Record
from blitz.store.database import BulkInsert
from blitz.store.rows import EVENTS, RECORDS, RowCodec

log = logging.getLogger(__name__)

StagedKey = tuple[RowCodec[Any], Any]
"""A staged record's identity: its codec and its primary key."""


class GroupCommit:
    """The staged writes of one store and the flushes that commit them.

    ``writer`` is the engine that writes; ``upserts`` the upsert of each record type's rows and
    ``insert_events`` the insert of event rows. ``flush_delay``: seconds from the first staged
    write to the background flush; ``retry_delay``: seconds it waits after a failed flush.
    """

    def __init__(
        self,
        writer: sa.Engine,
        upserts: Mapping[RowCodec[Any], BulkInsert],
        insert_events: BulkInsert,
        *,
        flush_delay: float,
        retry_delay: float,
    ) -> None:
        self.writer = writer
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
                        for codec, codec_rows in by_codec.items():
                            self._upserts[codec].run(connection, codec_rows)
                        if event_rows:
                            self._insert_events.run(connection, event_rows)
                except BaseException:
                    with self._lock:
                        rows.update(self._rows)  # rows staged since then are newer: they win
                        self._rows = rows
                        self._events = event_rows + self._events
                    raise
            self._durable = staged
