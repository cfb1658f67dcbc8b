"""Group commit on SQLite and PostgreSQL: writes are staged and made durable together, only the
last version of a record is written, writes made during a flush wait for the next one, and
several stores share one database."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa
from backdoor import Backdoor
from pause import Pause, starts
from sample_records import event, make_goal, make_project, make_task

from blitz.domain import TaskState
from blitz.events import EventKind
from blitz.store.sql import SqlStore


async def test_a_buffer_keeps_only_the_last_version_of_a_record(
    store: SqlStore, backdoor: Backdoor
) -> None:
    backdoor.log_writes("tasks", "id", "state")  # every row that reaches the table
    task = make_task(state=TaskState.PENDING)
    store.write(task, events=[event(message="1")])
    store.write(task.evolve(state=TaskState.READY), events=[event(message="2")])
    store.write(make_task("t2"), events=[event(message="3")])
    store.write(task.evolve(state=TaskState.READY).evolve(state=TaskState.RUNNING))
    await store.flush()
    assert backdoor.writes("tasks") == [("t1", "running"), ("t2", "failed")]
    assert [e.message for e in store.events()] == ["1", "2", "3"]


async def test_reads_see_only_flushed_data(store: SqlStore) -> None:
    store.write(make_goal(), events=[event()])
    assert store.get_goal("g-1") is None
    assert store.events() == []
    await store.flush()
    assert store.get_goal("g-1") == make_goal()


async def test_concurrent_flushes_share_one_transaction(store: SqlStore) -> None:
    commits = 0

    def count(_conn: object) -> None:
        nonlocal commits
        commits += 1

    store.write(make_goal(), events=[event(message="a")])
    sa.event.listen(store._engine, "commit", count)
    await asyncio.gather(*(store.flush() for _ in range(10)))
    assert commits == 1
    assert store.get_goal("g-1") is not None
    await asyncio.gather(*(store.flush() for _ in range(10)))  # nothing staged: no transaction
    assert commits == 1


async def test_writes_during_a_flush_wait_for_the_next_one(store: SqlStore) -> None:
    store.write(make_task("t1"))
    with Pause(store._engine, starts("INSERT INTO tasks")) as pause:
        first = asyncio.create_task(store.flush())
        await pause.wait()  # the flush took its rows and is stopped inside its transaction
        # The event loop runs on meanwhile: a write made now races with the flush.
        store.write(make_task("t2"))
        assert not first.done()
    await first
    assert "'t2'" not in repr(pause.parameters)
    assert [t.id for t in store.load_tasks("g-1")] == ["t1"]
    await store.flush()
    assert [t.id for t in store.load_tasks("g-1")] == ["t1", "t2"]


async def test_a_flush_called_during_another_waits_for_its_own_writes(store: SqlStore) -> None:
    store.write(make_task("t1"))
    with Pause(store._engine, starts("INSERT INTO tasks")) as pause:
        first = asyncio.create_task(store.flush())
        await pause.wait()
        store.write(make_task("t2"))
        second = asyncio.create_task(store.flush())
        await asyncio.sleep(0)  # the second flush is waiting for the first
        assert not second.done()
    await second
    assert first.done()
    assert [t.id for t in store.load_tasks("g-1")] == ["t1", "t2"]


async def test_background_flusher_commits_without_being_awaited(url: str) -> None:
    store = SqlStore(url, flush_delay=0.005)
    reader = SqlStore(url)
    store.write(make_goal(), events=[event(goal_id="g-1")])
    deadline = time.monotonic() + 30
    while reader.get_goal("g-1") is None and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert reader.get_goal("g-1") == make_goal()
    assert len(reader.events(goal_id="g-1")) == 1
    await store.aclose()
    reader.close()


def test_flush_sync_without_an_event_loop(store: SqlStore) -> None:
    store.write(make_project(), events=[event(EventKind.PROJECT_ADDED)])
    store.flush_sync()
    assert store.list_projects() == [make_project()]
    assert [e.kind for e in store.events()] == [EventKind.PROJECT_ADDED]


async def test_aclose_and_close_flush_what_is_staged(url: str) -> None:
    store = SqlStore(url, flush_delay=60)
    store.write(make_goal("g-a"))
    await store.aclose()
    store = SqlStore(url, flush_delay=60)
    store.write(make_goal("g-b"))
    store.close()
    store = SqlStore(url)
    assert {g.id for g in store.list_goals()} == {"g-a", "g-b"}
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.write(make_goal())


async def test_two_stores_share_one_database(url: str) -> None:
    one = SqlStore(url, flush_delay=60)
    two = SqlStore(url, flush_delay=60)
    one.write(make_project(), make_goal(), events=[event(message="from one")])
    two.write(make_task(), events=[event(message="from two")])
    await asyncio.gather(one.flush(), two.flush())
    for store in (one, two):
        assert store.get_goal("g-1") == make_goal()
        assert store.load_tasks("g-1") == [make_task()]
        assert sorted(e.message for e in store.events()) == ["from one", "from two"]
    command_id = two.add_command("g-1", "cancel")
    assert one.take_commands(["g-other"]) == []  # another process's goal: left queued
    [command] = one.take_commands(["g-1"])
    assert (command.id, command.goal_id, command.kind) == (command_id, "g-1", "cancel")
    assert two.take_commands(["g-1"]) == []
    await one.aclose()
    await two.aclose()
