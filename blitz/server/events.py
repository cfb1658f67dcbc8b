"""Server-sent event streams over the store's event log.

The log is the only source: a stream replays what the store holds after its resume point, then
follows it. One :class:`EventHub` per daemon polls the store for the newest event id (every
``interval`` seconds, in a worker thread, so writes from other processes sharing the store are
seen too) and wakes the streams; each stream then reads its own next page by id. Because every
read is ``id > cursor`` in id order, a stream delivers each event once and in order, however it
was interrupted and resumed.

SQLite assigns event ids in commit order (one writer at a time), so a reader never sees id N+1
before N. On PostgreSQL two processes writing at once can commit ids out of order; a stream may
then miss an event written by another process in that instant (the daemon's own writes are one
transaction at a time and are safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from sse_starlette import ServerSentEvent

from blitz import background
from blitz.events import Event
from blitz.redact import redact_data
from blitz.server.schemas import event_data
from blitz.store.base import Store

log = logging.getLogger("blitz.server")

PAGE = 500
"""Events read from the store at a time by one stream."""


def latest_event_id(store: Store) -> int:
    """The id of the newest event in the store (0 if none), in O(log n) reads of one event:
    a gallop past the newest id, then a bisection."""
    first = store.events(after=0, limit=1)
    if not first:
        return 0
    lo, step = first[0].id, 1  # an event with id lo exists
    while nxt := store.events(after=lo + step, limit=1):
        lo, step = nxt[0].id, step * 2
    hi = lo + step  # no event has an id above hi
    while lo < hi:
        mid = (lo + hi) // 2
        nxt = store.events(after=mid, limit=1)
        if nxt:
            lo = nxt[0].id
        else:
            hi = mid
    return lo


class EventHub:
    """Knows the newest event id of the store and wakes the streams waiting for a newer one.

    ``observers`` see every event once as the hub finds it (metrics use them); they must be
    quick and must not raise.
    """

    def __init__(self, store: Store, *, interval: float = 0.05) -> None:
        self.store = store
        self.interval = interval
        self.newest = 0
        self.clients = 0  # streams open now
        self.closed = False
        self.observers: list[Callable[[Event], None]] = []
        self._changed: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Learn the newest id and begin polling (on the running loop)."""
        if self._task is not None:
            return
        self.newest = await asyncio.to_thread(latest_event_id, self.store)
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def close(self) -> None:
        """Stop polling and end every stream."""
        self.closed = True
        self._notify()
        task, self._task = self._task, None
        await background.stop(task)

    async def _poll(self) -> None:
        while not self.closed:
            try:
                batch = await asyncio.to_thread(self.store.events, after=self.newest, limit=1000)
            except Exception as exc:  # a busy or briefly locked database: try again soon
                log.warning("reading the event log failed: %s", exc)
                batch = []
            if batch:
                for event in batch:
                    for observe in self.observers:
                        observe(event)
                self.newest = batch[-1].id
                self._notify()
                if len(batch) == 1000:
                    continue
            await asyncio.sleep(self.interval)

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def wait_past(self, seen: int, timeout: float) -> None:
        """Return once the hub knows an event newer than ``seen``, it closes, or ``timeout``
        seconds pass."""
        if self.newest > seen or self.closed:
            return
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._changed)


def message(event: Event) -> ServerSentEvent:
    """One event as an SSE message: ``id`` the event id, ``event`` its kind, ``data`` its JSON."""
    data: Any = redact_data(event_data(event))
    return ServerSentEvent(
        data=json.dumps(data, separators=(",", ":")), id=str(event.id), event=event.kind.value
    )


def ping() -> ServerSentEvent:
    """The keep-alive: a comment line, ``: ping``."""
    return ServerSentEvent(comment="ping")


async def start_after(hub: EventHub, requested: int) -> int:
    """The cursor a stream starts from: after ``requested``, unless that id is newer than any
    event, in which case after the newest (nothing is replayed)."""
    if requested <= hub.newest:
        return max(0, requested)
    newest = await asyncio.to_thread(latest_event_id, hub.store)
    return min(requested, newest)


async def batches(
    hub: EventHub, *, goal_id: str | None, after: int, wait: float = 1.0
) -> AsyncGenerator[list[Event], None]:
    """Every event (of ``goal_id``, if given) with an id above ``after``, in batches as the
    store gives them: replayed first, then followed as new ones are written, until the hub
    closes or the caller stops. Each event comes once, in id order; the store is read only
    when the hub has seen a newer event (or every ``wait`` seconds)."""
    cursor = after
    while not hub.closed:
        seen = hub.newest  # read before the page: nothing up to here can be missed
        batch = await asyncio.to_thread(hub.store.events, goal_id=goal_id, after=cursor, limit=PAGE)
        if batch:
            cursor = batch[-1].id
            yield batch
        if len(batch) == PAGE:
            continue
        # Everything up to max(seen, cursor) was read; wait for something newer.
        await hub.wait_past(max(seen, cursor), wait)


async def stream(
    hub: EventHub, *, goal_id: str | None, after: int, wait: float = 1.0
) -> AsyncIterator[ServerSentEvent]:
    """Every event (of ``goal_id``, if given) with an id above ``after`` as SSE messages,
    replayed from the store and then followed (:func:`batches`)."""
    hub.clients += 1
    try:
        feed = batches(hub, goal_id=goal_id, after=after, wait=wait)
        async with contextlib.aclosing(feed):
            async for batch in feed:
                for event in batch:
                    yield message(event)
    finally:
        hub.clients -= 1
