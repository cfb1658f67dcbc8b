"""Fixtures of the store tests: every test that takes ``url``, ``store`` or ``backdoor`` runs on
SQLite and on PostgreSQL (with BLITZ_TEST_POSTGRES_URL set)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backdoor import Backdoor
from databases import empty_database

from blitz.store.sql import SqlStore


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty database: a SQLite file, then the PostgreSQL test database."""
    return empty_database(request.param, tmp_path / "blitz.db")


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    """A store on a fresh database. The long flush delay: tests flush explicitly unless they
    test the background flusher."""
    store = SqlStore(url, flush_delay=60)
    yield store
    store.close()


@pytest.fixture
def backdoor(url: str, store: SqlStore) -> Iterator[Backdoor]:
    """SQL beside the store (after the store, so its triggers go before the store closes)."""
    backdoor = Backdoor(url)
    yield backdoor
    backdoor.close()
