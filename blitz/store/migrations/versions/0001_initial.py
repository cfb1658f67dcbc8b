"""The initial schema: projects, goals, tasks, attempts, recoveries, breakers, baselines, events
and commands.

Revision ID: 0001
Revises:

JSON columns are text written by the store (json.dumps), so both dialects treat them alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def text(name: str, *, primary_key: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=False, primary_key=primary_key)


def integer(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def real(name: str) -> sa.Column[float]:
    return sa.Column(name, sa.Float(), nullable=False)


def boolean(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "projects",
        text("id", primary_key=True),
        text("name"),
        text("path"),
        text("base_branch"),
        text("remote"),
        text("gates"),  # JSON object: build, test, typecheck, lint, timeout
        text("backend"),
        integer("max_parallel"),
        boolean("paused"),
        text("pause_reason"),
    )
    op.create_table(
        "goals",
        text("id", primary_key=True),
        text("project_id"),
        text("title"),
        text("state"),
        text("branch"),
        text("base_branch"),
        text("base_sha"),
        text("backend"),
        text("summary"),
        text("error"),
        text("pr_url"),
        real("created_at"),
        real("finished_at"),
        text("runner"),
        integer("max_parallel"),
    )
    op.create_index("ix_goals_project_id", "goals", ["project_id"])
    op.create_table(
        "tasks",
        text("goal_id", primary_key=True),
        text("id", primary_key=True),
        text("title"),
        text("instructions"),
        text("depends_on"),  # JSON array of task ids
        integer("priority"),
        text("checks"),  # JSON array of objects: kind, path, command, timeout
        text("files"),  # JSON array of paths
        text("state"),
        integer("attempts"),
        integer("crashes"),
        integer("conflicts"),
        integer("recoveries"),
        text("commit"),
        text("origin"),
        text("guidance"),
        text("root_cause"),
        text("reason"),
        boolean("allow_empty"),
    )
    op.create_table(
        "attempts",
        text("id", primary_key=True),
        text("goal_id"),
        text("task_id"),
        integer("number"),
        text("state"),
        text("backend"),
        text("worktree"),
        text("base_sha"),
        text("commit"),
        text("error"),
        text("summary"),
        text("gates"),  # JSON array of gate results
        text("diff_stat"),
        integer("input_tokens"),
        integer("output_tokens"),
        integer("cached_tokens"),
        real("cost_usd"),
        real("started_at"),
        real("finished_at"),
    )
    op.create_index("ix_attempts_goal_id_task_id", "attempts", ["goal_id", "task_id"])
    op.create_table(
        "recoveries",
        text("id", primary_key=True),
        text("goal_id"),
        text("task_id"),
        text("attempt_id"),
        text("root_cause"),
        text("action"),
        text("guidance"),
        text("new_tasks"),  # JSON array of task ids
        real("created_at"),
    )
    op.create_index("ix_recoveries_goal_id", "recoveries", ["goal_id"])
    op.create_table(
        "breakers",
        text("key", primary_key=True),
        text("state"),
        integer("failures"),
        real("opened_at"),
        text("last_error"),
    )
    op.create_table(
        "baselines",
        text("goal_id", primary_key=True),
        text("sha"),
        text("results"),  # JSON array of gate results
    )
    op.create_table(
        "events",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        real("ts"),
        text("kind"),
        text("goal_id"),
        text("task_id"),
        text("attempt_id"),
        text("project_id"),
        text("message"),
        text("data"),  # JSON object
    )
    op.create_index("ix_events_goal_id_id", "events", ["goal_id", "id"])
    op.create_table(
        "commands",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        text("goal_id"),
        text("kind"),
        real("created_at"),
    )


def downgrade() -> None:
    for index, table in (
        ("ix_events_goal_id_id", "events"),
        ("ix_recoveries_goal_id", "recoveries"),
        ("ix_attempts_goal_id_task_id", "attempts"),
        ("ix_goals_project_id", "goals"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "commands",
        "events",
        "baselines",
        "breakers",
        "recoveries",
        "attempts",
        "tasks",
        "goals",
        "projects",
    ):
        op.drop_table(table)
