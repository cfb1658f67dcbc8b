"""The SQL store against real SQLite files: round trips, group commit, atomicity, several
processes on one file, and survival of a killed writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from databases import empty_database

from blitz.domain import (
    Attempt,
    AttemptState,
    Baseline,
    BreakerRecord,
    BreakerState,
    Check,
    GateResult,
    Gates,
    Goal,
    GoalState,
    Project,
    Recovery,
    RecoveryAction,
    Task,
    TaskState,
    Usage,
)
from blitz.events import Event, EventKind
from blitz.redact import register_secret
from blitz.store.base import Store
from blitz.store.sql import HEAD_REVISION, VERSION_TABLE, SqlStore, metadata, sqlite_url

# -- fixtures: every field set, and no two fields alike --------------------------------------------


def make_project(id: str = "p-1", **changes: object) -> Project:
    fields: dict[str, object] = {
        "id": id,
        "name": f"name-{id}",
        "path": f"/repos/{id}",
        "base_branch": "trunk",
        "remote": "origin",
        "gates": Gates(
            build="make", test="pytest -q", typecheck="mypy .", lint="ruff", timeout=42.5
        ),
        "backend": "claude-code",
        "max_parallel": 7,
        "paused": True,
        "pause_reason": "breaker open",
        "fallback_backend": "codex",
        "require_plan_approval": True,
        "model": "opus",
    }
    fields.update(changes)
    return Project(**fields)  # type: ignore[arg-type]


def make_goal(id: str = "g-1", project_id: str = "p-1", **changes: object) -> Goal:
    fields: dict[str, object] = {
        "id": id,
        "project_id": project_id,
        "title": "add rate limiting",
        "state": GoalState.RUNNING,
        "branch": f"blitz/{id}",
        "base_branch": "develop",
        "base_sha": "abc123",
        "backend": "codex",
        "summary": "a summary",
        "error": "an error",
        "pr_url": "https://github.test/pr/1",
        "created_at": 1000.25,
        "finished_at": 2000.5,
        "runner": "123@host",
        "max_parallel": 3,
        "usage": Usage(input_tokens=11, output_tokens=22, cached_tokens=33, cost_usd=0.5),
        "explore": 3,
        "explore_mode": "first",
        "portfolio": ("claude-code:sonnet", "embedded:openai:gpt-5", 'we"ird,spec'),
        "model": "sonnet",
    }
    fields.update(changes)
    return Goal(**fields)  # type: ignore[arg-type]


def make_task(id: str = "t1", goal_id: str = "g-1", **changes: object) -> Task:
    fields: dict[str, object] = {
        "id": id,
        "goal_id": goal_id,
        "title": f"title {id}",
        "instructions": "do it\nwell",
        # quotes, backslashes, commas and non-ASCII survive the JSON columns
        "depends_on": ("t0", 'we"ird', "back\\slash", 'a","b', "ünï"),
        "priority": 5,
        "checks": (
            Check(kind="file_exists", path="src/x.py"),
            Check(kind="command", command="pytest -k x", timeout=12.5),
        ),
        "files": ("src/x.py", "src/y.py"),
        "state": TaskState.FAILED,
        "attempts": 2,
        "crashes": 1,
        "conflicts": 4,
        "recoveries": 6,
        "commit": "deadbeef",
        "origin": "recovery:t0",
        "guidance": "try harder",
        "root_cause": "typo",
        "reason": "tests failed",
        "allow_empty": True,
        "backend": "claude-code",
        "model": "haiku",
        "explore": 9,
    }
    fields.update(changes)
    return Task(**fields)  # type: ignore[arg-type]


def gate_result(name: str, **changes: object) -> GateResult:
    fields: dict[str, object] = {
        "name": name,
        "command": f"run {name}",
        "passed": False,
        "exit_code": 3,
        "duration": 1.5,
        "output_tail": "FAILED test_x",
        "timed_out": True,
        "preexisting": True,
        "new_failures": ("tests/test_x.py::test_a", "tests/test_x.py::test_b"),
    }
    fields.update(changes)
    return GateResult(**fields)  # type: ignore[arg-type]


def make_attempt(
    id: str = "a-1", goal_id: str = "g-1", task_id: str = "t1", **changes: object
) -> Attempt:
    fields: dict[str, object] = {
        "id": id,
        "goal_id": goal_id,
        "task_id": task_id,
        "number": 2,
        "state": AttemptState.CRASHED,
        "backend": "embedded",
        "worktree": "/tmp/wt",
        "base_sha": "base1",
        "commit": "c0ffee",
        "error": "boom",
        "summary": "did things",
        "gates": (gate_result("test"), gate_result("lint", passed=True, exit_code=None)),
        "diff_stat": "1 file changed",
        "usage": Usage(input_tokens=10, output_tokens=20, cached_tokens=30, cost_usd=0.125),
        "started_at": 10.5,
        "finished_at": 20.75,
        "model": "gpt-5",
        "candidate": 2,
        "ref": "refs/blitz/attempts/g-1/t1/2",
        "selected": True,
        "verdict": "the smallest diff that passes",
    }
    fields.update(changes)
    return Attempt(**fields)  # type: ignore[arg-type]


def make_recovery(id: str = "r-1", goal_id: str = "g-1", **changes: object) -> Recovery:
    fields: dict[str, object] = {
        "id": id,
        "goal_id": goal_id,
        "task_id": "t1",
        "attempt_id": "a-1",
        "root_cause": "missing import",
        "action": RecoveryAction.INSERT,
        "guidance": "import it",
        "new_tasks": ("t1-fix", "t1-fix2"),
        "created_at": 99.5,
    }
    fields.update(changes)
    return Recovery(**fields)  # type: ignore[arg-type]


def make_breaker(key: str = "backend:codex") -> BreakerRecord:
    return BreakerRecord(
        key=key, state=BreakerState.HALF_OPEN, failures=4, opened_at=12.5, last_error="503"
    )


def make_baseline(goal_id: str = "g-1") -> Baseline:
    return Baseline(
        goal_id=goal_id, sha="basesha", results=(gate_result("build"), gate_result("test"))
    )


def event(kind: EventKind = EventKind.TASK_STARTED, **fields: object) -> Event:
    return Event(kind=kind, **fields)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "blitz.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A fresh store on SQLite and, with BLITZ_TEST_POSTGRES_URL set, on PostgreSQL.

    Tests that take ``db`` as well reach into the SQLite file itself and run on SQLite only.
    The long flush delay: tests flush explicitly unless they test the background flusher.
    """
    if request.param != "sqlite" and "db" in request.fixturenames:
        pytest.skip("works on the SQLite file itself")
    sqlite_file = request.getfixturevalue("db") if request.param == "sqlite" else tmp_path
    url = empty_database(request.param, sqlite_file)
    store = SqlStore(url, flush_delay=60)
    yield store
    store.close()


@contextlib.contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to ``db``, committed and closed on exit."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def table_count(db: Path, table: str) -> int:
    with raw(db) as conn:
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)


# -- the schema ------------------------------------------------------------------------------------


def test_sql_store_satisfies_the_store_protocol(store: SqlStore) -> None:
    typed: Store = store
    assert typed is store


def test_migration_creates_exactly_the_tables_the_store_uses(store: SqlStore) -> None:
    with store._engine.connect() as conn:
        opts = {"version_table": VERSION_TABLE, "compare_server_default": True}
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, metadata) == []
        assert context.get_current_revision() == HEAD_REVISION


def test_sqlite_runs_in_wal_mode(store: SqlStore, db: Path) -> None:
    with raw(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_reopening_keeps_data_and_migrates_once(db: Path) -> None:
    first = SqlStore(sqlite_url(db))
    first.write(make_project(), make_goal(), make_task())
    first.close()
    for _ in range(2):
        again = SqlStore(sqlite_url(db))
        assert again.get_project("p-1") == make_project()
        assert again.load_tasks("g-1") == [make_task()]
        again.close()
    with raw(db) as conn:
        versions = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        assert versions == [(HEAD_REVISION,)]


def test_unsupported_database_is_a_config_error(tmp_path: Path) -> None:
    from blitz.errors import ConfigError

    with pytest.raises(ConfigError):
        SqlStore("mysql://user@localhost/blitz")


# -- round trips -----------------------------------------------------------------------------------


async def test_every_record_type_round_trips(store: SqlStore) -> None:
    project, goal, task = make_project(), make_goal(), make_task()
    plain_task = Task(id="t2", goal_id="g-1", title="defaults")
    attempt, recovery = make_attempt(), make_recovery()
    breaker, baseline = make_breaker(), make_baseline()
    store.write(project, goal, task, plain_task, attempt, recovery, breaker, baseline)
    await store.flush()

    assert store.get_project("p-1") == project
    assert store.get_project("name-p-1") == project
    assert store.find_project_by_path("/repos/p-1") == project
    assert store.list_projects() == [project]
    assert store.get_goal("g-1") == goal
    assert store.list_goals() == [goal]
    assert store.load_tasks("g-1") == [task, plain_task]
    assert store.load_attempts("g-1") == [attempt]
    assert store.load_attempts("g-1", "t1") == [attempt]
    assert store.load_attempts("g-1", "t2") == []
    assert store.load_recoveries("g-1") == [recovery]
    assert store.load_breakers() == [breaker]
    assert store.load_baseline("g-1") == baseline
    assert store.load_baseline("g-2") is None
    loaded = store.load_tasks("g-1")[0]
    assert type(loaded.state) is TaskState and type(loaded.depends_on) is tuple
    assert type(loaded.checks[0]) is Check and loaded.allow_empty is True
    loaded_project, loaded_goal = store.get_project("p-1"), store.get_goal("g-1")
    assert loaded_project is not None and loaded_project.require_plan_approval is True
    assert loaded_goal is not None and type(loaded_goal.portfolio) is tuple
    assert store.load_attempts("g-1")[0].selected is True


async def test_event_round_trip_gets_db_ids_and_timestamps(store: SqlStore) -> None:
    before = time.time()
    store.write(
        events=[
            event(EventKind.GOAL_CREATED, goal_id="g-1", project_id="p-1", message="created"),
            event(
                EventKind.TASK_FAILED,
                goal_id="g-1",
                task_id="t1",
                attempt_id="a-1",
                message="failed",
                data={"gates": ["test", "lint"], "nested": {"n": 1, "ok": False, "x": None}},
                ts=123.5,
            ),
        ]
    )
    await store.flush()
    first, second = store.events()
    assert (first.kind, first.goal_id, first.project_id, first.message) == (
        EventKind.GOAL_CREATED,
        "g-1",
        "p-1",
        "created",
    )
    assert before <= first.ts <= time.time()
    assert first.data == {}
    assert second.ts == 123.5
    assert (second.task_id, second.attempt_id) == ("t1", "a-1")
    assert second.data == {"gates": ["test", "lint"], "nested": {"n": 1, "ok": False, "x": None}}
    assert 0 < first.id < second.id


async def test_events_filter_by_goal_after_and_limit(store: SqlStore) -> None:
    for i in range(6):
        store.write(events=[event(goal_id=f"g-{i % 2}", message=f"m{i}")])
    await store.flush()
    assert [e.message for e in store.events()] == [f"m{i}" for i in range(6)]
    g0 = store.events(goal_id="g-0")
    assert [e.message for e in g0] == ["m0", "m2", "m4"]
    assert [e.message for e in store.events(goal_id="g-0", after=g0[0].id)] == ["m2", "m4"]
    assert [e.message for e in store.events(after=g0[1].id, limit=2)] == ["m3", "m4"]


async def test_upsert_overwrites_a_flushed_record(store: SqlStore, db: Path) -> None:
    task = make_task(state=TaskState.READY, attempts=0)
    store.write(make_goal(), task)
    await store.flush()
    running = task.evolve(state=TaskState.RUNNING, attempts=1, depends_on=(), checks=())
    store.write(make_goal(state=GoalState.FINISHING), running)
    await store.flush()
    assert store.load_tasks("g-1") == [running]
    assert store.get_goal("g-1") == make_goal(state=GoalState.FINISHING)
    assert table_count(db, "tasks") == 1


async def test_a_buffer_keeps_only_the_last_version_of_a_record(store: SqlStore, db: Path) -> None:
    # A trigger counts the rows that reach the tasks table.
    with raw(db) as conn:
        conn.executescript(
            """
            CREATE TABLE task_writes (id TEXT, state TEXT);
            CREATE TRIGGER count_inserts AFTER INSERT ON tasks
                BEGIN INSERT INTO task_writes VALUES (NEW.id, NEW.state); END;
            CREATE TRIGGER count_updates AFTER UPDATE ON tasks
                BEGIN INSERT INTO task_writes VALUES (NEW.id, NEW.state); END;
            """
        )
    task = make_task(state=TaskState.PENDING)
    store.write(task, events=[event(message="1")])
    store.write(task.evolve(state=TaskState.READY), events=[event(message="2")])
    store.write(make_task("t2"), events=[event(message="3")])
    store.write(task.evolve(state=TaskState.READY).evolve(state=TaskState.RUNNING))
    await store.flush()
    with raw(db) as conn:
        writes = conn.execute("SELECT id, state FROM task_writes ORDER BY id").fetchall()
    assert writes == [("t1", "running"), ("t2", "failed")]
    assert [e.message for e in store.events()] == ["1", "2", "3"]


# -- group commit ----------------------------------------------------------------------------------


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


async def test_writes_during_a_flush_wait_for_the_next_one(store: SqlStore, db: Path) -> None:
    # Another connection holds the write lock, so the first flush waits inside its transaction.
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    store.write(make_task("t1"))
    first = asyncio.create_task(store.flush())
    await asyncio.sleep(0.2)  # the event loop keeps running while the flush waits for SQLite
    assert not first.done()
    store.write(make_task("t2"))
    second = asyncio.create_task(store.flush())
    await asyncio.sleep(0.05)
    blocker.execute("COMMIT")
    blocker.close()
    await first
    ids_after_first = [t.id for t in store.load_tasks("g-1")]
    await second
    assert ids_after_first == ["t1"]
    assert [t.id for t in store.load_tasks("g-1")] == ["t1", "t2"]


async def test_background_flusher_commits_without_being_awaited(db: Path) -> None:
    store = SqlStore(sqlite_url(db), flush_delay=0.005)
    reader = SqlStore(sqlite_url(db))
    store.write(make_goal(), events=[event(goal_id="g-1")])
    deadline = time.monotonic() + 5
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


async def test_aclose_and_close_flush_what_is_staged(db: Path) -> None:
    store = SqlStore(sqlite_url(db), flush_delay=60)
    store.write(make_goal("g-a"))
    await store.aclose()
    store = SqlStore(sqlite_url(db), flush_delay=60)
    store.write(make_goal("g-b"))
    store.close()
    store = SqlStore(sqlite_url(db))
    assert {g.id for g in store.list_goals()} == {"g-a", "g-b"}
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.write(make_goal())


# -- failures --------------------------------------------------------------------------------------

FAIL_ON_BOOM = """
    CREATE TRIGGER fail_on_boom BEFORE INSERT ON events WHEN NEW.message = 'boom'
    BEGIN SELECT RAISE(ABORT, 'boom refused'); END;
"""


def install_trigger(db: Path, sql: str) -> None:
    with raw(db) as conn:
        conn.executescript(sql)


def drop_trigger(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("DROP TRIGGER fail_on_boom")


async def test_a_failed_flush_lands_nothing_and_keeps_everything_staged(
    store: SqlStore, db: Path
) -> None:
    store.write(make_goal())
    await store.flush()
    install_trigger(db, FAIL_ON_BOOM)
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
    drop_trigger(db)
    await store.flush()
    assert store.load_tasks("g-1") == [make_task("t1"), make_task("t2", priority=99)]
    assert store.get_goal("g-1") == make_goal(summary="changed")
    assert [e.message for e in store.events()] == ["before", "boom", "after"]


async def test_writes_made_during_a_failed_flush_stay_newer_than_its_rows(
    store: SqlStore, db: Path
) -> None:
    store.write(make_task("t1", priority=1), events=[event(message="boom")])
    # Hold the write lock while the flush takes its rows, then let it fail on the trigger.
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute(FAIL_ON_BOOM)
    flush = asyncio.create_task(store.flush())
    await asyncio.sleep(0.2)
    store.write(make_task("t1", priority=2), events=[event(message="later")])
    blocker.execute("COMMIT")
    blocker.close()
    with pytest.raises(sa.exc.IntegrityError):
        await flush
    drop_trigger(db)
    await store.flush()
    assert store.load_tasks("g-1") == [make_task("t1", priority=2)]
    assert [e.message for e in store.events()] == ["boom", "later"]


def test_a_failed_flush_sync_keeps_everything_staged(store: SqlStore, db: Path) -> None:
    install_trigger(db, FAIL_ON_BOOM)
    store.write(make_project(), events=[event(message="boom")])
    with pytest.raises(sa.exc.IntegrityError):
        store.flush_sync()
    assert store.list_projects() == []
    drop_trigger(db)
    store.flush_sync()
    assert store.list_projects() == [make_project()]
    assert [e.message for e in store.events()] == ["boom"]


async def test_background_flusher_retries_after_a_failure(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlStore(sqlite_url(db), flush_delay=0.001, retry_delay=0.05)
    install_trigger(db, FAIL_ON_BOOM)
    with caplog.at_level(logging.ERROR, logger="blitz.store.sql"):
        store.write(make_goal(), events=[event(message="boom")])
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
    assert "flush failed" in caplog.records[0].getMessage()
    drop_trigger(db)
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


# -- several stores on one file --------------------------------------------------------------------


async def test_two_stores_share_one_database(db: Path) -> None:
    one = SqlStore(sqlite_url(db), flush_delay=60)
    two = SqlStore(sqlite_url(db), flush_delay=60)
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


def test_commands_are_taken_once_in_order(store: SqlStore) -> None:
    first = store.add_command("g-1", "cancel")
    second = store.add_command("g-2", "cancel")
    assert second > first
    third = store.add_command("g-3", "cancel")
    taken = store.take_commands(["g-1", "g-2"])
    assert [(c.id, c.goal_id) for c in taken] == [(first, "g-1"), (second, "g-2")]
    assert all(c.created_at > 0 for c in taken)
    assert store.take_commands(["g-1", "g-2"]) == []
    assert [c.id for c in store.take_commands(["g-3"])] == [third]


# -- replacing a plan ------------------------------------------------------------------------------


def test_replace_plan_swaps_the_goals_tasks_durably(store: SqlStore) -> None:
    store.write(make_task("t1"), make_task("t2"), make_task("t1", goal_id="g-2"))
    store.flush_sync()
    # Staged tasks of the goal belong to the plan being replaced; another goal's stay staged.
    store.write(make_task("t3"), make_task("t2", goal_id="g-2"), events=[event(message="kept")])
    edited = [make_task("t2", title="edited", depends_on=()), make_task("t4", depends_on=("t2",))]

    store.replace_plan("g-1", edited)

    assert store.load_tasks("g-1") == edited  # durable without a flush
    assert store.load_tasks("g-2") == [make_task("t1", goal_id="g-2")]
    store.flush_sync()
    assert store.load_tasks("g-1") == edited
    assert [t.id for t in store.load_tasks("g-2")] == ["t1", "t2"]
    assert [e.message for e in store.events()] == ["kept"]
    store.replace_plan("g-1", [])
    assert store.load_tasks("g-1") == []


def test_replace_plan_refuses_tasks_it_cannot_store(store: SqlStore) -> None:
    store.write(make_task("t1"))
    store.flush_sync()
    with pytest.raises(ValueError, match="g-2"):
        store.replace_plan("g-1", [make_task("t2"), make_task("t3", goal_id="g-2")])
    with pytest.raises(ValueError, match="t2"):
        store.replace_plan("g-1", [make_task("t2"), make_task("t2", title="again")])
    assert store.load_tasks("g-1") == [make_task("t1")]


def test_a_failed_replace_plan_changes_nothing(store: SqlStore, db: Path) -> None:
    store.write(make_task("t1"))
    store.flush_sync()
    store.write(make_task("t2"))
    install_trigger(
        db,
        """
        CREATE TRIGGER fail_on_boom BEFORE INSERT ON tasks WHEN NEW.id = 'boom'
        BEGIN SELECT RAISE(ABORT, 'boom refused'); END;
        """,
    )
    with pytest.raises(sa.exc.IntegrityError):
        store.replace_plan("g-1", [make_task("ok"), make_task("boom")])
    assert store.load_tasks("g-1") == [make_task("t1")]
    drop_trigger(db)
    store.flush_sync()  # the staged task was put back
    assert [t.id for t in store.load_tasks("g-1")] == ["t1", "t2"]


# -- queries ---------------------------------------------------------------------------------------


def test_get_goal_by_id_or_unique_prefix(store: SqlStore) -> None:
    store.write(make_goal("g-3f9a1c2b"), make_goal("g-3f9a77aa"), make_goal("g-3f"))
    store.flush_sync()
    assert store.get_goal("g-3f9a1") == make_goal("g-3f9a1c2b")
    assert store.get_goal("g-3f9a") is None  # two goals start with it
    assert store.get_goal("g-3f") == make_goal("g-3f")  # an exact id beats prefixes
    assert store.get_goal("G-3F9A1") is None  # prefixes are case-sensitive
    assert store.get_goal("g-3f9a1%") is None  # no LIKE wildcards
    assert store.get_goal("nothing") is None
    assert store.get_goal("") is None


def test_list_goals_newest_first_with_filters(store: SqlStore) -> None:
    store.write(
        make_goal("g-old", created_at=1.0, state=GoalState.SUCCEEDED),
        make_goal("g-new", created_at=3.0, state=GoalState.RUNNING),
        make_goal("g-mid", project_id="p-2", created_at=2.0, state=GoalState.RUNNING),
    )
    store.flush_sync()
    assert [g.id for g in store.list_goals()] == ["g-new", "g-mid", "g-old"]
    assert [g.id for g in store.list_goals(project_id="p-1")] == ["g-new", "g-old"]
    assert [g.id for g in store.list_goals(states={GoalState.RUNNING})] == ["g-new", "g-mid"]
    assert store.list_goals(project_id="p-2", states=[GoalState.SUCCEEDED]) == []


def test_get_project_prefers_the_id_over_another_projects_name(store: SqlStore) -> None:
    store.write(make_project("p-1", name="p-2"), make_project("p-2", name="other"))
    store.flush_sync()
    assert store.get_project("p-2") == make_project("p-2", name="other")
    assert store.get_project("other") == make_project("p-2", name="other")
    assert store.get_project("missing") is None


def test_delete_project_removes_everything_of_its_goals_but_keeps_the_event_log(
    store: SqlStore,
) -> None:
    def everything(project: str, goal: str) -> None:
        store.write(
            make_project(project),
            make_goal(goal, project_id=project),
            make_task("t1", goal_id=goal),
            make_attempt(f"a-{goal}", goal_id=goal),
            make_recovery(f"r-{goal}", goal_id=goal),
            make_baseline(goal),
            make_breaker(f"project:{project}"),
            events=[
                event(goal_id=goal, message=f"{goal} event"),
                event(EventKind.PROJECT_ADDED, project_id=project, message=f"{project} event"),
            ],
        )

    everything("p-1", "g-1")
    everything("p-2", "g-2")
    store.add_command("g-1", "cancel")
    store.flush_sync()
    # Rows staged but not yet flushed belong to the project too.
    store.write(make_goal("g-staged", project_id="p-1"), make_task("t9", goal_id="g-staged"))
    store.write(events=[event(goal_id="g-staged", message="staged event")])

    store.delete_project("p-1")
    store.flush_sync()

    assert [p.id for p in store.list_projects()] == ["p-2"]
    assert [g.id for g in store.list_goals()] == ["g-2"]
    for goal in ("g-1", "g-staged"):
        assert store.load_tasks(goal) == []
        assert store.load_attempts(goal) == []
        assert store.load_recoveries(goal) == []
        assert store.load_baseline(goal) is None
    assert [b.key for b in store.load_breakers()] == ["project:p-2"]
    # The log is append-only: ids are never reused, so a follower never skips a new event.
    assert [e.message for e in store.events()] == [
        "g-1 event",
        "p-1 event",
        "g-2 event",
        "p-2 event",
        "staged event",
    ]
    newest = store.events()[-1].id
    store.write(events=[event(goal_id="g-2", message="after")])
    store.flush_sync()
    assert store.events(after=newest)[0].message == "after"
    assert store.take_commands(["g-1", "g-2"]) == []
    assert store.load_tasks("g-2") == [make_task("t1", goal_id="g-2")]
    assert store.load_attempts("g-2") == [make_attempt("a-g-2", goal_id="g-2")]


# -- redaction -------------------------------------------------------------------------------------


def test_events_are_redacted_before_they_are_stored(store: SqlStore, db: Path) -> None:
    registered = "correct-horse-battery-staple"
    register_secret(registered)
    store.write(
        events=[
            event(
                message=f"calling with key sk-ant-api03-{'a' * 30} and {registered}",
                data={
                    "header": "Authorization: Bearer abcdefghijkl",
                    "urls": ["https://bot:hunter2hunter2@git.test/repo.git"],
                    "nested": {"token": "ghp_" + "b" * 36, "count": 3, "pair": ("x", registered)},
                },
            )
        ]
    )
    store.flush_sync()
    [stored] = store.events()
    assert stored.message == "calling with key [redacted] and [redacted]"
    assert stored.data == {
        "header": "Authorization: [redacted]",
        "urls": ["https://bot:[redacted]@git.test/repo.git"],
        "nested": {"token": "[redacted]", "count": 3, "pair": ["x", "[redacted]"]},
    }
    files = [db, db.with_name(db.name + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert registered.encode() not in raw
    assert b"hunter2hunter2" not in raw


def test_diagnostic_text_of_records_is_redacted(store: SqlStore) -> None:
    secret = "xoxb-1234567890-abcdefghij"
    store.write(
        make_goal(error=f"slack said {secret}"),
        make_attempt(
            error=f"auth {secret}",
            summary=secret,
            gates=(gate_result("test", output_tail=f"env: {secret}"),),
        ),
        BreakerRecord(key="global", last_error=secret),
    )
    store.flush_sync()
    goal = store.get_goal("g-1")
    assert goal is not None and goal.error == "slack said [redacted]"
    [attempt] = store.load_attempts("g-1")
    assert (attempt.error, attempt.summary) == ("auth [redacted]", "[redacted]")
    assert attempt.gates[0].output_tail == "env: [redacted]"
    assert store.load_breakers()[0].last_error == "[redacted]"


# -- a killed writer -------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from blitz.domain import Goal, Task
    from blitz.events import Event, EventKind
    from blitz.store.sql import SqlStore, sqlite_url

    async def main():
        store = SqlStore(sqlite_url(Path(sys.argv[1])), flush_delay=60)
        tasks = [Task(id=f"t{i}", goal_id="g-1", title=str(i)) for i in range(500)]
        store.write(Goal(id="g-1", project_id="p-1", title="goal"), *tasks)
        store.write(events=[Event(kind=EventKind.GOAL_CREATED, goal_id="g-1")])
        await store.flush()
        store.write(Task(id="unflushed", goal_id="g-1", title="lost"))
        print("flushed", flush=True)
        if sys.argv[2] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(0)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("death", ["exit", "kill"])
def test_flushed_data_survives_a_killed_process(db: Path, death: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), death],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.stdout == "flushed\n", child.stderr
    assert child.returncode == (-signal.SIGKILL if death == "kill" else 0)
    store = SqlStore(sqlite_url(db))
    assert store.get_goal("g-1") is not None
    loaded = store.load_tasks("g-1")
    assert len(loaded) == 500 and "unflushed" not in {t.id for t in loaded}
    assert [e.kind for e in store.events(goal_id="g-1")] == [EventKind.GOAL_CREATED]
    store.close()
    assert os.path.exists(db)


def test_a_database_at_the_first_revision_is_upgraded_with_its_data(db: Path) -> None:
    """A store made before goals kept their planning usage opens fine: the goal keeps its row
    and reads back with zero usage."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(sqlite_url(db))
    config = Config()
    config.set_main_option("script_location", "blitz.store:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO goals (id, project_id, title, state, branch, base_branch, base_sha,"
                " backend, summary, error, pr_url, created_at, finished_at, runner, max_parallel)"
                " VALUES ('g-old', 'p-1', 'old goal', 'running', 'blitz/x', 'main', '', "
                "'scripted', '', '', '', 1.0, 0.0, '', 0)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO tasks (goal_id, id, title, instructions, depends_on, priority, checks,"
                ' files, state, attempts, crashes, conflicts, recoveries, "commit", origin,'
                " guidance, root_cause, reason, allow_empty) VALUES ('g-old', 't1', 'old task',"
                " '', '[]', 0, '[]', '[]', 'pending', 0, 0, 0, 0, '', 'plan', '', '', '', 0)"
            )
        )
    engine.dispose()
    store = SqlStore(sqlite_url(db))
    goal = store.get_goal("g-old")
    assert goal is not None and goal.title == "old goal"
    assert goal.usage == Usage()
    [old_task] = store.load_tasks("g-old")
    assert (old_task.title, old_task.position) == ("old task", 0)
    store.close()


def test_a_database_at_the_second_revision_is_upgraded_with_its_data(db: Path) -> None:
    """A store made before per-task routing and exploration opens fine: its rows keep their
    values and read back with the new fields at their defaults."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(sqlite_url(db))
    config = Config()
    config.set_main_option("script_location", "blitz.store:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    gates = '{"build":"","test":"pytest","typecheck":"","lint":"","timeout":600.0}'
    with engine.begin() as connection:
        for sql in (
            "INSERT INTO projects (id, name, path, base_branch, remote, gates, backend,"
            f" max_parallel, paused, pause_reason) VALUES ('p-old', 'old', '/repos/old', 'main',"
            f" 'origin', '{gates}', 'embedded', 2, 1, 'by hand')",
            "INSERT INTO goals (id, project_id, title, state, branch, base_branch, base_sha,"
            " backend, summary, error, pr_url, created_at, finished_at, runner, max_parallel,"
            " input_tokens, output_tokens, cached_tokens, cost_usd) VALUES ('g-old', 'p-old',"
            " 'old goal', 'running', 'blitz/x', 'main', 'sha0', 'embedded', '', '', '', 1.0, 0.0,"
            " '', 0, 5, 6, 7, 0.25)",
            "INSERT INTO tasks (goal_id, id, title, instructions, depends_on, priority, checks,"
            ' files, state, attempts, crashes, conflicts, recoveries, "commit", origin,'
            " guidance, root_cause, reason, allow_empty, position) VALUES ('g-old', 't1',"
            " 'old task', 'do it', '[\"t0\"]', 3, '[]', '[]', 'running', 1, 0, 0, 0, '',"
            " 'plan', '', '', '', 1, 4)",
            "INSERT INTO attempts (id, goal_id, task_id, number, state, backend, worktree,"
            ' base_sha, "commit", error, summary, gates, diff_stat, input_tokens, output_tokens,'
            " cached_tokens, cost_usd, started_at, finished_at) VALUES ('a-old', 'g-old', 't1',"
            " 1, 'running', 'embedded', '/wt', 'sha0', '', '', '', '[]', '', 1, 2, 3, 0.5, 9.0,"
            " 0.0)",
        ):
            connection.exec_driver_sql(sql)  # not sa.text: the JSON holds colons
    engine.dispose()

    store = SqlStore(sqlite_url(db))
    assert store.get_project("p-old") == Project(
        id="p-old",
        name="old",
        path="/repos/old",
        remote="origin",
        gates=Gates(test="pytest"),
        backend="embedded",
        max_parallel=2,
        paused=True,
        pause_reason="by hand",
    )
    assert store.get_goal("g-old") == Goal(
        id="g-old",
        project_id="p-old",
        title="old goal",
        state=GoalState.RUNNING,
        branch="blitz/x",
        base_sha="sha0",
        backend="embedded",
        created_at=1.0,
        usage=Usage(input_tokens=5, output_tokens=6, cached_tokens=7, cost_usd=0.25),
    )
    assert store.load_tasks("g-old") == [
        Task(
            id="t1",
            goal_id="g-old",
            title="old task",
            instructions="do it",
            depends_on=("t0",),
            priority=3,
            state=TaskState.RUNNING,
            attempts=1,
            allow_empty=True,
            position=4,
        )
    ]
    assert store.load_attempts("g-old") == [
        Attempt(
            id="a-old",
            goal_id="g-old",
            task_id="t1",
            number=1,
            backend="embedded",
            worktree="/wt",
            base_sha="sha0",
            usage=Usage(input_tokens=1, output_tokens=2, cached_tokens=3, cost_usd=0.5),
            started_at=9.0,
        )
    ]
    # The new columns take new values like any other.
    store.write(make_goal("g-old", project_id="p-old"))
    store.flush_sync()
    assert store.get_goal("g-old") == make_goal("g-old", project_id="p-old")
    store.close()


def test_the_head_revision_constant_is_alembic_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from blitz.store.sql import HEAD_REVISION

    config = Config()
    config.set_main_option("script_location", "blitz.store:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION
