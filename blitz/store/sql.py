"""The SQL store: SQLAlchemy Core on SQLite (WAL) or PostgreSQL, with group commit.

The store writes through :class:`~blitz.store.commit.GroupCommit` (records and events staged,
then committed together) and reads with the row decoders of :mod:`blitz.store.rows`. Every
string of every record and event is redacted on the way in, where :mod:`blitz.store.rows` makes
its row.
The tables and migrations are in :mod:`blitz.store.schema`, the driver-level work in
:mod:`blitz.store.database`; the names they had here are imported back for callers.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from blitz.domain import (
    Attempt,
    AttemptState,
    Baseline,
    BreakerRecord,
    Command,
    Goal,
    GoalState,
    Project,
    Recovery,
    Task,
    Usage,
)
from blitz.events import Event
from blitz.store import goal_search
from blitz.store.base import GoalPage, GoalQuery, Record
from blitz.store.commit import GroupCommit, StagedKey
from blitz.store.database import (
    WRITE,
    BulkInsert,
    create_engine,
    fetch_rows,
    max_variables,
    sqlite_url,
)
from blitz.store.gate_results import StoredGateResults
from blitz.store.leases import Lease, LeaseBook
from blitz.store.outbox import Outbox
from blitz.store.rows import (
    ATTEMPTS,
    BASELINES,
    BREAKERS,
    COMMANDS,
    EVENTS,
    GOALS,
    PROJECTS,
    RECORDS,
    RECOVERIES,
    TASKS,
    collector_paused,
)
from blitz.store.schema import (
    HEAD_REVISION,
    TABLES,
    VERSION_TABLE,
    attempts,
    baselines,
    breakers,
    commands,
    current_revision,
    event_log,
    gate_results,
    goals,
    leases,
    metadata,
    migrate,
    projects,
    recoveries,
    slack_channels,
    tasks,
)
from blitz.store.slack import StoredSlack

__all__ = [
    "HEAD_REVISION",
    "VERSION_TABLE",
    "SqlStore",
    "current_revision",
    "metadata",
    "migrate",
    "sqlite_url",
]

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
        self._engine = create_engine(url, busy_timeout)
        writer = self._engine.execution_options(**{WRITE: True})
        # Flush statements are compiled once and run at the driver level with row tuples:
        # SQLAlchemy's per-row parameter processing would double the time of a large flush.
        limit = max_variables(self._engine)
        self._upserts = {
            codec: BulkInsert(
                self._engine,
                TABLES[codec.table.name],
                codec.columns,
                upsert=True,
                max_variables=limit,
            )
            for codec in RECORDS.values()
        }
        insert_events = BulkInsert(
            self._engine, event_log, EVENTS.columns, upsert=False, max_variables=limit
        )
        migrate(self._engine)
        self._leases = LeaseBook(self._engine, writer)
        self.gate_results = StoredGateResults(self._engine, writer, max_variables=limit)
        """Kept gate results (:class:`~blitz.gatecache.GateCache`), written at once."""
        self.slack = StoredSlack(self._engine, writer)
        """Slack's channels, threads and deliveries (:mod:`blitz.store.slack`), written at once."""
        self.outbox = Outbox(self._engine, writer)
        """The notification outbox, filled in the transactions that write notifiable events."""
        self._batch = GroupCommit(
            writer,
            self._upserts,
            insert_events,
            flush_delay=flush_delay,
            retry_delay=retry_delay,
            leases=self._leases,
            outbox=self.outbox,
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    # -- writes ------------------------------------------------------------------------------------

    def write(self, *records: Record, events: Sequence[Event] = ()) -> None:
        """Stage ``records`` (upserts) and ``events`` for the next flush."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if records or events:
            self._batch.write(records, events)

    async def flush(self) -> None:
        """Return once everything staged before the call is committed."""
        await self._batch.flush()

    def flush_sync(self) -> None:
        """Commit everything staged, in the calling thread."""
        self._batch.flush_sync()

    def delete_project(self, project_id: str) -> None:
        """Remove a project, its goals and everything of them, staged rows included. The event
        log is append-only and keeps their events: an event id is never reused, so a client
        following the log from an id never misses what comes after it."""
        goal_ids = sa.select(goals.c.id).where(goals.c.project_id == project_id)
        with self._batch.commit_lock:
            with self._batch.writer.begin() as connection:
                stored_goals = set(connection.scalars(goal_ids))
                for table in (tasks, attempts, recoveries, baselines, commands, leases):
                    connection.execute(sa.delete(table).where(table.c.goal_id.in_(goal_ids)))
                connection.execute(sa.delete(goals).where(goals.c.project_id == project_id))
                connection.execute(sa.delete(projects).where(projects.c.id == project_id))
                breaker = f"project:{project_id}"
                connection.execute(sa.delete(breakers).where(breakers.c.key == breaker))
                connection.execute(
                    sa.delete(gate_results).where(gate_results.c.project_id == project_id)
                )
                connection.execute(  # its channels send no more goals to it
                    sa.delete(slack_channels).where(slack_channels.c.project_id == project_id)
                )

            def of_project(staged: Mapping[StagedKey, Any]) -> list[StagedKey]:
                doomed = stored_goals | {
                    record.id
                    for record in staged.values()
                    if isinstance(record, Goal) and record.project_id == project_id
                }
                return [
                    key for key, record in staged.items() if _of_project(record, project_id, doomed)
                ]

            self._batch.unstage(of_project)
        self._leases.forget(stored_goals)

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
        codec = RECORDS[Task]
        rows = [codec.to_row(t) for t in tasks]

        def of_goal(staged: Mapping[StagedKey, Any]) -> list[StagedKey]:
            return [
                key
                for key, record in staged.items()
                if key[0] is codec and record.goal_id == goal_id
            ]

        with self._batch.commit_lock:
            dropped = self._batch.unstage(of_goal)
            try:
                with self._batch.writer.begin() as connection:
                    table = TABLES[codec.table.name]  # the parameter hides the ``tasks`` table
                    connection.execute(sa.delete(table).where(table.c.goal_id == goal_id))
                    if rows:
                        self._upserts[codec].run(connection, rows)
            except BaseException:
                self._batch.restage(dropped)  # rows staged since the call are newer: they win
                raise

    def add_command(self, goal_id: str, kind: str) -> int:
        command = Command(id=0, goal_id=goal_id, kind=kind, created_at=time.time())
        row = dict(zip(COMMANDS.columns, COMMANDS.to_row(command), strict=True))
        with self._batch.writer.begin() as connection:
            result = connection.execute(sa.insert(commands).values(**row))
            (command_id,) = result.inserted_primary_key or (0,)
        return int(command_id)

    def take_commands(self, goal_ids: Collection[str]) -> list[Command]:
        if not goal_ids:
            return []
        stmt = (
            sa.delete(commands).where(commands.c.goal_id.in_(list(goal_ids))).returning(*commands.c)
        )
        with self._batch.writer.begin() as connection:
            rows = connection.execute(stmt).all()
        return [COMMANDS.from_row(row) for row in sorted(rows)]

    # -- leases ------------------------------------------------------------------------------------

    def claim(self, goal_id: str, owner: str, ttl: float) -> Lease:
        return self._leases.claim(goal_id, owner, ttl)

    def renew(self, owner: str, ttl: float) -> set[str]:
        return self._leases.renew(owner, ttl)

    def release(self, goal_id: str) -> None:
        self._leases.release(goal_id)

    def lease(self, goal_id: str) -> Lease | None:
        return self._leases.get(goal_id)

    def held(self) -> set[str]:
        return set(self._leases.held)

    def lost(self) -> frozenset[str]:
        return self._leases.lost

    # -- reads -------------------------------------------------------------------------------------

    def _rows_of(self, stmt: sa.Select[Any]) -> Sequence[Sequence[Any]]:
        return fetch_rows(self._engine, stmt)

    def get_project(self, key: str) -> Project | None:
        rows = self._rows_of(
            sa.select(projects).where(sa.or_(projects.c.id == key, projects.c.name == key))
        )
        by_id = [row for row in rows if row[0] == key]
        return PROJECTS.from_row((by_id or rows)[0]) if rows else None

    def find_project_by_path(self, path: str) -> Project | None:
        rows = self._rows_of(sa.select(projects).where(projects.c.path == path).limit(1))
        return PROJECTS.from_row(rows[0]) if rows else None

    def list_projects(self) -> list[Project]:
        return [
            PROJECTS.from_row(row)
            for row in self._rows_of(sa.select(projects).order_by(projects.c.name))
        ]

    def get_goal(self, goal_id: str) -> Goal | None:
        if not goal_id:
            return None
        rows = self._rows_of(sa.select(goals).where(goals.c.id == goal_id))
        if not rows:
            # substr rather than LIKE: no wildcards to escape, and case-sensitive everywhere.
            prefix = sa.func.substr(goals.c.id, 1, len(goal_id)) == goal_id
            rows = self._rows_of(sa.select(goals).where(prefix).limit(2))
        return GOALS.from_row(rows[0]) if len(rows) == 1 else None

    def list_goals(
        self, *, project_id: str | None = None, states: Collection[GoalState] | None = None
    ) -> list[Goal]:
        stmt = sa.select(goals).order_by(goals.c.created_at.desc(), goals.c.id.desc())
        if project_id is not None:
            stmt = stmt.where(goals.c.project_id == project_id)
        if states is not None:
            stmt = stmt.where(goals.c.state.in_([s.value for s in states]))
        return [GOALS.from_row(row) for row in self._rows_of(stmt)]

    def find_goals(self, query: GoalQuery) -> GoalPage:
        found = [GOALS.from_row(row) for row in self._rows_of(goal_search.page(query))]
        [(total,)] = self._rows_of(goal_search.count(query))
        return GoalPage(found, int(total))

    def load_tasks(self, goal_id: str) -> list[Task]:
        """The goal's tasks in their order within the goal (plan order, then injected)."""
        stmt = (
            sa.select(tasks)
            .where(tasks.c.goal_id == goal_id)
            .order_by(tasks.c.position, tasks.c.id)
        )
        with collector_paused():
            return [TASKS.from_row(row) for row in self._rows_of(stmt)]

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
        return [ATTEMPTS.from_row(row) for row in self._rows_of(stmt)]

    def usage(self, goal_id: str) -> Usage:
        return self._usage_of(attempts, attempts.c.goal_id == goal_id)

    def project_usage(self, project_id: str) -> Usage:
        of_project = sa.select(goals.c.id).where(goals.c.project_id == project_id)
        return self._usage_of(attempts, attempts.c.goal_id.in_(of_project)) + self._usage_of(
            goals, goals.c.project_id == project_id
        )

    def _usage_of(self, table: sa.Table, where: sa.ColumnElement[bool]) -> Usage:
        """The summed usage columns of the rows of ``table`` that match ``where``."""
        columns = (table.c.input_tokens, table.c.output_tokens, table.c.cached_tokens)
        sums = [sa.func.coalesce(sa.func.sum(c), 0) for c in (*columns, table.c.cost_usd)]
        [(tokens_in, tokens_out, cached, cost)] = self._rows_of(sa.select(*sums).where(where))
        return Usage(
            input_tokens=int(tokens_in),
            output_tokens=int(tokens_out),
            cached_tokens=int(cached),
            cost_usd=float(cost),
        )

    def load_recoveries(self, goal_id: str) -> list[Recovery]:
        stmt = (
            sa.select(recoveries)
            .where(recoveries.c.goal_id == goal_id)
            .order_by(recoveries.c.created_at, recoveries.c.id)
        )
        return [RECOVERIES.from_row(row) for row in self._rows_of(stmt)]

    def load_baseline(self, goal_id: str) -> Baseline | None:
        rows = self._rows_of(sa.select(baselines).where(baselines.c.goal_id == goal_id))
        return BASELINES.from_row(rows[0]) if rows else None

    def load_breakers(self) -> list[BreakerRecord]:
        return [
            BREAKERS.from_row(row)
            for row in self._rows_of(sa.select(breakers).order_by(breakers.c.key))
        ]

    def events(
        self, *, goal_id: str | None = None, after: int = 0, limit: int = 1000, newest: bool = False
    ) -> list[Event]:
        """Events with id > ``after``, oldest first: the first ``limit``, or the last."""
        order = event_log.c.id.desc() if newest else event_log.c.id
        stmt = sa.select(event_log).where(event_log.c.id > after).order_by(order).limit(limit)
        if goal_id is not None:
            stmt = stmt.where(event_log.c.goal_id == goal_id)
        found = [EVENTS.from_row(row) for row in self._rows_of(stmt)]
        return found[::-1] if newest else found

    # -- lifecycle ---------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Flush, stop the background flusher and release the database."""
        if self._closed:
            return
        await self._batch.stop()
        await self.flush()
        self._closed = True
        self._engine.dispose()

    def close(self) -> None:
        """Flush and release the database (from synchronous code)."""
        if self._closed:
            return
        self._batch.stop_sync()
        self.flush_sync()
        self._closed = True
        self._engine.dispose()


def _of_project(record: Record, project_id: str, goal_ids: set[str]) -> bool:
    """Whether the staged ``record`` belongs to the project being deleted."""
    if isinstance(record, Project):
        return record.id == project_id
    if isinstance(record, Goal):
        return record.id in goal_ids
    if isinstance(record, BreakerRecord):
        return record.key == f"project:{project_id}"
    return record.goal_id in goal_ids
