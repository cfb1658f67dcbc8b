"""Finding goals for a list a person reads: a :class:`~blitz.store.base.GoalQuery` (project,
states, words of the title, id or branch) made into SQL, newest first, one page at a time, with
the number of goals that match, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from blitz.store.base import GoalQuery
from blitz.store.schema import goals

SEARCHED = (goals.c.title, goals.c.id, goals.c.branch)
"""The columns a word of the query's text may be found in."""


def conditions(query: GoalQuery) -> list[sa.ColumnElement[bool]]:
    """What a goal must satisfy to be found: every word of the text in one of :data:`SEARCHED`
    (case-insensitive, ``%`` and ``_`` taken literally), and the project and states asked for."""
    found: list[sa.ColumnElement[bool]] = []
    if query.project_id is not None:
        found.append(goals.c.project_id == query.project_id)
    if query.states is not None:
        found.append(goals.c.state.in_(sorted(s.value for s in query.states)))
    for word in query.text.split():
        found.append(sa.or_(*(column.icontains(word, autoescape=True) for column in SEARCHED)))
    return found


def page(query: GoalQuery) -> sa.Select[Any]:
    """The goals of the query's page, newest first (ties: the larger id first)."""
    return (
        sa.select(goals)
        .where(*conditions(query))
        .order_by(goals.c.created_at.desc(), goals.c.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    )


def count(query: GoalQuery) -> sa.Select[Any]:
    """How many goals the query finds, on every page."""
    return sa.select(sa.func.count()).select_from(goals).where(*conditions(query))
