"""Keep gate results by what they depend on, so no gate runs twice on the same input.

One row per (project, tree, command, timeout, set-up inputs' digest), named by the digest of
those (``blitz.gatecache.GateKey.digest``); ``result`` is the unjudged result as JSON. A new
table: nothing existing changes.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gate_results",
        sa.Column("digest", sa.Text(), nullable=False, primary_key=True),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("tree", sa.Text(), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("timeout", sa.Float(), nullable=False),
        sa.Column("env_digest", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_gate_results_project_id", "gate_results", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_gate_results_project_id", table_name="gate_results")
    op.drop_table("gate_results")
