"""The store's schema: its tables, and the migrations that bring a database to them.

The tables here are what the store reads and writes; ``migrations/versions`` holds the alembic
revisions that create them, and a test compares the two. How a record becomes a row of its
table is derived from the two in :mod:`blitz.store.rows`.
"""

from __future__ import annotations

import sqlalchemy as sa

from blitz.store.database import WRITE

VERSION_TABLE = "blitz_schema_version"
"""Alembic's revision table; named for blitz so a shared PostgreSQL database has no clash."""

HEAD_REVISION = "0011"
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
    _text("models", server_default="'[]'"),
    _text("publish_state", server_default="''"),
    _text("publish_error", server_default="''"),
    _int("publish_attempts", server_default="0"),
    _text("follows", server_default="''"),
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
    _text("labels", server_default="'[]'"),
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
leases = sa.Table(
    "leases",
    metadata,
    _text("goal_id", primary_key=True),
    _text("owner"),  # the runner id (pid@host) of the process that drives the goal; "" if free
    _int("epoch"),  # the fencing token: grows by one every time the goal changes hands
    _real("expires_at"),  # wall time; an owner that stops renewing loses the goal after it
)

gate_results = sa.Table(  # kept gate results (blitz.gatecache), named by their key's digest
    "gate_results",
    metadata,
    _text("digest", primary_key=True),
    _text("project_id"),
    _text("tree"),
    _text("command"),
    _real("timeout"),
    _text("env_digest"),
    _text("result"),
    _real("created_at"),
    sa.Index("ix_gate_results_project_id", "project_id"),
)

# Slack (blitz.store.slack): which project a channel's goals go to, which thread follows which
# goal, and the deliveries already taken (Slack retries an event it thinks was missed).
slack_channels = sa.Table(
    "slack_channels",
    metadata,
    _text("channel", primary_key=True),
    _text("project_id"),
)
slack_threads = sa.Table(
    "slack_threads",
    metadata,
    _text("goal_id", primary_key=True),
    _text("channel"),
    _text("thread_ts"),  # the message that started the goal: the thread's root
    _text("user"),
    _text("plan_ts", server_default="''"),  # the reply with the plan, once posted
    _text("progress_ts", server_default="''"),  # the progress reply edited in place
    _bool("ended", server_default=False),  # the end was posted in the thread
    _real("created_at"),
    sa.Index("ix_slack_threads_channel_thread_ts", "channel", "thread_ts"),
)
slack_seen = sa.Table(
    "slack_seen",
    metadata,
    _text("key", primary_key=True),  # an event id, or channel:ts of a message
    _real("seen_at"),
)
notifications = sa.Table(  # the outbox: a notifiable event, written in its transaction
    "notifications",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    _text("key"),  # the idempotency key every sink is sent (a receiver may see it twice)
    _real("ts"),
    _text("kind"),
    _text("goal_id"),
    _text("project_id"),
    _text("message"),
    _text("data"),
    _bool("expanded"),  # its deliveries (one per sink that wants it) are made
    sa.Index("ix_notifications_expanded", "expanded"),
)
deliveries = sa.Table(  # one notification to one sink, and how that went
    "deliveries",
    metadata,
    sa.Column("notification_id", sa.BigInteger(), nullable=False, primary_key=True),
    _text("sink", primary_key=True),
    _text("state"),  # pending | delivered | failed (given up on)
    _int("attempts"),
    _real("next_at"),
    _text("last_error"),
    _real("delivered_at"),
    sa.Index("ix_deliveries_state_next_at", "state", "next_at"),
)


# -- migrations -----------------------------------------------------------------------------------


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
    with engine.execution_options(**{WRITE: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            # Serialize processes that migrate the same database at once (SQLite: BEGIN IMMEDIATE).
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7308604897068083828)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
