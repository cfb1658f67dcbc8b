"""Slack: channels mapped to projects, the thread of each goal started from Slack, and the
deliveries already taken (Slack retries events). New tables: nothing existing changes.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_channels",
        sa.Column("channel", sa.Text(), nullable=False, primary_key=True),
        sa.Column("project_id", sa.Text(), nullable=False),
    )
    op.create_table(
        "slack_threads",
        sa.Column("goal_id", sa.Text(), nullable=False, primary_key=True),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("thread_ts", sa.Text(), nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("plan_ts", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("progress_ts", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("ended", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_slack_threads_channel_thread_ts", "slack_threads", ["channel", "thread_ts"])
    op.create_table(
        "slack_seen",
        sa.Column("key", sa.Text(), nullable=False, primary_key=True),
        sa.Column("seen_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_seen")
    op.drop_index("ix_slack_threads_channel_thread_ts", table_name="slack_threads")
    op.drop_table("slack_threads")
    op.drop_table("slack_channels")
