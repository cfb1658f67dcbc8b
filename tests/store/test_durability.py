"""What survives the end of a process: data flushed by a writer that exits or is killed (on
SQLite and PostgreSQL), and SQLite's write-ahead log that makes a killed writer harmless."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from blitz.events import EventKind
from blitz.store.sql import SqlStore, sqlite_url


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    """SQLite only: the journal mode is SQLite's own."""
    db = tmp_path / "blitz.db"
    SqlStore(sqlite_url(db)).close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from blitz.domain import Goal, Task
    from blitz.events import Event, EventKind
    from blitz.store.sql import SqlStore

    async def main():
        store = SqlStore(sys.argv[1], flush_delay=60)
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
def test_flushed_data_survives_a_killed_process(url: str, death: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, death],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.stdout == "flushed\n", child.stderr
    assert child.returncode == (-signal.SIGKILL if death == "kill" else 0)
    store = SqlStore(url)
    assert store.get_goal("g-1") is not None
    loaded = store.load_tasks("g-1")
    assert len(loaded) == 500 and "unflushed" not in {t.id for t in loaded}
    assert [e.kind for e in store.events(goal_id="g-1")] == [EventKind.GOAL_CREATED]
    store.close()
