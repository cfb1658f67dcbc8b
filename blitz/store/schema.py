"""The store's schema: its tables, and the migrations that bring a database to them.

The tables are described in :mod:`blitz.store.layout` and built here for SQLAlchemy;
``migrations/versions`` holds the alembic revisions that create them, and a test compares the
two. How a record becomes a row of its table is derived from the layout in
:mod:`blitz.store.rows`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from blitz.store import layout
from blitz.store.database import WRITE
from blitz.store.layout import HEAD_REVISION, VERSION_TABLE, Column, Table

__all__ = ["HEAD_REVISION", "VERSION_TABLE", "current_revision", "metadata", "migrate"]

# -- tables: built from blitz/store/layout.py ------------------------------------------------------

metadata = sa.MetaData()
_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "text": sa.Text(),
    "int": sa.Integer(),
    "real": sa.Float(),
    "bool": sa.Boolean(),
    "serial": sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
    "bigint": sa.BigInteger(),
}


def _column(column: Column) -> sa.Column[Any]:
    default: Any = None
    if isinstance(column.default, bool):
        # sa.false() renders as the dialect spells it: 0 on SQLite, false on PostgreSQL.
        default = sa.true() if column.default else sa.false()
    elif column.default is not None:
        default = sa.text(column.default)
    if column.kind == "serial":
        return sa.Column(column.name, _TYPES["serial"], primary_key=True, autoincrement=True)
    return sa.Column(
        column.name,
        _TYPES[column.kind],
        nullable=False,
        primary_key=column.primary_key,
        server_default=default,
    )


def _table(spec: Table) -> sa.Table:
    index = (sa.Index(spec.index_name, *spec.index),) if spec.index else ()
    return sa.Table(spec.name, metadata, *map(_column, spec.columns), *index)


TABLES: dict[str, sa.Table] = {spec.name: _table(spec) for spec in layout.TABLES}
"""SQLAlchemy's table of each table of :mod:`blitz.store.layout`, by name."""

projects = TABLES["projects"]
goals = TABLES["goals"]
tasks = TABLES["tasks"]
attempts = TABLES["attempts"]
recoveries = TABLES["recoveries"]
breakers = TABLES["breakers"]
baselines = TABLES["baselines"]
event_log = TABLES["events"]  # not "events": write() takes an argument of that name
commands = TABLES["commands"]
leases = TABLES["leases"]
gate_results = TABLES["gate_results"]
slack_channels = TABLES["slack_channels"]
slack_threads = TABLES["slack_threads"]
slack_seen = TABLES["slack_seen"]
notifications = TABLES["notifications"]
deliveries = TABLES["deliveries"]


# -- migrations -----------------------------------------------------------------------------------


def current_revision(engine: sa.Engine) -> str | None:
    """The schema revision the database is at, or None before the first migration."""
    try:
        with engine.connect() as connection:
            value = connection.execute(
                sa.text(f"SELECT version_num FROM {VERSION_TABLE}")
            ).scalar_one_or_none()
    except sa.exc.DBAPIError:  # no version table yet
        return None
    return str(value) if value is not None else None


def migrate(engine: sa.Engine) -> None:
    """Bring the database schema to the newest revision (a no-op when it is there already)."""
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "blitz.store:migrations")
    with engine.execution_options(**{WRITE: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            # Serialize processes that migrate the same database at once (SQLite: BEGIN IMMEDIATE).
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7308604897068083828)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
