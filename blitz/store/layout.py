"""The store's tables as plain data: names, columns in order, primary keys, defaults, indexes.

This is the one description of the tables. :mod:`blitz.store.schema` builds SQLAlchemy's tables
from it and :mod:`blitz.store.rows` derives each record's row from it; neither needs the other,
so the read path of ``blitz status`` and ``blitz events`` (:mod:`blitz.store.reader`) decodes
rows with the store's own codecs without importing SQLAlchemy (most of a second under load).
Keep in step with ``migrations/versions``: a test compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VERSION_TABLE = "blitz_schema_version"
"""Alembic's revision table; named for blitz so a shared PostgreSQL database has no clash."""

HEAD_REVISION = "0011"
"""The newest migration (a test keeps it equal to alembic's head). A database already there is
opened without importing alembic, which would add a third of a second to every command."""

Kind = Literal["text", "int", "real", "bool", "serial", "bigint"]
"""A column's type; every column is NOT NULL. ``serial``: an integer the database assigns
(autoincrement; BIGINT on PostgreSQL)."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its name, type, whether it is (part of) the primary key, and its server
    default (SQL text, or a boolean spelled as the dialect spells it; None: no default)."""

    name: str
    kind: Kind
    primary_key: bool = False
    default: str | bool | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """A table: its columns in order, and the columns of its one index (named
    ``ix_<table>_<columns>``), if any."""

    name: str
    columns: tuple[Column, ...]
    index: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def primary_key(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.primary_key)

    @property
    def autoincrement(self) -> str | None:
        """The column the database numbers, if any."""
        return next((c.name for c in self.columns if c.kind == "serial"), None)

    @property
    def index_name(self) -> str:
        return f"ix_{self.name}_{'_'.join(self.index)}"


def table(name: str, *columns: Column, index: tuple[str, ...] = ()) -> Table:
    return Table(name, columns, index)


PROJECTS = table(
    "projects",
    Column("id", "text", primary_key=True),
    Column("name", "text"),
    Column("path", "text"),
    Column("base_branch", "text"),
    Column("remote", "text"),
    Column("gates", "text"),
    Column("backend", "text"),
    Column("max_parallel", "int"),
    Column("paused", "bool"),
    Column("pause_reason", "text"),
    Column("fallback_backend", "text", default="''"),
    Column("require_plan_approval", "bool", default=False),
    Column("model", "text", default="''"),
)
GOALS = table(
    "goals",
    Column("id", "text", primary_key=True),
    Column("project_id", "text"),
    Column("title", "text"),
    Column("state", "text"),
    Column("branch", "text"),
    Column("base_branch", "text"),
    Column("base_sha", "text"),
    Column("backend", "text"),
    Column("summary", "text"),
    Column("error", "text"),
    Column("pr_url", "text"),
    Column("created_at", "real"),
    Column("finished_at", "real"),
    Column("runner", "text"),
    Column("max_parallel", "int"),
    Column("input_tokens", "int", default="0"),
    Column("output_tokens", "int", default="0"),
    Column("cached_tokens", "int", default="0"),
    Column("cost_usd", "real", default="0"),
    Column("explore", "int", default="0"),
    Column("explore_mode", "text", default="'all'"),
    Column("portfolio", "text", default="'[]'"),
    Column("model", "text", default="''"),
    Column("models", "text", default="'[]'"),
    Column("publish_state", "text", default="''"),
    Column("publish_error", "text", default="''"),
    Column("publish_attempts", "int", default="0"),
    Column("follows", "text", default="''"),
    index=("project_id",),
)
TASKS = table(
    "tasks",
    Column("goal_id", "text", primary_key=True),
    Column("id", "text", primary_key=True),
    Column("title", "text"),
    Column("instructions", "text"),
    Column("depends_on", "text"),
    Column("priority", "int"),
    Column("checks", "text"),
    Column("files", "text"),
    Column("state", "text"),
    Column("attempts", "int"),
    Column("crashes", "int"),
    Column("conflicts", "int"),
    Column("recoveries", "int"),
    Column("commit", "text"),
    Column("origin", "text"),
    Column("guidance", "text"),
    Column("root_cause", "text"),
    Column("reason", "text"),
    Column("allow_empty", "bool"),
    Column("position", "int", default="0"),
    Column("backend", "text", default="''"),
    Column("model", "text", default="''"),
    Column("explore", "int", default="0"),
    Column("labels", "text", default="'[]'"),
)
ATTEMPTS = table(
    "attempts",
    Column("id", "text", primary_key=True),
    Column("goal_id", "text"),
    Column("task_id", "text"),
    Column("number", "int"),
    Column("state", "text"),
    Column("backend", "text"),
    Column("worktree", "text"),
    Column("base_sha", "text"),
    Column("commit", "text"),
    Column("error", "text"),
    Column("summary", "text"),
    Column("gates", "text"),
    Column("diff_stat", "text"),
    Column("input_tokens", "int"),
    Column("output_tokens", "int"),
    Column("cached_tokens", "int"),
    Column("cost_usd", "real"),
    Column("started_at", "real"),
    Column("finished_at", "real"),
    Column("model", "text", default="''"),
    Column("candidate", "int", default="0"),
    Column("ref", "text", default="''"),
    Column("selected", "bool", default=False),
    Column("verdict", "text", default="''"),
    Column("diff", "text", default="''"),
    index=(
        "goal_id",
        "task_id",
    ),
)
RECOVERIES = table(
    "recoveries",
    Column("id", "text", primary_key=True),
    Column("goal_id", "text"),
    Column("task_id", "text"),
    Column("attempt_id", "text"),
    Column("root_cause", "text"),
    Column("action", "text"),
    Column("guidance", "text"),
    Column("new_tasks", "text"),
    Column("created_at", "real"),
    index=("goal_id",),
)
BREAKERS = table(
    "breakers",
    Column("key", "text", primary_key=True),
    Column("state", "text"),
    Column("failures", "int"),
    Column("opened_at", "real"),
    Column("last_error", "text"),
)
BASELINES = table(
    "baselines",
    Column("goal_id", "text", primary_key=True),
    Column("sha", "text"),
    Column("results", "text"),
)
EVENT_LOG = table(
    "events",
    Column("id", "serial", primary_key=True),
    Column("ts", "real"),
    Column("kind", "text"),
    Column("goal_id", "text"),
    Column("task_id", "text"),
    Column("attempt_id", "text"),
    Column("project_id", "text"),
    Column("message", "text"),
    Column("data", "text"),
    index=(
        "goal_id",
        "id",
    ),
)
COMMANDS = table(
    "commands",
    Column("id", "serial", primary_key=True),
    Column("goal_id", "text"),
    Column("kind", "text"),
    Column("created_at", "real"),
)
LEASES = table(
    "leases",
    Column("goal_id", "text", primary_key=True),
    Column(
        "owner", "text"
    ),  # the runner id (pid@host) of the process that drives the goal; "" if free
    Column("epoch", "int"),  # the fencing token: grows by one every time the goal changes hands
    Column("expires_at", "real"),  # wall time; an owner that stops renewing loses the goal after it
)

GATE_RESULTS = table(  # kept gate results (blitz.gatecache), named by their key's digest
    "gate_results",
    Column("digest", "text", primary_key=True),
    Column("project_id", "text"),
    Column("tree", "text"),
    Column("command", "text"),
    Column("timeout", "real"),
    Column("env_digest", "text"),
    Column("result", "text"),
    Column("created_at", "real"),
    index=("project_id",),
)

# Slack (blitz.store.slack): which project a channel's goals go to, which thread follows which
# goal, and the deliveries already taken (Slack retries an event it thinks was missed).
SLACK_CHANNELS = table(
    "slack_channels",
    Column("channel", "text", primary_key=True),
    Column("project_id", "text"),
)
SLACK_THREADS = table(
    "slack_threads",
    Column("goal_id", "text", primary_key=True),
    Column("channel", "text"),
    Column("thread_ts", "text"),  # the message that started the goal: the thread's root
    Column("user", "text"),
    Column("plan_ts", "text", default="''"),  # the reply with the plan, once posted
    Column("progress_ts", "text", default="''"),  # the progress reply edited in place
    Column("ended", "bool", default=False),  # the end was posted in the thread
    Column("created_at", "real"),
    index=(
        "channel",
        "thread_ts",
    ),
)
SLACK_SEEN = table(
    "slack_seen",
    Column("key", "text", primary_key=True),  # an event id, or channel:ts of a message
    Column("seen_at", "real"),
)
NOTIFICATIONS = table(  # the outbox: a notifiable event, written in its transaction
    "notifications",
    Column("id", "serial", primary_key=True),
    Column("key", "text"),  # the idempotency key every sink is sent (a receiver may see it twice)
    Column("ts", "real"),
    Column("kind", "text"),
    Column("goal_id", "text"),
    Column("project_id", "text"),
    Column("message", "text"),
    Column("data", "text"),
    Column("expanded", "bool"),  # its deliveries (one per sink that wants it) are made
    index=("expanded",),
)
DELIVERIES = table(  # one notification to one sink, and how that went
    "deliveries",
    Column("notification_id", "bigint", primary_key=True),
    Column("sink", "text", primary_key=True),
    Column("state", "text"),  # pending | delivered | failed (given up on)
    Column("attempts", "int"),
    Column("next_at", "real"),
    Column("last_error", "text"),
    Column("delivered_at", "real"),
    index=(
        "state",
        "next_at",
    ),
)


TABLES: tuple[Table, ...] = (
    PROJECTS,
    GOALS,
    TASKS,
    ATTEMPTS,
    RECOVERIES,
    BREAKERS,
    BASELINES,
    EVENT_LOG,
    COMMANDS,
    LEASES,
    GATE_RESULTS,
    SLACK_CHANNELS,
    SLACK_THREADS,
    SLACK_SEEN,
    NOTIFICATIONS,
    DELIVERIES,
)
"""Every table, in the order they are created."""
