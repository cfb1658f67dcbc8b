"""Stopping a store's transaction at a statement of the test's choosing, so that what must race
with it (a write, another store's claim) is made while it is stopped, not merely perhaps.

A :class:`Pause` listens to the statements a store's engine sends to its database (SQLAlchemy's
``before_cursor_execute``, in whatever thread sends them) and holds the first one that matches
until the test lets it go: a flush stopped there has taken its rows and is inside its
transaction. The store's own code runs unchanged.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

LONGEST_WAIT = 60.0
"""Seconds a pause waits for its statement or for the test, so a broken test fails, not hangs."""


class Pause:
    """Hold the first statement on ``engine`` that ``matches`` (its SQL) until :meth:`release`;
    with ``hold=False`` only note that it was sent."""

    def __init__(
        self, engine: sa.Engine, matches: Callable[[str], bool], *, hold: bool = True
    ) -> None:
        self.reached = threading.Event()
        self.parameters: Any = None  # of the statement that matched
        self._matches = matches
        self._hold = hold
        self._go = threading.Event()
        sa.event.listen(engine, "before_cursor_execute", self._before)

    def _before(
        self,
        _connection: sa.Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if self.reached.is_set() or not self._matches(statement):
            return
        self.parameters = parameters
        self.reached.set()
        if self._hold:
            self._go.wait(LONGEST_WAIT)

    async def wait(self) -> None:
        """Return once the statement was sent (and, held, is waiting for :meth:`release`)."""
        assert await asyncio.to_thread(self.reached.wait, LONGEST_WAIT), "the statement never came"

    def release(self) -> None:
        """Let the held statement go. (The listener stays, idle: removing it could change the
        listeners while the store's thread runs through them.)"""
        self._go.set()

    def __enter__(self) -> Pause:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def starts(prefix: str) -> Callable[[str], bool]:
    """Matches SQL that starts with ``prefix`` (case and leading space aside)."""
    return lambda statement: statement.lstrip().upper().startswith(prefix.upper())
