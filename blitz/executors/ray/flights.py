"""One piece of work for many callers asking for it at once.

A wave of attempts placed together asks the same questions: what a node holds of a project (one
Ray task on the node each), and the same bundle for every node that holds the same commits.
:class:`Flights` runs each distinct question once while it is in flight, every caller asking it
meanwhile awaits that one answer (its exception too), and keeps the last answer of each kind
for the next caller asking exactly the same.

A caller that is cancelled leaves the work running for the others (it is shielded); work whose
callers were all cancelled finishes on its own and is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Flights:
    """Single-flight calls by key, with the last answer kept per kind of key."""

    def __init__(self) -> None:
        self._flying: dict[Hashable, asyncio.Future[Any]] = {}
        self._last: dict[str, tuple[Hashable, Any]] = {}

    async def once(
        self, kind: str, key: Hashable, make: Callable[[], Awaitable[T]], *, keep: bool = False
    ) -> T:
        """``make()``'s answer for ``(kind, key)``: the one in flight if there is one, the last
        kept one (``keep``) if it was for the same key, else a new call's."""
        last = self._last.get(kind)
        if keep and last is not None and last[0] == key:
            found: T = last[1]
            return found
        flight = self._flying.get((kind, key))
        if flight is None:
            flight = asyncio.ensure_future(make())
            self._flying[(kind, key)] = flight
            flight.add_done_callback(lambda done: self._landed(kind, key, done, keep))
        answer: T = await asyncio.shield(flight)
        return answer

    def forget(self, kind: str) -> None:
        """Drop the kept answer of ``kind`` (what it said may no longer hold)."""
        self._last.pop(kind, None)

    def _landed(self, kind: str, key: Hashable, done: asyncio.Future[Any], keep: bool) -> None:
        if self._flying.get((kind, key)) is done:
            del self._flying[(kind, key)]
        if done.cancelled():
            return
        with contextlib.suppress(Exception):
            if done.exception() is None and keep:  # an exception is its callers' to see
                self._last[kind] = (key, done.result())
