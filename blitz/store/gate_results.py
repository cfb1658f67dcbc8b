"""Kept gate results in the store (table ``gate_results``): the durable
:class:`~blitz.gatecache.GateCache`, shared by every process on the database.

A result is written at once in a transaction of its own, not staged with the group commit: it
belongs to no goal (a baseline is reused by every goal that starts from the same commit), so no
lease fences it, and another process may want it a moment later. Its text is redacted on the
way in like every row's (:mod:`blitz.store.rows`).
"""

from __future__ import annotations

import sqlalchemy as sa

from blitz.domain import GateResult
from blitz.gatecache import CachedGate, GateKey, keepable
from blitz.store.database import BulkInsert, fetch_rows
from blitz.store.rows import GATE_RESULTS
from blitz.store.schema import gate_results


class StoredGateResults:
    """The :class:`~blitz.gatecache.GateCache` of one store."""

    def __init__(self, engine: sa.Engine, writer: sa.Engine, *, max_variables: int) -> None:
        self._engine = engine
        self._writer = writer
        self._upsert = BulkInsert(
            writer, gate_results, GATE_RESULTS.columns, upsert=True, max_variables=max_variables
        )

    def get(self, key: GateKey) -> GateResult | None:
        stmt = sa.select(*gate_results.c).where(gate_results.c.digest == key.digest)
        for row in fetch_rows(self._engine, stmt):
            kept = GATE_RESULTS.from_row(row)
            if kept.key == key:  # not a digest collision
                return kept.result
        return None

    def put(self, key: GateKey, result: GateResult) -> None:
        """Keep ``result`` for ``key`` (a newer result replaces an older one); one that says
        nothing about the tree (timed out, not run) is not kept."""
        if not keepable(result):
            return
        row = GATE_RESULTS.to_row(CachedGate(digest=key.digest, key=key, result=result))
        with self._writer.begin() as connection:
            self._upsert.run(connection, [row])

    def forget(self, project_id: str) -> None:
        """Drop every result kept for the project."""
        with self._writer.begin() as connection:
            connection.execute(
                sa.delete(gate_results).where(gate_results.c.project_id == project_id)
            )
