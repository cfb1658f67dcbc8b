"""The SQL store: SQLAlchemy Core on SQLite (WAL) or PostgreSQL, with group commit.

``write`` turns records and events into rows at once (so a bad value fails in its caller) and
stages them in memory, where only the last row of each record is kept. Event text and the
diagnostic text of records (errors, summaries, gate output) is redacted on the way. A flush moves
everything staged into one transaction run in a worker thread, so records and their events land
together or not at all, and writes made meanwhile wait for the next flush. A failed flush puts its
rows back, behind any newer versions staged since, and raises to everyone awaiting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import operator
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from blitz.domain import (
    Attempt,
    AttemptState,
    Baseline,
    BreakerRecord,
    BreakerState,
    Check,
    Command,
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
from blitz.errors import ConfigError
from blitz.events import Event, EventKind
from blitz.redact import redact, redact_data
from blitz.store.base import Record

log = logging.getLogger(__name__)

VERSION_TABLE = "blitz_schema_version"
"""Alembic's revision table; named for blitz so a shared PostgreSQL database has no clash."""

HEAD_REVISION = "0004"
"""The newest migration (a test keeps it equal to alembic's head). A database already there is
opened without importing alembic, which would add a third of a second to every command."""

# -- tables: keep in step with migrations/versions (a test compares them) --------------------------

metadata = sa.MetaData()
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _text(
    name: str, *, primary_key: bool = False, server_default: str | None = None
) -> sa.Column[str]:
    default = sa.text(server_default) if server_default is not None else None
    return sa.Column(
        name, sa.Text(), nullable=False, primary_key=primary_key, server_default=default
    )


def _int(name: str, *, server_default: str | None = None) -> sa.Column[int]:
    default = sa.text(server_default) if server_default is not None else None
    return sa.Column(name, sa.Integer(), nullable=False, server_default=default)


def _real(name: str, *, server_default: str | None = None) -> sa.Column[float]:
    default = sa.text(server_default) if server_default is not None else None
    return sa.Column(name, sa.Float(), nullable=False, server_default=default)


def _bool(name: str, *, server_default: bool | None = None) -> sa.Column[bool]:
    # sa.false() renders as the dialect spells it: 0 on SQLite, false on PostgreSQL.
    default = None if server_default is None else sa.true() if server_default else sa.false()
    return sa.Column(name, sa.Boolean(), nullable=False, server_default=default)


projects = sa.Table(
    "projects",
    metadata,
    _text("id", primary_key=True),
    _text("name"),
    _text("path"),
    _text("base_branch"),
    _text("remote"),
    _text("gates"),
    _text("backend"),
    _int("max_parallel"),
    _bool("paused"),
    _text("pause_reason"),
    _text("fallback_backend", server_default="''"),
    _bool("require_plan_approval", server_default=False),
    _text("model", server_default="''"),
)
goals = sa.Table(
    "goals",
    metadata,
    _text("id", primary_key=True),
    _text("project_id"),
    _text("title"),
    _text("state"),
    _text("branch"),
    _text("base_branch"),
    _text("base_sha"),
    _text("backend"),
    _text("summary"),
    _text("error"),
    _text("pr_url"),
    _real("created_at"),
    _real("finished_at"),
    _text("runner"),
    _int("max_parallel"),
    _int("input_tokens", server_default="0"),
    _int("output_tokens", server_default="0"),
    _int("cached_tokens", server_default="0"),
    _real("cost_usd", server_default="0"),
    _int("explore", server_default="0"),
    _text("explore_mode", server_default="'all'"),
    _text("portfolio", server_default="'[]'"),
    _text("model", server_default="''"),
    sa.Index("ix_goals_project_id", "project_id"),
)
tasks = sa.Table(
    "tasks",
    metadata,
    _text("goal_id", primary_key=True),
    _text("id", primary_key=True),
    _text("title"),
    _text("instructions"),
    _text("depends_on"),
    _int("priority"),
    _text("checks"),
    _text("files"),
    _text("state"),
    _int("attempts"),
    _int("crashes"),
    _int("conflicts"),
    _int("recoveries"),
    _text("commit"),
    _text("origin"),
    _text("guidance"),
    _text("root_cause"),
    _text("reason"),
    _bool("allow_empty"),
    _int("position", server_default="0"),
    _text("backend", server_default="''"),
    _text("model", server_default="''"),
    _int("explore", server_default="0"),
)
attempts = sa.Table(
    "attempts",
    metadata,
    _text("id", primary_key=True),
    _text("goal_id"),
    _text("task_id"),
    _int("number"),
    _text("state"),
    _text("backend"),
    _text("worktree"),
    _text("base_sha"),
    _text("commit"),
    _text("error"),
    _text("summary"),
    _text("gates"),
    _text("diff_stat"),
    _int("input_tokens"),
    _int("output_tokens"),
    _int("cached_tokens"),
    _real("cost_usd"),
    _real("started_at"),
    _real("finished_at"),
    _text("model", server_default="''"),
    _int("candidate", server_default="0"),
    _text("ref", server_default="''"),
    _bool("selected", server_default=False),
    _text("verdict", server_default="''"),
    _text("diff", server_default="''"),
    sa.Index("ix_attempts_goal_id_task_id", "goal_id", "task_id"),
)
recoveries = sa.Table(
    "recoveries",
    metadata,
    _text("id", primary_key=True),
    _text("goal_id"),
    _text("task_id"),
    _text("attempt_id"),
    _text("root_cause"),
    _text("action"),
    _text("guidance"),
    _text("new_tasks"),
    _real("created_at"),
    sa.Index("ix_recoveries_goal_id", "goal_id"),
)
breakers = sa.Table(
    "breakers",
    metadata,
    _text("key", primary_key=True),
    _text("state"),
    _int("failures"),
    _real("opened_at"),
    _text("last_error"),
)
baselines = sa.Table(
    "baselines",
    metadata,
    _text("goal_id", primary_key=True),
    _text("sha"),
    _text("results"),
)
event_log = sa.Table(  # not "events": write() takes an argument of that name
    "events",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    _real("ts"),
    _text("kind"),
    _text("goal_id"),
    _text("task_id"),
    _text("attempt_id"),
    _text("project_id"),
    _text("message"),
    _text("data"),
    sa.Index("ix_events_goal_id_id", "goal_id", "id"),
)
commands = sa.Table(
    "commands",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    _text("goal_id"),
    _text("kind"),
    _real("created_at"),
)

# -- records to rows and back ----------------------------------------------------------------------
# Rows are read positionally, in table column order; the round-trip tests give every field a
# distinct value, so a column read into the wrong field fails them.

_TASK_STATES = {s.value: s for s in TaskState}
_GOAL_STATES = {s.value: s for s in GoalState}
_ATTEMPT_STATES = {s.value: s for s in AttemptState}
_EVENT_KINDS = {k.value: k for k in EventKind}


# One encoder, reused. ASCII output escapes lone surrogates (undecodable bytes in tool output),
# which the database drivers would refuse to encode.
_encoder = json.JSONEncoder(separators=(",", ":"))
_dumps: Callable[[Any], str] = _encoder.encode
if c_make_encoder is not None:
    # JSONEncoder.encode builds a C encoder on every call, which costs more than encoding the
    # small values stored here; build it once. Without markers it skips the circular-reference
    # check: a cycle still fails in its writer, with RecursionError instead of ValueError.
    _iterencode = c_make_encoder(
        None, _encoder.default, encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def _dumps(value: Any) -> str:
        return "".join(_iterencode(value, 0))


_SCALARS = frozenset({int, float, bool, type(None)})


def _data_json(data: Mapping[str, Any]) -> str:
    """An event's ``data`` as redacted JSON; flat data (the usual case) takes a short cut."""
    if not data:
        return "{}"
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if type(value) is str:
            value = redact(value) if value else value
        elif type(value) not in _SCALARS:
            return _dumps(redact_data(dict(data)))
        clean[key] = value
    return _dumps(clean)


def _strs_json(values: tuple[str, ...]) -> str:
    return _dumps(values) if values else "[]"


def _strs(text: str) -> tuple[str, ...]:
    """Decode a JSON array of strings written by :func:`_strs_json`.

    Without a backslash the text has no escapes, so every ``"`` delimits a string and the array
    splits on ``","`` exactly (the encoder writes no spaces). This is five times faster than
    ``json.loads``, which matters when a goal of 100,000 tasks is loaded.
    """
    if text == "[]":
        return ()
    if "\\" not in text:
        return tuple(text[2:-2].split('","'))
    return tuple(json.loads(text))


def _gates_json(gates: Gates) -> str:
    return _dumps(
        {
            "build": gates.build,
            "test": gates.test,
            "typecheck": gates.typecheck,
            "lint": gates.lint,
            "timeout": gates.timeout,
        }
    )


def _gates(text: str) -> Gates:
    d = json.loads(text)
    return Gates(
        build=d["build"],
        test=d["test"],
        typecheck=d["typecheck"],
        lint=d["lint"],
        timeout=d["timeout"],
    )


def _checks_json(checks: tuple[Check, ...]) -> str:
    if not checks:
        return "[]"
    return _dumps(
        [
            {"kind": c.kind, "path": c.path, "command": c.command, "timeout": c.timeout}
            for c in checks
        ]
    )


def _checks(text: str) -> tuple[Check, ...]:
    if text == "[]":
        return ()
    return tuple(
        Check(kind=d["kind"], path=d["path"], command=d["command"], timeout=d["timeout"])
        for d in json.loads(text)
    )


def _results_json(results: tuple[GateResult, ...]) -> str:
    if not results:
        return "[]"
    # Gate output is whatever a build printed: it may hold a secret.
    return _dumps(
        [
            {
                "name": r.name,
                "command": r.command,
                "passed": r.passed,
                "exit_code": r.exit_code,
                "duration": r.duration,
                "output_tail": redact(r.output_tail),
                "timed_out": r.timed_out,
                "preexisting": r.preexisting,
                "new_failures": list(r.new_failures),
            }
            for r in results
        ]
    )


def _results(text: str) -> tuple[GateResult, ...]:
    if text == "[]":
        return ()
    return tuple(
        GateResult(
            name=d["name"],
            command=d["command"],
            passed=d["passed"],
            exit_code=d["exit_code"],
            duration=d["duration"],
            output_tail=d["output_tail"],
            timed_out=d["timed_out"],
            preexisting=d["preexisting"],
            new_failures=tuple(d["new_failures"]),
        )
        for d in json.loads(text)
    )


def _project_row(p: Project) -> tuple[Any, ...]:
    return (
        p.id,
        p.name,
        p.path,
        p.base_branch,
        p.remote,
        _gates_json(p.gates),  # gates
        p.backend,
        p.max_parallel,
        p.paused,
        p.pause_reason,
        p.fallback_backend,
        p.require_plan_approval,
        p.model,
    )


def _project(row: Sequence[Any]) -> Project:
    (id_, name, path, base_branch, remote, gates, backend, max_parallel, paused,
     pause_reason, fallback_backend, require_plan_approval, model) = row  # fmt: skip
    return Project(
        id=id_,
        name=name,
        path=path,
        base_branch=base_branch,
        remote=remote,
        gates=_gates(gates),
        backend=backend,
        max_parallel=max_parallel,
        paused=bool(paused),
        pause_reason=pause_reason,
        fallback_backend=fallback_backend,
        require_plan_approval=bool(require_plan_approval),
        model=model,
    )


def _goal_row(g: Goal) -> tuple[Any, ...]:
    return (
        g.id,
        g.project_id,
        g.title,
        g.state.value,  # state
        g.branch,
        g.base_branch,
        g.base_sha,
        g.backend,
        g.summary,
        redact(g.error),  # error
        g.pr_url,
        g.created_at,
        g.finished_at,
        g.runner,
        g.max_parallel,
        g.usage.input_tokens,
        g.usage.output_tokens,
        g.usage.cached_tokens,
        g.usage.cost_usd,
        g.explore,
        g.explore_mode,
        _strs_json(g.portfolio),  # portfolio
        g.model,
    )


def _goal(row: Sequence[Any]) -> Goal:
    (id_, project_id, title, state, branch, base_branch, base_sha, backend, summary, error,
     pr_url, created_at, finished_at, runner, max_parallel, input_tokens, output_tokens,
     cached_tokens, cost_usd, explore, explore_mode, portfolio, model) = row  # fmt: skip
    return Goal(
        id=id_,
        project_id=project_id,
        title=title,
        state=_GOAL_STATES[state],
        branch=branch,
        base_branch=base_branch,
        base_sha=base_sha,
        backend=backend,
        summary=summary,
        error=error,
        pr_url=pr_url,
        created_at=created_at,
        finished_at=finished_at,
        runner=runner,
        max_parallel=max_parallel,
        usage=Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached_tokens,
            cost_usd=cost_usd,
        ),
        explore=explore,
        explore_mode=explore_mode,
        portfolio=_strs(portfolio),
        model=model,
    )


def _task_row(t: Task) -> tuple[Any, ...]:
    return (
        t.goal_id,
        t.id,
        t.title,
        t.instructions,
        _strs_json(t.depends_on),  # depends_on
        t.priority,
        _checks_json(t.checks),  # checks
        _strs_json(t.files),  # files
        t.state.value,  # state
        t.attempts,
        t.crashes,
        t.conflicts,
        t.recoveries,
        t.commit,
        t.origin,
        t.guidance,
        t.root_cause,
        t.reason,
        t.allow_empty,
        t.position,
        t.backend,
        t.model,
        t.explore,
    )


def _task(row: Sequence[Any]) -> Task:
    (goal_id, id_, title, instructions, depends_on, priority, checks, files, state, attempts,
     crashes, conflicts, recoveries, commit, origin, guidance, root_cause, reason,
     allow_empty, position, backend, model, explore) = row  # fmt: skip
    return Task(
        id=id_,
        goal_id=goal_id,
        title=title,
        instructions=instructions,
        depends_on=_strs(depends_on),
        priority=priority,
        checks=_checks(checks),
        files=_strs(files),
        state=_TASK_STATES[state],
        attempts=attempts,
        crashes=crashes,
        conflicts=conflicts,
        recoveries=recoveries,
        commit=commit,
        origin=origin,
        guidance=guidance,
        root_cause=root_cause,
        reason=reason,
        allow_empty=bool(allow_empty),
        position=position,
        backend=backend,
        model=model,
        explore=explore,
    )


def _attempt_row(a: Attempt) -> tuple[Any, ...]:
    return (
        a.id,
        a.goal_id,
        a.task_id,
        a.number,
        a.state.value,  # state
        a.backend,
        a.worktree,
        a.base_sha,
        a.commit,
        redact(a.error),  # error
        redact(a.summary),  # summary
        _results_json(a.gates),  # gates
        a.diff_stat,
        a.usage.input_tokens,  # input_tokens
        a.usage.output_tokens,  # output_tokens
        a.usage.cached_tokens,  # cached_tokens
        a.usage.cost_usd,  # cost_usd
        a.started_at,
        a.finished_at,
        a.model,
        a.candidate,
        a.ref,
        a.selected,
        redact(a.verdict),  # verdict
        redact(a.diff),  # diff
    )


def _attempt(row: Sequence[Any]) -> Attempt:
    (id_, goal_id, task_id, number, state, backend, worktree, base_sha, commit, error, summary,
     gates, diff_stat, input_tokens, output_tokens, cached_tokens, cost_usd, started_at,
     finished_at, model, candidate, ref, selected, verdict, diff) = row  # fmt: skip
    return Attempt(
        id=id_,
        goal_id=goal_id,
        task_id=task_id,
        number=number,
        state=_ATTEMPT_STATES[state],
        backend=backend,
        worktree=worktree,
        base_sha=base_sha,
        commit=commit,
        error=error,
        summary=summary,
        gates=_results(gates),
        diff_stat=diff_stat,
        usage=Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached_tokens,
            cost_usd=cost_usd,
        ),
        started_at=started_at,
        finished_at=finished_at,
        model=model,
        candidate=candidate,
        ref=ref,
        selected=bool(selected),
        verdict=verdict,
        diff=diff,
    )


def _recovery_row(r: Recovery) -> tuple[Any, ...]:
    return (
        r.id,
        r.goal_id,
        r.task_id,
        r.attempt_id,
        r.root_cause,
        r.action.value,  # action
        r.guidance,
        _strs_json(r.new_tasks),  # new_tasks
        r.created_at,
    )


def _recovery(row: Sequence[Any]) -> Recovery:
    id_, goal_id, task_id, attempt_id, root_cause, action, guidance, new_tasks, created_at = row
    return Recovery(
        id=id_,
        goal_id=goal_id,
        task_id=task_id,
        attempt_id=attempt_id,
        root_cause=root_cause,
        action=RecoveryAction(action),
        guidance=guidance,
        new_tasks=_strs(new_tasks),
        created_at=created_at,
    )


def _breaker_row(b: BreakerRecord) -> tuple[Any, ...]:
    return (
        b.key,
        b.state.value,  # state
        b.failures,
        b.opened_at,
        redact(b.last_error),  # last_error
    )


def _breaker(row: Sequence[Any]) -> BreakerRecord:
    key, state, failures, opened_at, last_error = row
    return BreakerRecord(
        key=key,
        state=BreakerState(state),
        failures=failures,
        opened_at=opened_at,
        last_error=last_error,
    )


def _baseline_row(b: Baseline) -> tuple[Any, ...]:
    return (
        b.goal_id,
        b.sha,
        _results_json(b.results),  # results
    )


def _baseline(row: Sequence[Any]) -> Baseline:
    goal_id, sha, results = row
    return Baseline(goal_id=goal_id, sha=sha, results=_results(results))


def _event_row(e: Event) -> tuple[Any, ...]:
    """The row of an event, in the column order of the events table without its ``id``."""
    return (
        e.ts or time.time(),
        str(e.kind),
        e.goal_id,
        e.task_id,
        e.attempt_id,
        e.project_id,
        redact(e.message),
        _data_json(e.data),
    )


def _event(row: Sequence[Any]) -> Event:
    id_, ts, kind, goal_id, task_id, attempt_id, project_id, message, data = row
    return Event(
        id=id_,
        ts=ts,
        kind=_EVENT_KINDS[kind],
        goal_id=goal_id,
        task_id=task_id,
        attempt_id=attempt_id,
        project_id=project_id,
        message=message,
        data={} if data == "{}" else json.loads(data),
    )


@dataclass(frozen=True, slots=True, eq=False)
class _Kind:
    """How one record type is stored: its table, its row (a tuple in table column order) and
    its primary key, which identifies the record among those staged of its kind."""

    table: sa.Table
    to_row: Callable[[Any], tuple[Any, ...]]
    key: Callable[[Any], Any]


_KINDS: dict[type, _Kind] = {
    Project: _Kind(projects, _project_row, operator.attrgetter("id")),
    Goal: _Kind(goals, _goal_row, operator.attrgetter("id")),
    Task: _Kind(tasks, _task_row, operator.attrgetter("goal_id", "id")),
    Attempt: _Kind(attempts, _attempt_row, operator.attrgetter("id")),
    Recovery: _Kind(recoveries, _recovery_row, operator.attrgetter("id")),
    BreakerRecord: _Kind(breakers, _breaker_row, operator.attrgetter("key")),
    Baseline: _Kind(baselines, _baseline_row, operator.attrgetter("goal_id")),
}


class _Insert:
    """An insert (or upsert) of many rows. On SQLite the rows go in statements of many rows
    each: the driver binds one statement's values and then runs it without the GIL, where a
    statement per row would hand the GIL back and forth with the event loop for every row. A
    few statement sizes serve every batch, so the driver's statement cache keeps them all."""

    def __init__(self, sql: str, columns: Sequence[str], *, sqlite: bool, max_variables: int):
        self.columns = tuple(columns)
        self.sqlite = sqlite
        self.sql = sql
        self._statements: dict[int, str] = {}  # rows per statement -> its SQL, largest first
        if sqlite:
            head, values, after = sql.partition(" VALUES ")
            group, _, tail = after.partition(")")
            assert group == "(" + ", ".join("?" * len(columns)), sql
            most = max(1, min(_ROWS_PER_STATEMENT, max_variables // len(columns)))
            for size in sorted({most, most // 4, most // 16} - {0, 1}, reverse=True):
                rows = ", ".join([group + ")"] * size)
                self._statements[size] = f"{head}{values}{rows}{tail}"

    def run(self, connection: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not self.sqlite:
            named = [dict(zip(self.columns, row, strict=True)) for row in rows]
            connection.exec_driver_sql(self.sql, named)
            return
        start, total = 0, len(rows)
        for size, sql in self._statements.items():
            while total - start >= size:
                values = tuple(chain(*rows[start : start + size]))
                connection.exec_driver_sql(sql, values)
                start += size
        if start < total:  # the last few rows, one statement each
            connection.exec_driver_sql(self.sql, list(rows[start:]))


_ROWS_PER_STATEMENT = 200

# -- engine and migrations -------------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite database file at ``path``."""
    return f"sqlite:///{Path(path).expanduser().resolve()}"


_WRITE = "blitz_write"  # execution option: this connection writes (SQLite: BEGIN IMMEDIATE)


def _create_engine(url: str, busy_timeout: float) -> sa.Engine:
    try:
        backend = sa.make_url(url).get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ConfigError(f"unsupported store database {backend!r}: use SQLite or PostgreSQL")
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"cannot use store URL {url!r}: {exc}") from exc
    if backend == "sqlite":
        timeout_ms = int(busy_timeout * 1000)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control from the sqlite3 module so BEGIN can be IMMEDIATE.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL survives a killed process (not a power cut) and is much faster.
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            # A writer takes the write lock up front: a deferred transaction that reads first
            # cannot wait for the lock later and fails at once with "database is locked".
            writes = connection.get_execution_options().get(_WRITE, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def current_revision(engine: sa.Engine) -> str | None:
    """The schema revision the database is at, or None before the first migration."""
    try:
        with engine.connect() as connection:
            value = connection.execute(
                sa.text(f"SELECT version_num FROM {VERSION_TABLE}")
            ).scalar_one_or_none()
    except sa.exc.DBAPIError:  # no version table yet
        return None
    return str(value) if value is not None else None


def migrate(engine: sa.Engine) -> None:
    """Bring the database schema to the newest revision (a no-op when it is there already)."""
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "blitz.store:migrations")
    with engine.execution_options(**{_WRITE: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            # Serialize processes that migrate the same database at once (SQLite: BEGIN IMMEDIATE).
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7308604897068083828)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


# -- the store -------------------------------------------------------------------------------------


class SqlStore:
    """The :class:`~blitz.store.base.Store` on SQLAlchemy: SQLite by default, PostgreSQL by URL.

    Opening it migrates the schema. Several stores (in several processes) may share a database.
    """

    def __init__(
        self,
        url: str,
        *,
        flush_delay: float = 0.005,
        retry_delay: float = 1.0,
        busy_timeout: float = 30.0,
    ) -> None:
        """Open (and migrate) the database at ``url``.

        ``flush_delay``: seconds from the first staged write to the background flush.
        ``retry_delay``: seconds the background flusher waits after a failed flush.
        ``busy_timeout``: seconds a SQLite writer waits for another process's transaction.
        """
        self.url = url
        self.flush_delay = flush_delay
        self.retry_delay = retry_delay
        self._engine = _create_engine(url, busy_timeout)
        self._writer = self._engine.execution_options(**{_WRITE: True})
        # Flush statements are compiled once and run at the driver level with row tuples:
        # SQLAlchemy's per-row parameter processing would double the time of a large flush.
        dialect = self._engine.dialect
        is_sqlite = dialect.name == "sqlite"
        max_variables = 999  # SQLite's smallest limit; the real one is read below
        if is_sqlite:
            with self._engine.connect() as connection:
                dbapi = connection.connection.dbapi_connection
                assert isinstance(dbapi, sqlite3.Connection)
                max_variables = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        insert = sqlite.insert if is_sqlite else postgresql.insert
        self._upserts: dict[_Kind, _Insert] = {}
        for kind in _KINDS.values():
            stmt = insert(kind.table)
            changes = {c.name: stmt.excluded[c.name] for c in kind.table.c if not c.primary_key}
            upsert = stmt.on_conflict_do_update(
                index_elements=[c.name for c in kind.table.primary_key], set_=changes
            )
            self._upserts[kind] = _Insert(
                str(upsert.compile(dialect=dialect)),
                [c.name for c in kind.table.c],
                sqlite=is_sqlite,
                max_variables=max_variables,
            )
        event_columns = [c.name for c in event_log.c if c.name != "id"]
        self._insert_events = _Insert(
            str(event_log.insert().compile(dialect=dialect, column_keys=event_columns)),
            event_columns,
            sqlite=is_sqlite,
            max_variables=max_variables,
        )
        migrate(self._engine)

        self._lock = threading.Lock()  # guards the staged rows and the counters
        self._commit_lock = threading.Lock()  # one transaction at a time (flushes, deletes)
        # Staged records by kind and primary key: they become rows only when flushed, so a
        # record written several times before a flush is converted once. Events are converted
        # when written, so bad event data fails in its writer and never poisons a flush.
        self._rows: dict[tuple[_Kind, Any], Any] = {}
        self._events: list[tuple[Any, ...]] = []
        self._staged = 0  # number of write() calls so far
        self._durable = 0  # every write() up to this number is committed
        self._inflight: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    # -- writes ------------------------------------------------------------------------------------

    def write(self, *records: Record, events: Sequence[Event] = ()) -> None:
        """Stage ``records`` (upserts) and ``events`` for the next flush."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if not records and not events:
            return
        try:
            staged = [((kind := _KINDS[type(r)], kind.key(r)), r) for r in records]
        except KeyError:
            wrong = next(r for r in records if type(r) not in _KINDS)
            raise TypeError(f"the store cannot write {type(wrong).__name__}") from None
        event_rows = [_event_row(e) for e in events]
        with self._lock:
            self._rows.update(staged)
            self._events += event_rows
            self._staged += 1
        flusher = self._flusher
        if flusher is None or flusher.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop: flush_sync() or close() commits
            self._flusher = loop.create_task(self._flush_in_background())

    async def flush(self) -> None:
        """Return once everything staged before the call is committed."""
        target = self._staged
        while self._durable < target:
            inflight = self._inflight
            if inflight is None or inflight.done():
                inflight = self._inflight = asyncio.ensure_future(asyncio.to_thread(self._commit))
            # Shielded: a cancelled caller must not cancel the flush others are waiting for.
            await asyncio.shield(inflight)

    def flush_sync(self) -> None:
        """Commit everything staged, in the calling thread."""
        target = self._staged
        while self._durable < target:
            self._commit()

    async def _flush_in_background(self) -> None:
        delay = self.flush_delay
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
            except Exception:
                log.exception("store flush failed; the data stays staged and is retried")
                delay = self.retry_delay
                continue
            if self._durable >= self._staged:
                return
            delay = self.flush_delay

    def _commit(self) -> None:
        """Commit everything staged now in one transaction; on failure stage it again."""
        with self._commit_lock:
            with self._lock:
                rows, event_rows, staged = self._rows, self._events, self._staged
                self._rows, self._events = {}, []
            if rows or event_rows:
                by_kind: dict[_Kind, list[tuple[Any, ...]]] = {}
                try:
                    for (kind, _), record in rows.items():
                        by_kind.setdefault(kind, []).append(kind.to_row(record))
                    with self._writer.begin() as connection:
                        for kind, kind_rows in by_kind.items():
                            self._upserts[kind].run(connection, kind_rows)
                        if event_rows:
                            self._insert_events.run(connection, event_rows)
                except BaseException:
                    with self._lock:
                        rows.update(self._rows)  # rows staged since then are newer: they win
                        self._rows = rows
                        self._events = event_rows + self._events
                    raise
            self._durable = staged

    def delete_project(self, project_id: str) -> None:
        """Remove a project, its goals and everything of them, staged rows included. The event
        log is append-only and keeps their events: an event id is never reused, so a client
        following the log from an id never misses what comes after it."""
        goal_ids = sa.select(goals.c.id).where(goals.c.project_id == project_id)
        with self._commit_lock:
            with self._writer.begin() as connection:
                stored_goals = set(connection.scalars(goal_ids))
                for table in (tasks, attempts, recoveries, baselines, commands):
                    connection.execute(sa.delete(table).where(table.c.goal_id.in_(goal_ids)))
                connection.execute(sa.delete(goals).where(goals.c.project_id == project_id))
                connection.execute(sa.delete(projects).where(projects.c.id == project_id))
                breaker = f"project:{project_id}"
                connection.execute(sa.delete(breakers).where(breakers.c.key == breaker))
            with self._lock:
                doomed = stored_goals | {
                    record.id
                    for record in self._rows.values()
                    if isinstance(record, Goal) and record.project_id == project_id
                }
                self._rows = {
                    key: record
                    for key, record in self._rows.items()
                    if not _of_project(record, project_id, doomed)
                }

    def replace_plan(self, goal_id: str, tasks: Sequence[Task]) -> None:
        """Replace every task of the goal with ``tasks`` in one transaction, staged task rows of
        the goal included (they belong to the plan being replaced); durable when it returns."""
        ids = [t.id for t in tasks]
        strangers = sorted({t.goal_id for t in tasks} - {goal_id})
        if strangers:
            raise ValueError(f"replace_plan({goal_id!r}) got tasks of goal(s) {strangers}")
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"replace_plan({goal_id!r}) got task id(s) {twice} more than once")
        kind = _KINDS[Task]
        rows = [kind.to_row(t) for t in tasks]
        with self._commit_lock:
            with self._lock:
                dropped = {
                    key: record
                    for key, record in self._rows.items()
                    if key[0] is kind and record.goal_id == goal_id
                }
                for key in dropped:
                    del self._rows[key]
            try:
                with self._writer.begin() as connection:
                    table = kind.table  # the parameter hides the module's ``tasks`` table
                    connection.execute(sa.delete(table).where(table.c.goal_id == goal_id))
                    if rows:
                        self._upserts[kind].run(connection, rows)
            except BaseException:
                with self._lock:  # rows staged since the call are newer: they win
                    self._rows = {**dropped, **self._rows}
                raise

    def add_command(self, goal_id: str, kind: str) -> int:
        with self._writer.begin() as connection:
            result = connection.execute(
                sa.insert(commands).values(goal_id=goal_id, kind=kind, created_at=time.time())
            )
            (command_id,) = result.inserted_primary_key or (0,)
        return int(command_id)

    def take_commands(self, goal_ids: Collection[str]) -> list[Command]:
        if not goal_ids:
            return []
        stmt = (
            sa.delete(commands)
            .where(commands.c.goal_id.in_(list(goal_ids)))
            .returning(commands.c.id, commands.c.goal_id, commands.c.kind, commands.c.created_at)
        )
        with self._writer.begin() as connection:
            rows = connection.execute(stmt).all()
        return [
            Command(id=id_, goal_id=goal_id, kind=kind, created_at=created_at)
            for id_, goal_id, kind, created_at in sorted(rows)
        ]

    # -- reads -------------------------------------------------------------------------------------

    def _rows_of(self, stmt: sa.Select[Any]) -> Sequence[Sequence[Any]]:
        """The rows of ``stmt`` as the driver returns them (booleans may come back as 0 and 1).

        Reading the DBAPI cursor skips building a SQLAlchemy Row per row, a third of the time
        of loading 100,000 tasks; the converters above are written for the raw values.
        """
        with self._engine.connect() as connection:
            result = connection.execute(stmt)
            rows = result.cursor.fetchall()
            result.close()
            return rows

    def get_project(self, key: str) -> Project | None:
        rows = self._rows_of(
            sa.select(projects).where(sa.or_(projects.c.id == key, projects.c.name == key))
        )
        by_id = [row for row in rows if row[0] == key]
        return _project((by_id or rows)[0]) if rows else None

    def find_project_by_path(self, path: str) -> Project | None:
        rows = self._rows_of(sa.select(projects).where(projects.c.path == path).limit(1))
        return _project(rows[0]) if rows else None

    def list_projects(self) -> list[Project]:
        return [
            _project(row) for row in self._rows_of(sa.select(projects).order_by(projects.c.name))
        ]

    def get_goal(self, goal_id: str) -> Goal | None:
        if not goal_id:
            return None
        rows = self._rows_of(sa.select(goals).where(goals.c.id == goal_id))
        if not rows:
            # substr rather than LIKE: no wildcards to escape, and case-sensitive everywhere.
            prefix = sa.func.substr(goals.c.id, 1, len(goal_id)) == goal_id
            rows = self._rows_of(sa.select(goals).where(prefix).limit(2))
        return _goal(rows[0]) if len(rows) == 1 else None

    def list_goals(
        self, *, project_id: str | None = None, states: Collection[GoalState] | None = None
    ) -> list[Goal]:
        stmt = sa.select(goals).order_by(goals.c.created_at.desc(), goals.c.id.desc())
        if project_id is not None:
            stmt = stmt.where(goals.c.project_id == project_id)
        if states is not None:
            stmt = stmt.where(goals.c.state.in_([s.value for s in states]))
        return [_goal(row) for row in self._rows_of(stmt)]

    def load_tasks(self, goal_id: str) -> list[Task]:
        """The goal's tasks in their order within the goal (plan order, then injected)."""
        stmt = (
            sa.select(tasks)
            .where(tasks.c.goal_id == goal_id)
            .order_by(tasks.c.position, tasks.c.id)
        )
        with _collector_paused():
            return [_task(row) for row in self._rows_of(stmt)]

    def load_attempts(
        self,
        goal_id: str,
        task_id: str | None = None,
        *,
        states: Collection[AttemptState] | None = None,
    ) -> list[Attempt]:
        """The goal's attempts (or one task's; or only those in ``states``) in start order."""
        stmt = sa.select(attempts).where(attempts.c.goal_id == goal_id)
        if task_id is not None:
            stmt = stmt.where(attempts.c.task_id == task_id)
        if states is not None:
            stmt = stmt.where(attempts.c.state.in_([s.value for s in states]))
        stmt = stmt.order_by(attempts.c.started_at, attempts.c.task_id, attempts.c.number)
        return [_attempt(row) for row in self._rows_of(stmt)]

    def usage(self, goal_id: str) -> Usage:
        columns = (
            attempts.c.input_tokens,
            attempts.c.output_tokens,
            attempts.c.cached_tokens,
            attempts.c.cost_usd,
        )
        stmt = sa.select(*(sa.func.coalesce(sa.func.sum(c), 0) for c in columns)).where(
            attempts.c.goal_id == goal_id
        )
        [(tokens_in, tokens_out, cached, cost)] = self._rows_of(stmt)
        return Usage(
            input_tokens=int(tokens_in),
            output_tokens=int(tokens_out),
            cached_tokens=int(cached),
            cost_usd=float(cost),
        )

    def project_usage(self, project_id: str) -> Usage:
        of_project = sa.select(goals.c.id).where(goals.c.project_id == project_id)
        attempts_sum = sa.select(
            *(
                sa.func.coalesce(sa.func.sum(c), 0)
                for c in (
                    attempts.c.input_tokens,
                    attempts.c.output_tokens,
                    attempts.c.cached_tokens,
                    attempts.c.cost_usd,
                )
            )
        ).where(attempts.c.goal_id.in_(of_project))
        goals_sum = sa.select(
            *(
                sa.func.coalesce(sa.func.sum(c), 0)
                for c in (
                    goals.c.input_tokens,
                    goals.c.output_tokens,
                    goals.c.cached_tokens,
                    goals.c.cost_usd,
                )
            )
        ).where(goals.c.project_id == project_id)
        total = Usage()
        for stmt in (attempts_sum, goals_sum):
            [(tokens_in, tokens_out, cached, cost)] = self._rows_of(stmt)
            total += Usage(
                input_tokens=int(tokens_in),
                output_tokens=int(tokens_out),
                cached_tokens=int(cached),
                cost_usd=float(cost),
            )
        return total

    def load_recoveries(self, goal_id: str) -> list[Recovery]:
        stmt = (
            sa.select(recoveries)
            .where(recoveries.c.goal_id == goal_id)
            .order_by(recoveries.c.created_at, recoveries.c.id)
        )
        return [_recovery(row) for row in self._rows_of(stmt)]

    def load_baseline(self, goal_id: str) -> Baseline | None:
        rows = self._rows_of(sa.select(baselines).where(baselines.c.goal_id == goal_id))
        return _baseline(rows[0]) if rows else None

    def load_breakers(self) -> list[BreakerRecord]:
        return [
            _breaker(row) for row in self._rows_of(sa.select(breakers).order_by(breakers.c.key))
        ]

    def events(
        self, *, goal_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Event]:
        """Events with id > ``after``, oldest first."""
        stmt = (
            sa.select(event_log).where(event_log.c.id > after).order_by(event_log.c.id).limit(limit)
        )
        if goal_id is not None:
            stmt = stmt.where(event_log.c.goal_id == goal_id)
        return [_event(row) for row in self._rows_of(stmt)]

    # -- lifecycle ---------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Flush, stop the background flusher and release the database."""
        if self._closed:
            return
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            flusher.cancel()
            await asyncio.wait([flusher])
        await self.flush()
        self._closed = True
        self._engine.dispose()

    def close(self) -> None:
        """Flush and release the database (from synchronous code)."""
        if self._closed:
            return
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            with contextlib.suppress(RuntimeError):  # its loop is already closed
                flusher.cancel()
        self.flush_sync()
        self._closed = True
        self._engine.dispose()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that all survive.

    Each new object counts towards the next collection, and the collections that building
    100,000 tasks sets off find nothing to free yet take about a third of the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _of_project(record: Record, project_id: str, goal_ids: set[str]) -> bool:
    """Whether the staged ``record`` belongs to the project being deleted."""
    if isinstance(record, Project):
        return record.id == project_id
    if isinstance(record, Goal):
        return record.id in goal_ids
    if isinstance(record, BreakerRecord):
        return record.key == f"project:{project_id}"
    return record.goal_id in goal_ids
