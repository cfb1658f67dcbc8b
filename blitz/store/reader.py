"""Reading a SQLite store with the standard library's ``sqlite3``, for the commands that only
read it (``blitz status``, ``blitz events``): no SQLAlchemy, which costs most of a second to
import, more than such a command may take in all.

The rows are decoded by the store's own codecs (:mod:`blitz.store.rows`) from the columns of
:mod:`blitz.store.layout`, in its order, so a record reads back here exactly as the store reads
it. The queries are the store's (:class:`~blitz.store.sql.SqlStore`'s reads of the same name,
same filters and order); a test runs both on one database and compares. Only a database already
at the newest schema is read here: :func:`open_reader` opens anything else (a new database, an
older schema to migrate, PostgreSQL) with the store itself.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol

from blitz.domain import Attempt, Goal, Project, Recovery, Task, Usage
from blitz.events import Event
from blitz.store import layout
from blitz.store.rows import (
    ATTEMPTS,
    EVENTS,
    GOALS,
    PROJECTS,
    RECOVERIES,
    TASKS,
    RowCodec,
    collector_paused,
)


class StoreReads(Protocol):
    """What ``blitz status`` and ``blitz events`` read: a part of :class:`~blitz.store.base.Store`
    (the store itself is one), with the same meaning."""

    def list_projects(self) -> list[Project]: ...

    def get_goal(self, goal_id: str) -> Goal | None: ...

    def list_goals(self) -> list[Goal]: ...

    def load_tasks(self, goal_id: str) -> list[Task]: ...

    def load_attempts(self, goal_id: str) -> list[Attempt]: ...

    def usage(self, goal_id: str) -> Usage: ...

    def load_recoveries(self, goal_id: str) -> list[Recovery]: ...

    def events(
        self, *, goal_id: str | None = None, after: int = 0, limit: int = 1000, newest: bool = False
    ) -> list[Event]: ...

    def close(self) -> None: ...


SQLITE_URL = "sqlite:///"
"""How the URL of a SQLite database file starts (then its path)."""


def open_reader(url: str, *, busy_timeout: float = 30.0) -> StoreReads:
    """A reader of the store at ``url``: :class:`SqliteReader` for a SQLite file at the newest
    schema, else the store itself (which creates or migrates the database, and reads PostgreSQL).
    """
    path = Path(url.removeprefix(SQLITE_URL))
    if url.startswith(SQLITE_URL) and "?" not in url and path.is_file():
        reader = SqliteReader(path, busy_timeout=busy_timeout)
        if reader.revision() == layout.HEAD_REVISION:
            return reader
        reader.close()
    from blitz.store.sql import SqlStore

    return SqlStore(url, busy_timeout=busy_timeout)


def _select(codec: RowCodec[Any]) -> str:
    """``SELECT`` every column of the codec's table, in the order its ``from_row`` takes."""
    columns = ", ".join(f'"{name}"' for name in codec.table.names)
    return f'SELECT {columns} FROM "{codec.table.name}"'


_PROJECTS = _select(PROJECTS)
_GOALS = _select(GOALS)
_TASKS = _select(TASKS)
_ATTEMPTS = _select(ATTEMPTS)
_RECOVERIES = _select(RECOVERIES)
_EVENTS = _select(EVENTS)


class SqliteReader:
    """:class:`StoreReads` on a SQLite store file, through ``sqlite3``; every read is a
    transaction of its own, as the store's are."""

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self._db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)

    def _rows(self, sql: str, *parameters: Any) -> list[Any]:
        return self._db.execute(sql, parameters).fetchall()

    def revision(self) -> str | None:
        """The schema revision of the database (None: none yet)."""
        try:
            rows = self._rows(f"SELECT version_num FROM {layout.VERSION_TABLE}")
        except sqlite3.DatabaseError:
            return None
        return str(rows[0][0]) if rows else None

    def list_projects(self) -> list[Project]:
        return [PROJECTS.from_row(row) for row in self._rows(f"{_PROJECTS} ORDER BY name")]

    def get_goal(self, goal_id: str) -> Goal | None:
        """By id, or by a prefix of an id that matches exactly one goal."""
        if not goal_id:
            return None
        rows = self._rows(f"{_GOALS} WHERE id = ?", goal_id)
        if not rows:
            where = "WHERE substr(id, 1, ?) = ? LIMIT 2"
            rows = self._rows(f"{_GOALS} {where}", len(goal_id), goal_id)
        return GOALS.from_row(rows[0]) if len(rows) == 1 else None

    def list_goals(self) -> list[Goal]:
        rows = self._rows(f"{_GOALS} ORDER BY created_at DESC, id DESC")
        return [GOALS.from_row(row) for row in rows]

    def load_tasks(self, goal_id: str) -> list[Task]:
        rows = self._rows(f"{_TASKS} WHERE goal_id = ? ORDER BY position, id", goal_id)
        with collector_paused():
            return [TASKS.from_row(row) for row in rows]

    def load_attempts(self, goal_id: str) -> list[Attempt]:
        order = "ORDER BY started_at, task_id, number"
        return [
            ATTEMPTS.from_row(row)
            for row in self._rows(f"{_ATTEMPTS} WHERE goal_id = ? {order}", goal_id)
        ]

    def usage(self, goal_id: str) -> Usage:
        sums = ", ".join(
            f"coalesce(sum({c}), 0)"
            for c in ("input_tokens", "output_tokens", "cached_tokens", "cost_usd")
        )
        [(tokens_in, tokens_out, cached, cost)] = self._rows(
            f"SELECT {sums} FROM attempts WHERE goal_id = ?", goal_id
        )
        return Usage(
            input_tokens=int(tokens_in),
            output_tokens=int(tokens_out),
            cached_tokens=int(cached),
            cost_usd=float(cost),
        )

    def load_recoveries(self, goal_id: str) -> list[Recovery]:
        order = "ORDER BY created_at, id"
        return [
            RECOVERIES.from_row(row)
            for row in self._rows(f"{_RECOVERIES} WHERE goal_id = ? {order}", goal_id)
        ]

    def events(
        self, *, goal_id: str | None = None, after: int = 0, limit: int = 1000, newest: bool = False
    ) -> list[Event]:
        """Events with id > ``after``, oldest first: the first ``limit``, or the last."""
        where = "WHERE id > ?"
        parameters: list[object] = [after]
        if goal_id is not None:
            where += " AND goal_id = ?"
            parameters.append(goal_id)
        order = "id DESC" if newest else "id"
        rows = self._rows(f"{_EVENTS} {where} ORDER BY {order} LIMIT ?", *parameters, limit)
        found = [EVENTS.from_row(row) for row in rows]
        return found[::-1] if newest else found

    def close(self) -> None:
        self._db.close()
