"""The databases store tests run on: a SQLite file, and PostgreSQL when one is given."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from skipcheck import missing

from blitz.store.database import sqlite_url
from blitz.store.schema import VERSION_TABLE, metadata

POSTGRES_URL = os.environ.get("BLITZ_TEST_POSTGRES_URL", "")
"""A PostgreSQL database the tests may wipe, e.g. postgresql+psycopg://blitz@127.0.0.1/blitz_test."""


def empty_database(kind: str, sqlite_file: Path) -> str:
    """The URL of an empty store: ``kind`` "sqlite" at ``sqlite_file``, or "postgresql" (the
    test database, wiped; without BLITZ_TEST_POSTGRES_URL the test is skipped, or fails in a
    strict run)."""
    if kind == "sqlite":
        return sqlite_url(sqlite_file)
    if not POSTGRES_URL:
        missing("PostgreSQL", "set BLITZ_TEST_POSTGRES_URL (.ci/postgres.sh starts one)")
    url = _workers_own(POSTGRES_URL)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    engine.dispose()
    return url.render_as_string(hide_password=False)


def _workers_own(given: str) -> sa.URL:
    """The test database of this pytest-xdist worker: ``<name>_gw0`` beside the given one,
    created on first use, since two workers wiping one database would wipe each other's tests.
    The given database itself when the run has no workers."""
    url = sa.make_url(given)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        return url
    own = url.set(database=f"{url.database}_{worker}")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own.database}
        ).first()
        if found is None:
            conn.execute(sa.text(f'CREATE DATABASE "{own.database}"'))
    engine.dispose()
    return own
