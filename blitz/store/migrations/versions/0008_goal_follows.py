"""A goal may continue an earlier goal: ``follows`` is that goal's id ("" for none).

A follow-up goal works on the earlier goal's branch and updates its pull request; the column
keeps the link so that a resumed follow-up still knows what it continues. The server default
makes existing goals follow nothing.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("goals") as batch:
        batch.add_column(
            sa.Column("follows", sa.Text(), nullable=False, server_default=sa.text("''"))
        )


def downgrade() -> None:
    with op.batch_alter_table("goals") as batch:
        batch.drop_column("follows")
