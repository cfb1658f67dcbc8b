"""The test's own connection to a store's database, SQLite or PostgreSQL, for what a test does
behind the store's back: triggers that refuse a row or log the rows that reach a table, counts,
and everything the database holds as text.

The same trigger is written twice, once per database: SQLite's ``RAISE(ABORT)`` and a PL/pgSQL
function raising an integrity error play the same part, so a failure-semantics test reads the
same on both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

REFUSED = "refused by the test"


class Backdoor:
    """SQL run beside the store at ``url``; :meth:`close` drops what it added."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.sqlite = self.engine.dialect.name == "sqlite"
        self._added: list[str] = []  # statements that undo what was added, newest last

    def run(self, *statements: str) -> list[tuple[Any, ...]]:
        """Run ``statements`` in one transaction; the rows of the last one."""
        rows: list[tuple[Any, ...]] = []
        with self.engine.begin() as connection:
            for statement in statements:
                result = connection.exec_driver_sql(statement)
                rows = [tuple(row) for row in result] if result.returns_rows else []
        return rows

    def count(self, table: str) -> int:
        [(count,)] = self.run(f"SELECT count(*) FROM {table}")
        return int(count)

    # -- triggers ----------------------------------------------------------------------------------

    def refuse(self, table: str, column: str, value: str) -> None:
        """Make the insert (or upsert) of a row of ``table`` whose ``column`` is ``value`` fail
        with an integrity error, failing the transaction that makes it."""
        name = f"refuse_{table}"
        if self.sqlite:
            self.run(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN NEW.{column} = '{value}'"
                f" BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END"
            )
            self._added.append(f"DROP TRIGGER IF EXISTS {name}")
        else:
            self.run(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN RAISE EXCEPTION '{REFUSED}'"
                " USING ERRCODE = 'integrity_constraint_violation'; END $$",
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW"
                f" WHEN (NEW.{column} = '{value}') EXECUTE FUNCTION {name}()",
            )
            self._added.append(f"DROP FUNCTION IF EXISTS {name}() CASCADE")

    def allow(self, table: str) -> None:
        """Drop the trigger :meth:`refuse` put on ``table``."""
        name = f"refuse_{table}"
        self.run(f"DROP TRIGGER {name}" if self.sqlite else f"DROP TRIGGER {name} ON {table}")

    def log_writes(self, table: str, *columns: str) -> None:
        """Log ``columns`` of every row inserted into or updated in ``table`` (read them with
        :meth:`writes`)."""
        log, name = f"{table}_writes", f"log_{table}"
        values = ", ".join(f"NEW.{c}" for c in columns)
        # A log left behind by a test that died before closing its backdoor goes first.
        fresh_log = (
            f"DROP TABLE IF EXISTS {log}",
            f"CREATE TABLE {log} ({', '.join(f'{c} TEXT' for c in columns)})",
        )
        self._added.append(f"DROP TABLE IF EXISTS {log}")
        if self.sqlite:
            self.run(
                *fresh_log,
                *(
                    f"CREATE TRIGGER {name}_{when} AFTER {when} ON {table}"
                    f" BEGIN INSERT INTO {log} VALUES ({values}); END"
                    for when in ("INSERT", "UPDATE")
                ),
            )
            self._added += [f"DROP TRIGGER IF EXISTS {name}_{w}" for w in ("INSERT", "UPDATE")]
        else:
            self.run(
                *fresh_log,
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN INSERT INTO {log} VALUES ({values}); RETURN NEW; END $$",
                f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE ON {table} FOR EACH ROW"
                f" EXECUTE FUNCTION {name}()",
            )
            self._added.append(f"DROP FUNCTION IF EXISTS {name}() CASCADE")

    def writes(self, table: str) -> list[tuple[Any, ...]]:
        """The rows :meth:`log_writes` logged for ``table``, sorted."""
        return sorted(self.run(f"SELECT * FROM {table}_writes"))

    # -- what the database holds ------------------------------------------------------------------

    def stored_text(self) -> str:
        """Everything the database holds, as text: on SQLite the bytes of its file and its
        write-ahead log; on PostgreSQL every row of every table."""
        if self.sqlite:
            path = Path(sa.make_url(self.url).database or "")
            files = [path, path.with_name(path.name + "-wal")]
            return b"".join(f.read_bytes() for f in files if f.exists()).decode("latin-1")
        tables = sa.MetaData()
        with self.engine.connect() as connection:
            tables.reflect(connection)
            return "\n".join(
                repr(tuple(row))
                for table in tables.sorted_tables
                for row in connection.execute(sa.select(table))
            )

    def waiting_for_locks(self) -> int:
        """How many sessions wait for a lock another holds (PostgreSQL only: SQLite's writers
        wait in their own process, out of sight)."""
        assert not self.sqlite
        [(count,)] = self.run(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(count)

    def close(self) -> None:
        for statement in reversed(self._added):
            self.run(statement)
        self.engine.dispose()
