"""Alembic environment for the blitz store.

:func:`blitz.store.schema.migrate` runs this with an open connection in ``config.attributes``
(inside the caller's transaction); with only a ``sqlalchemy.url`` option it opens its own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from blitz.store.schema import VERSION_TABLE, metadata

config = context.config


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=metadata, version_table=VERSION_TABLE
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set the sqlalchemy.url option or pass a connection")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as own:
        context.configure(connection=own, target_metadata=metadata, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
