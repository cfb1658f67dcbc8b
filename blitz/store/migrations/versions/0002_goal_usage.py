"""Goals record the usage of their planning and recovery model calls (attempts carry their own);
tasks record their position in the goal (plan order, then injected), which breaks priority ties.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("input_tokens", sa.Integer(), "0"),
    ("output_tokens", sa.Integer(), "0"),
    ("cached_tokens", sa.Integer(), "0"),
    ("cost_usd", sa.Float(), "0"),
)


def upgrade() -> None:
    with op.batch_alter_table("goals") as batch:
        for name, type_, default in COLUMNS:
            batch.add_column(
                sa.Column(name, type_, nullable=False, server_default=sa.text(default))
            )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(
            sa.Column("position", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("position")
    with op.batch_alter_table("goals") as batch:
        for name, _, _ in reversed(COLUMNS):
            batch.drop_column(name)
