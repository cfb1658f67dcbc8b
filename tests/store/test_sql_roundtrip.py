"""What the SQL store writes it reads back, on SQLite and PostgreSQL: every record type with
every field set, events with their ids and timestamps, and upserts that leave one row."""

from __future__ import annotations

import time

import pytest
from backdoor import Backdoor
from sample_records import (
    event,
    make_attempt,
    make_baseline,
    make_breaker,
    make_goal,
    make_project,
    make_recovery,
    make_task,
)

from blitz.domain import Check, GoalState, Task, TaskState
from blitz.events import EventKind
from blitz.store.base import Store
from blitz.store.sql import SqlStore


def test_sql_store_satisfies_the_store_protocol(store: SqlStore) -> None:
    typed: Store = store
    assert typed is store


def test_unsupported_database_is_a_config_error() -> None:
    from blitz.errors import ConfigError

    with pytest.raises(ConfigError):
        SqlStore("mysql://user@localhost/blitz")


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


async def test_upsert_overwrites_a_flushed_record(store: SqlStore, backdoor: Backdoor) -> None:
    task = make_task(state=TaskState.READY, attempts=0)
    store.write(make_goal(), task)
    await store.flush()
    running = task.evolve(state=TaskState.RUNNING, attempts=1, depends_on=(), checks=())
    store.write(make_goal(state=GoalState.FINISHING), running)
    await store.flush()
    assert store.load_tasks("g-1") == [running]
    assert store.get_goal("g-1") == make_goal(state=GoalState.FINISHING)
    assert backdoor.count("tasks") == 1
