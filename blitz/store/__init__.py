"""Durable state: projects, goals, tasks, attempts, recoveries, breakers, kept gate results and
the event log.

The :class:`~blitz.store.base.Store` protocol is what the engine sees; :mod:`blitz.store.sql` is
the SQLAlchemy implementation (SQLite in WAL mode by default, any SQLAlchemy URL by setting):

- :mod:`~blitz.store.schema`: the tables, and migrating a database to them (alembic revisions in
  ``blitz/store/migrations``);
- :mod:`~blitz.store.rows`: records to rows and back, derived from the record types' fields;
- :mod:`~blitz.store.database`: engines, and rows moved in bulk at the driver level;
- :mod:`~blitz.store.commit`: group commit (writes staged, then committed together);
- :mod:`~blitz.store.leases`: which process owns each goal, and the fence that refuses the writes
  of a process whose goal was taken over;
- :mod:`~blitz.store.gate_results`: gate results kept by what they depend on, shared by every
  process on the database (:mod:`blitz.gatecache`);
- :mod:`~blitz.store.goal_search`: finding goals for a list (project, states, words), a page at
  a time;
- :mod:`~blitz.store.sql`: the store itself, its writes and its queries.

Invariants: every record written together with its events lands in one transaction; events are
append-only and their ids strictly increase; nothing secret is stored (every string of every
record and event is redacted where :mod:`~blitz.store.rows` makes its row); nothing of a goal is
written by a store that lost its lease.
"""
