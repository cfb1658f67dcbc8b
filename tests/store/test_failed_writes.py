"""Failed writes on SQLite and PostgreSQL: a trigger in the database refuses a row (SQLite's
``RAISE(ABORT)``, a PL/pgSQL function on PostgreSQL), and the transaction that carried it lands
nothing while what it carried stays staged, behind anything written since."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import sqlalchemy as sa
from backdoor import Backdoor
from pause import Pause, starts
from sample_records import event, make_goal, make_project, make_task

from blitz.store.sql import SqlStore


async def test_a_failed_flush_lands_nothing_and_keeps_everything_staged(
    store: SqlStore, backdoor: Backdoor
) -> None:
    store.write(make_goal())
    await store.flush()
    backdoor.refuse("events", "message", "boom")
    # The records go first; the failing event comes after them in the same transaction.
    store.write(make_task("t1"), make_goal(summary="changed"), events=[event(message="before")])
    store.write(make_task("t2"), events=[event(message="boom"), event(message="after")])
    callers = [asyncio.create_task(store.flush()) for _ in range(3)]
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, sa.exc.IntegrityError) for r in results), results
    assert store.load_tasks("g-1") == []
    assert store.get_goal("g-1") == make_goal()
    assert store.events() == []

    # A write staged after the failure is newer than the put-back rows, so it wins.
    store.write(make_task("t2", priority=99))
    backdoor.allow("events")
    await store.flush()
    assert store.load_tasks("g-1") == [make_task("t1"), make_task("t2", priority=99)]
    assert store.get_goal("g-1") == make_goal(summary="changed")
    assert [e.message for e in store.events()] == ["before", "boom", "after"]


async def test_writes_made_during_a_failed_flush_stay_newer_than_its_rows(
    store: SqlStore, backdoor: Backdoor
) -> None:
    backdoor.refuse("events", "message", "boom")
    store.write(make_task("t1", priority=1), events=[event(message="boom")])
    with Pause(store._engine, starts("INSERT INTO events")) as pause:
        flush = asyncio.create_task(store.flush())
        await pause.wait()  # the flush took its rows and is about to fail inside its transaction
        store.write(make_task("t1", priority=2), events=[event(message="later")])
    with pytest.raises(sa.exc.IntegrityError):
        await flush
    # The race happened: the failed transaction carried the first version only.
    assert "later" not in repr(pause.parameters) and "boom" in repr(pause.parameters)
    backdoor.allow("events")
    await store.flush()
    assert store.load_tasks("g-1") == [make_task("t1", priority=2)]
    assert [e.message for e in store.events()] == ["boom", "later"]


def test_a_failed_flush_sync_keeps_everything_staged(store: SqlStore, backdoor: Backdoor) -> None:
    backdoor.refuse("events", "message", "boom")
    store.write(make_project(), events=[event(message="boom")])
    with pytest.raises(sa.exc.IntegrityError):
        store.flush_sync()
    assert store.list_projects() == []
    backdoor.allow("events")
    store.flush_sync()
    assert store.list_projects() == [make_project()]
    assert [e.message for e in store.events()] == ["boom"]


async def test_background_flusher_retries_after_a_failure(
    url: str, backdoor: Backdoor, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlStore(url, flush_delay=0.001, retry_delay=0.05)
    backdoor.refuse("events", "message", "boom")
    with caplog.at_level(logging.ERROR, logger="blitz.store.commit"):
        store.write(make_goal(), events=[event(message="boom")])
        deadline = time.monotonic() + 30
        while not caplog.records and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
    assert "flush failed" in caplog.records[0].getMessage()
    backdoor.allow("events")
    while store.get_goal("g-1") is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert store.get_goal("g-1") == make_goal()
    await store.aclose()


def test_write_rejects_what_is_not_a_record(store: SqlStore) -> None:
    with pytest.raises(TypeError):
        store.write(event())  # type: ignore[arg-type]


def test_a_bad_event_fails_in_its_writer_and_stages_nothing(store: SqlStore) -> None:
    with pytest.raises(TypeError):
        store.write(make_goal(), events=[event(data={"x": object()})])
    store.flush_sync()
    assert store.list_goals() == []


def test_replace_plan_refuses_tasks_it_cannot_store(store: SqlStore) -> None:
    store.write(make_task("t1"))
    store.flush_sync()
    with pytest.raises(ValueError, match="g-2"):
        store.replace_plan("g-1", [make_task("t2"), make_task("t3", goal_id="g-2")])
    with pytest.raises(ValueError, match="t2"):
        store.replace_plan("g-1", [make_task("t2"), make_task("t2", title="again")])
    assert store.load_tasks("g-1") == [make_task("t1")]


def test_a_failed_replace_plan_changes_nothing(store: SqlStore, backdoor: Backdoor) -> None:
    store.write(make_task("t1"))
    store.flush_sync()
    store.write(make_task("t2"))
    backdoor.refuse("tasks", "id", "boom")
    with pytest.raises(sa.exc.IntegrityError):
        store.replace_plan("g-1", [make_task("ok"), make_task("boom")])
    assert store.load_tasks("g-1") == [make_task("t1")]
    backdoor.allow("tasks")
    store.flush_sync()  # the staged task was put back
    assert [t.id for t in store.load_tasks("g-1")] == ["t1", "t2"]
