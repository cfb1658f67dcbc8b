"""The store's schema and its migrations, on SQLite and PostgreSQL: a new database gets exactly
the tables the store uses, reopening migrates once, and a database made by an older blitz is
upgraded with its data."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from backdoor import Backdoor
from sample_records import make_goal, make_project, make_task

from blitz.domain import Attempt, Gates, Goal, GoalState, Project, Task, TaskState, Usage
from blitz.store.sql import HEAD_REVISION, VERSION_TABLE, SqlStore, metadata


def migrate_to(url: str, revision: str) -> None:
    """Make the database at ``url`` what blitz made at ``revision``."""
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", "blitz.store:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_migration_creates_exactly_the_tables_the_store_uses(store: SqlStore) -> None:
    with store._engine.connect() as conn:
        opts = {"version_table": VERSION_TABLE, "compare_server_default": True}
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, metadata) == []
        assert context.get_current_revision() == HEAD_REVISION


def test_reopening_keeps_data_and_migrates_once(url: str) -> None:
    first = SqlStore(url)
    first.write(make_project(), make_goal(), make_task())
    first.close()
    for _ in range(2):
        again = SqlStore(url)
        assert again.get_project("p-1") == make_project()
        assert again.load_tasks("g-1") == [make_task()]
        again.close()
    backdoor = Backdoor(url)
    assert backdoor.run(f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD_REVISION,)]
    backdoor.close()


def test_a_database_at_the_first_revision_is_upgraded_with_its_data(url: str) -> None:
    """A store made before goals kept their planning usage opens fine: the goal keeps its row
    and reads back with zero usage."""
    migrate_to(url, "0001")
    backdoor = Backdoor(url)
    backdoor.run(
        "INSERT INTO goals (id, project_id, title, state, branch, base_branch, base_sha,"
        " backend, summary, error, pr_url, created_at, finished_at, runner, max_parallel)"
        " VALUES ('g-old', 'p-1', 'old goal', 'running', 'blitz/x', 'main', '', "
        "'scripted', '', '', '', 1.0, 0.0, '', 0)",
        "INSERT INTO tasks (goal_id, id, title, instructions, depends_on, priority, checks,"
        ' files, state, attempts, crashes, conflicts, recoveries, "commit", origin,'
        " guidance, root_cause, reason, allow_empty) VALUES ('g-old', 't1', 'old task',"
        " '', '[]', 0, '[]', '[]', 'pending', 0, 0, 0, 0, '', 'plan', '', '', '', FALSE)",
    )
    backdoor.close()
    store = SqlStore(url)
    goal = store.get_goal("g-old")
    assert goal is not None and goal.title == "old goal"
    assert goal.usage == Usage()
    [old_task] = store.load_tasks("g-old")
    assert (old_task.title, old_task.position) == ("old task", 0)
    store.close()


def test_a_database_at_the_second_revision_is_upgraded_with_its_data(url: str) -> None:
    """A store made before per-task routing and exploration opens fine: its rows keep their
    values and read back with the new fields at their defaults."""
    migrate_to(url, "0002")
    gates = '{"build":"","test":"pytest","typecheck":"","lint":"","timeout":600.0}'
    backdoor = Backdoor(url)
    backdoor.run(
        "INSERT INTO projects (id, name, path, base_branch, remote, gates, backend,"
        f" max_parallel, paused, pause_reason) VALUES ('p-old', 'old', '/repos/old', 'main',"
        f" 'origin', '{gates}', 'embedded', 2, TRUE, 'by hand')",
        "INSERT INTO goals (id, project_id, title, state, branch, base_branch, base_sha,"
        " backend, summary, error, pr_url, created_at, finished_at, runner, max_parallel,"
        " input_tokens, output_tokens, cached_tokens, cost_usd) VALUES ('g-old', 'p-old',"
        " 'old goal', 'running', 'blitz/x', 'main', 'sha0', 'embedded', '', '', '', 1.0, 0.0,"
        " '', 0, 5, 6, 7, 0.25)",
        "INSERT INTO tasks (goal_id, id, title, instructions, depends_on, priority, checks,"
        ' files, state, attempts, crashes, conflicts, recoveries, "commit", origin,'
        " guidance, root_cause, reason, allow_empty, position) VALUES ('g-old', 't1',"
        " 'old task', 'do it', '[\"t0\"]', 3, '[]', '[]', 'running', 1, 0, 0, 0, '',"
        " 'plan', '', '', '', TRUE, 4)",
        "INSERT INTO attempts (id, goal_id, task_id, number, state, backend, worktree,"
        ' base_sha, "commit", error, summary, gates, diff_stat, input_tokens, output_tokens,'
        " cached_tokens, cost_usd, started_at, finished_at) VALUES ('a-old', 'g-old', 't1',"
        " 1, 'running', 'embedded', '/wt', 'sha0', '', '', '', '[]', '', 1, 2, 3, 0.5, 9.0,"
        " 0.0)",
    )
    backdoor.close()

    store = SqlStore(url)
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
    config = Config()
    config.set_main_option("script_location", "blitz.store:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION
