"""The store's database at the driver level: opening it, and moving many rows in and out fast.

SQLite runs in WAL mode, and a connection that writes takes the write lock when its transaction
begins. Bulk writes and reads skip SQLAlchemy's per-row work and talk to the DBAPI driver with
plain tuples: for a goal of 100,000 tasks that per-row work would double the time of a flush
and add half to the time of loading the goal.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from blitz.errors import ConfigError

WRITE = "blitz_write"
"""Execution option of a connection that writes (on SQLite its transactions BEGIN IMMEDIATE)."""

ROWS_PER_STATEMENT = 200
"""The most rows one SQLite insert statement carries (fewer when the variable limit is low)."""


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite database file at ``path``."""
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def create_engine(url: str, busy_timeout: float) -> sa.Engine:
    """An engine for ``url`` (SQLite or PostgreSQL); ``busy_timeout``: seconds a SQLite writer
    waits for another process's transaction."""
    try:
        backend = sa.make_url(url).get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ConfigError(f"unsupported store database {backend!r}: use SQLite or PostgreSQL")
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"cannot use store URL {url!r}: {exc}") from exc
    if backend == "sqlite":
        timeout_ms = int(busy_timeout * 1000)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control from the sqlite3 module so BEGIN can be IMMEDIATE.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL survives a killed process (not a power cut) and is much faster.
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            # A writer takes the write lock up front: a deferred transaction that reads first
            # cannot wait for the lock later and fails at once with "database is locked".
            writes = connection.get_execution_options().get(WRITE, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def fetch_rows(engine: sa.Engine, stmt: sa.Select[Any]) -> Sequence[Sequence[Any]]:
    """The rows of ``stmt`` as the driver returns them (booleans may come back as 0 and 1).

    Reading the DBAPI cursor skips building a SQLAlchemy Row per row, a third of the time of
    loading 100,000 tasks; the row decoders of :mod:`blitz.store.rows` take the raw values.
    """
    with engine.connect() as connection:
        result = connection.execute(stmt)
        rows = result.cursor.fetchall()
        result.close()
        return rows


class BulkInsert:
    """An insert (or an upsert keyed by the primary key) of many rows into one table, compiled
    once, with rows given as tuples of the values of ``columns``.

    On SQLite the rows go in statements of many rows each: the driver binds one statement's
    values and then runs it without the GIL, where a statement per row would hand the GIL back
    and forth with the event loop for every row. A few statement sizes serve every batch, so the
    driver's statement cache keeps them all."""

    def __init__(
        self,
        engine: sa.Engine,
        table: sa.Table,
        columns: Sequence[str],
        *,
        upsert: bool,
        max_variables: int,
    ) -> None:
        """``max_variables``: see :func:`max_variables` (unused off SQLite)."""
        self.columns = tuple(columns)
        dialect = engine.dialect
        self.sqlite = dialect.name == "sqlite"
        stmt: Any = (sqlite.insert if self.sqlite else postgresql.insert)(table)
        if upsert:
            changes = {c.name: stmt.excluded[c.name] for c in table.c if not c.primary_key}
            stmt = stmt.on_conflict_do_update(
                index_elements=[c.name for c in table.primary_key], set_=changes
            )
        self.sql = str(stmt.compile(dialect=dialect, column_keys=list(self.columns)))
        self._statements: dict[int, str] = {}  # rows per statement -> its SQL, largest first
        if self.sqlite:
            head, values, after = self.sql.partition(" VALUES ")
            group, _, tail = after.partition(")")
            assert group == "(" + ", ".join("?" * len(columns)), self.sql
            most = max(1, min(ROWS_PER_STATEMENT, max_variables // len(columns)))
            for size in sorted({most, most // 4, most // 16} - {0, 1}, reverse=True):
                rows = ", ".join([group + ")"] * size)
                self._statements[size] = f"{head}{values}{rows}{tail}"

    def run(self, connection: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not self.sqlite:
            named = [dict(zip(self.columns, row, strict=True)) for row in rows]
            connection.exec_driver_sql(self.sql, named)
            return
        start, total = 0, len(rows)
        for size, sql in self._statements.items():
            while total - start >= size:
                values = tuple(chain(*rows[start : start + size]))
                connection.exec_driver_sql(sql, values)
                start += size
        if start < total:  # the last few rows, one statement each
            connection.exec_driver_sql(self.sql, list(rows[start:]))


def max_variables(engine: sa.Engine) -> int:
    """How many values one statement may bind on a SQLite engine (999 in old builds)."""
    if engine.dialect.name != "sqlite":
        return 999  # not used
    with engine.connect() as connection:
        dbapi = connection.connection.dbapi_connection
        assert isinstance(dbapi, sqlite3.Connection)
        return dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
