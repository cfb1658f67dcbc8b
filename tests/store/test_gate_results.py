"""The store's kept gate results: durable at once, shared by stores on one database, redacted on
the way in, and gone with their project."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from blitz.domain import GateResult, Project
from blitz.gatecache import GateKey
from blitz.store.sql import SqlStore, sqlite_url

KEY = GateKey(project_id="p1", tree="a" * 40, command="pytest -q", timeout=600.0, env_digest="e")


def _result(**changes: object) -> GateResult:
    fields: dict[str, object] = {
        "name": "test",
        "command": "pytest -q",
        "passed": False,
        "exit_code": 1,
        "duration": 2.5,
        "output_tail": "FAILED tests/t.py::test_x",
        "new_failures": ("tests/t.py::test_x",),
    }
    return GateResult(**(fields | changes))  # type: ignore[arg-type]


def test_a_kept_result_is_seen_by_another_store_at_once(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "blitz.db")
    one, other = SqlStore(url), SqlStore(url)
    try:
        assert one.gate_results.get(KEY) is None
        one.gate_results.put(KEY, _result())
        assert other.gate_results.get(KEY) == _result()
        one.gate_results.put(KEY, _result(passed=True, exit_code=0))  # a newer run replaces it
        assert other.gate_results.get(KEY) == _result(passed=True, exit_code=0)
        assert other.gate_results.get(GateKey(**{**_fields(KEY), "env_digest": "f"})) is None
    finally:
        one.close()
        other.close()


def _fields(key: GateKey) -> dict[str, object]:
    return {name: getattr(key, name) for name in GateKey.__dataclass_fields__}


def test_timed_out_and_not_run_results_are_not_kept(tmp_path: Path) -> None:
    store = SqlStore(sqlite_url(tmp_path / "blitz.db"))
    try:
        store.gate_results.put(KEY, _result(exit_code=None, timed_out=True))
        store.gate_results.put(KEY, _result(exit_code=None, output_tail="not run"))
        assert store.gate_results.get(KEY) is None
    finally:
        store.close()


def test_a_secret_in_a_gates_output_is_redacted_in_the_database(tmp_path: Path) -> None:
    secret = "sk-ant-api03-" + "y" * 40
    path = tmp_path / "blitz.db"
    store = SqlStore(sqlite_url(path))
    try:
        store.gate_results.put(KEY, _result(output_tail=f"auth failed with {secret}"))
        assert store.gate_results.get(KEY) == _result(output_tail="auth failed with [redacted]")
    finally:
        store.close()
    engine = sa.create_engine(sqlite_url(path))
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT result FROM gate_results")).scalar_one()
    engine.dispose()
    assert secret not in stored and "[redacted]" in stored


def test_removing_a_project_drops_its_kept_results(tmp_path: Path) -> None:
    store = SqlStore(sqlite_url(tmp_path / "blitz.db"))
    other_project = GateKey(**{**_fields(KEY), "project_id": "p2"})
    try:
        store.write(Project(id="p1", name="one", path="/r1"))
        store.flush_sync()
        store.gate_results.put(KEY, _result())
        store.gate_results.put(other_project, _result())
        store.delete_project("p1")
        assert store.gate_results.get(KEY) is None
        assert store.gate_results.get(other_project) == _result()
    finally:
        store.close()
