"""Goals remember how they were started and how far their publishing got.

Goals gain the models they were started with (a JSON array of "role=provider:model", so that
``blitz resume`` runs them on the same models) and their publishing state: "" (not published
yet), "pending" (every task is done but the push or the pull request failed: to be retried) or
"published", with the last error and the number of tries. Every column has a server default, so
existing rows read back as before.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("models", sa.Text(), sa.text("'[]'")),
    ("publish_state", sa.Text(), sa.text("''")),
    ("publish_error", sa.Text(), sa.text("''")),
    ("publish_attempts", sa.Integer(), sa.text("0")),
)


def upgrade() -> None:
    with op.batch_alter_table("goals") as batch:
        for name, type_, default in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=False, server_default=default))


def downgrade() -> None:
    with op.batch_alter_table("goals") as batch:
        for name, _, _ in reversed(COLUMNS):
            batch.drop_column(name)
