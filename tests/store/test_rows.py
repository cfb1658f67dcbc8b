"""Row codecs derived from the record types: every record survives a trip through a real SQLite
table (record -> row -> database -> row -> record), whatever its field values."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blitz.domain import Attempt, GateResult, Gates, Goal, Project, Task
from blitz.events import Event
from blitz.gatecache import CachedGate
from blitz.store import layout
from blitz.store.database import BulkInsert, create_engine, fetch_rows, max_variables, sqlite_url
from blitz.store.rows import EVENTS, GATE_RESULTS, RECORDS, RowCodec, row_codec
from blitz.store.schema import TABLES, metadata

# Text as tool output has it (control characters, quotes, backslashes, non-ASCII), without lone
# surrogates, which no database driver encodes. The store redacts every string, so fields get text
# that cannot hold a secret's shape: too short for a key, and no ":" or "=" for a header or a URL.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
PLAIN = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=":="), max_size=12)
FLOATS = st.floats(allow_nan=False)  # NaN is never equal to itself
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | FLOATS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def values(tp: Any) -> st.SearchStrategy[Any]:
    """Every value of type ``tp`` the store must keep, from the type hints of the records."""
    if tp is str:
        return PLAIN
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(2**63), 2**63 - 1)
    if tp is float:
        return FLOATS
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(tp)
    if dataclasses.is_dataclass(tp):
        return records(tp)  # type: ignore[arg-type]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        return st.lists(values(args[0]), max_size=4).map(tuple)
    if origin is Mapping:
        return st.dictionaries(TEXT, JSON, max_size=4)
    if type(None) in args:
        return st.none() | values(next(a for a in args if a is not type(None)))
    raise TypeError(f"no strategy for {tp!r}")


def records(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: values(hints[f.name]) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if cls is Event:  # the database numbers events, and stamps those without a time
        fields["id"] = st.just(0)
        fields["ts"] = FLOATS.filter(bool)
    if cls is CachedGate:  # stamped when written without a time
        fields["created_at"] = FLOATS.filter(bool)
    return st.builds(cls, **fields)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    engine = create_engine(sqlite_url(tmp_path_factory.mktemp("rows") / "rows.db"), 5.0)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def through_sqlite(engine: sa.Engine, codec: RowCodec[Any], record: Any) -> Any:
    """``record`` written to and read back from its table, which holds nothing else."""
    table = TABLES[codec.table.name]
    insert = BulkInsert(
        engine, table, codec.columns, upsert=False, max_variables=max_variables(engine)
    )
    with engine.begin() as connection:
        connection.execute(sa.delete(table))
        insert.run(connection, [codec.to_row(record)])
    [row] = fetch_rows(engine, sa.select(table))
    return codec.from_row(row)


@pytest.mark.parametrize(
    "codec", [*RECORDS.values(), EVENTS, GATE_RESULTS], ids=lambda c: c.record.__name__
)
def test_every_record_type_round_trips_through_sqlite(
    engine: sa.Engine, codec: RowCodec[Any]
) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(records(codec.record))
    def round_trip(record: Any) -> None:
        loaded = through_sqlite(engine, codec, record)
        if codec is EVENTS:
            assert loaded.id > 0
            loaded = dataclasses.replace(loaded, id=0)
        assert_same(loaded, record)

    round_trip()


def assert_same(loaded: Any, original: Any) -> None:
    """Equal, and of the same types all the way down (``1 == True``, yet a bool must stay one)."""
    assert loaded == original
    assert type(loaded) is type(original), (loaded, original)
    if dataclasses.is_dataclass(original):
        for f in dataclasses.fields(original):
            assert_same(getattr(loaded, f.name), getattr(original, f.name))
    elif isinstance(original, tuple):
        for a, b in zip(loaded, original, strict=True):
            assert_same(a, b)


def test_every_string_is_redacted_on_the_way_in(engine: sa.Engine) -> None:
    key = "sk-ant-api03-" + "x" * 40
    goal = Goal(id="g", project_id="p", title="t", error=f"401 with {key}", summary=key)
    loaded = through_sqlite(engine, RECORDS[Goal], goal)
    assert loaded.error == "401 with [redacted]"
    assert loaded.summary == "[redacted]"
    assert loaded.title == "t"


def test_a_field_missing_from_a_nested_records_json_reads_as_its_default() -> None:
    # Rows written before GateResult.reused and Gates.reuse / parallel / fail_fast existed.
    project = Project(id="p", name="n", path="/r", gates=Gates(test="pytest", parallel=True))
    row = list(RECORDS[Project].to_row(project))
    column = RECORDS[Project].columns.index("gates")
    older = json.loads(row[column])
    for name in ("reuse", "parallel", "fail_fast"):
        del older[name]
    row[column] = json.dumps(older)
    assert RECORDS[Project].from_row(row).gates == Gates(test="pytest")

    gate = GateResult(name="test", command="pytest", passed=True, exit_code=0, duration=1.0)
    attempt = Attempt(id="a", goal_id="g", task_id="t", number=1, gates=(gate,))
    row = list(RECORDS[Attempt].to_row(attempt))
    column = RECORDS[Attempt].columns.index("gates")
    older = json.loads(row[column])
    del older[0]["reused"]
    row[column] = json.dumps(older)
    assert RECORDS[Attempt].from_row(row).gates == (gate,)


def test_every_field_of_a_record_type_needs_a_column() -> None:
    narrow = layout.table("narrow", layout.Column("id", "text", primary_key=True))
    with pytest.raises(TypeError, match="has no column"):
        row_codec(Task, narrow)


def test_every_column_needs_a_field() -> None:
    columns = RECORDS[Task].table.columns
    wide = layout.table("wide", *columns, layout.Column("extra", "text"))
    with pytest.raises(TypeError, match="extra"):
        row_codec(Task, wide)
