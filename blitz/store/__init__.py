"""Durable state: projects, goals, tasks, attempts, recoveries, breakers and the event log.

The :class:`~blitz.store.base.Store` protocol is what the engine sees; :mod:`blitz.store.sql` is
the SQLAlchemy implementation (SQLite in WAL mode by default, any SQLAlchemy URL by setting), with
alembic migrations in ``blitz/store/migrations``.

Invariants: every record written together with its events lands in one transaction; events are
append-only and their ids strictly increase; nothing secret is stored (event text is redacted).
"""
