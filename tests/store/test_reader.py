"""The read path of ``blitz status`` and ``blitz events`` (:mod:`blitz.store.reader`, on the
standard library's sqlite3) reads what the store itself reads, record for record, in the same
order, from the same database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sample_records import (
    event,
    make_attempt,
    make_goal,
    make_project,
    make_recovery,
    make_task,
)

from blitz.domain import GoalState
from blitz.events import EventKind
from blitz.store.database import sqlite_url
from blitz.store.reader import SqliteReader, open_reader
from blitz.store.sql import SqlStore


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[SqlStore]:
    """A SQLite store holding two projects, goals whose ids share prefixes, their tasks out of
    id order, attempts, recoveries and the events of two goals."""
    store = SqlStore(sqlite_url(tmp_path / "blitz.db"), flush_delay=60)
    store.write(make_project("p-1", name="zeta"), make_project("p-2", name="alpha"))
    store.write(
        make_goal("g-3f9a1c2b", created_at=1.0, state=GoalState.SUCCEEDED),
        make_goal("g-3f9a77aa", created_at=3.0),
        make_goal("g-3f", project_id="p-2", created_at=3.0),
    )
    for position, task_id in enumerate(["t9", "t1", "t5"]):
        store.write(make_task(task_id, goal_id="g-3f9a1c2b", position=position))
    store.write(make_task("t2", goal_id="g-3f9a1c2b", position=1))  # a tie: by id
    store.write(
        make_attempt("a-3", goal_id="g-3f9a1c2b", task_id="t5", started_at=2.0, number=1),
        make_attempt("a-1", goal_id="g-3f9a1c2b", task_id="t9", started_at=1.0, number=2),
        make_attempt("a-2", goal_id="g-3f9a1c2b", task_id="t9", started_at=1.0, number=1),
        make_attempt("a-9", goal_id="g-3f", task_id="t1", started_at=1.0),
    )
    store.write(
        make_recovery("r-2", goal_id="g-3f9a1c2b", created_at=5.0),
        make_recovery("r-1", goal_id="g-3f9a1c2b", created_at=5.0),
    )
    for n in range(30):
        goal = "g-3f9a1c2b" if n % 3 else "g-3f"
        store.write(events=[event(EventKind.TASK_READY, goal_id=goal, message=f"m{n}\nmore")])
    store.flush_sync()
    yield store
    store.close()


def test_the_reader_reads_what_the_store_reads(filled: SqlStore) -> None:
    reader = open_reader(filled.url)
    assert isinstance(reader, SqliteReader)  # the database is at the newest schema
    try:
        assert reader.list_projects() == filled.list_projects()
        assert [p.name for p in reader.list_projects()] == ["alpha", "zeta"]
        assert reader.list_goals() == filled.list_goals()
        for key in ("g-3f9a1", "g-3f9a", "g-3f", "G-3F9A1", "g-3f9a1%", "nothing", ""):
            assert reader.get_goal(key) == filled.get_goal(key), key
        for goal in ("g-3f9a1c2b", "g-3f", "g-none"):
            assert reader.load_tasks(goal) == filled.load_tasks(goal)
            assert reader.load_attempts(goal) == filled.load_attempts(goal)
            assert reader.load_recoveries(goal) == filled.load_recoveries(goal)
            assert reader.usage(goal) == filled.usage(goal)
        assert [t.id for t in reader.load_tasks("g-3f9a1c2b")] == ["t9", "t1", "t2", "t5"]
        assert reader.usage("g-3f9a1c2b").cost_usd > 0
        for goal_id in (None, "g-3f", "g-3f9a1c2b"):
            for after, limit, newest in ((0, 1000, False), (4, 5, False), (0, 7, True)):
                ask = {"goal_id": goal_id, "after": after, "limit": limit, "newest": newest}
                assert reader.events(**ask) == filled.events(**ask), ask
        assert len(reader.events(limit=1000)) == 30
    finally:
        reader.close()


def test_a_new_database_is_opened_by_the_store_which_makes_it(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new.db")
    first = open_reader(url)
    try:
        assert isinstance(first, SqlStore)
        assert first.list_goals() == []
    finally:
        first.close()
    second = open_reader(url)  # now made, at the newest schema
    try:
        assert isinstance(second, SqliteReader)
        assert second.list_goals() == []
    finally:
        second.close()
