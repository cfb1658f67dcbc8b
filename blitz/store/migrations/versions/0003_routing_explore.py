"""Per-task routing, best-of-N exploration and plan approval.

Projects gain a fallback backend, plan approval and a default agent model; goals their
exploration settings (attempts per task, mode, a portfolio of backend specs) and an agent model;
tasks the backend, model and attempts their plan gave them; attempts the model they ran with and,
as candidates of an exploration, their number, the git ref keeping their commit, whether they were
selected and the verdict. Every column has a server default, so existing rows read back as before.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT, INTEGER, BOOLEAN = sa.Text(), sa.Integer(), sa.Boolean()
EMPTY, ZERO = sa.text("''"), sa.text("0")
FALSE = sa.false()  # spelled as the dialect wants it: 0 on SQLite, false on PostgreSQL

Default = sa.TextClause | sa.ColumnElement[Any]
COLUMNS: dict[str, tuple[tuple[str, sa.types.TypeEngine[Any], Default], ...]] = {
    "projects": (
        ("fallback_backend", TEXT, EMPTY),
        ("require_plan_approval", BOOLEAN, FALSE),
        ("model", TEXT, EMPTY),
    ),
    "goals": (
        ("explore", INTEGER, ZERO),
        ("explore_mode", TEXT, sa.text("'all'")),
        ("portfolio", TEXT, sa.text("'[]'")),  # JSON array of backend specs
        ("model", TEXT, EMPTY),
    ),
    "tasks": (
        ("backend", TEXT, EMPTY),
        ("model", TEXT, EMPTY),
        ("explore", INTEGER, ZERO),
    ),
    "attempts": (
        ("model", TEXT, EMPTY),
        ("candidate", INTEGER, ZERO),
        ("ref", TEXT, EMPTY),
        ("selected", BOOLEAN, FALSE),
        ("verdict", TEXT, EMPTY),
    ),
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, type_, default in columns:
                batch.add_column(sa.Column(name, type_, nullable=False, server_default=default))


def downgrade() -> None:
    for table, columns in reversed(COLUMNS.items()):
        with op.batch_alter_table(table) as batch:
            for name, _, _ in reversed(columns):
                batch.drop_column(name)
