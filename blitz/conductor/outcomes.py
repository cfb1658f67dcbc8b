"""What a goal's tasks add up to once they are over: which did not succeed through no choice of
a person (the goal fails), and whether nothing was done at all; and the reasons a task is
skipped with, which say why.
"""

from __future__ import annotations

from blitz.domain import Task, TaskState

BLOCKED = "blocked: "
"""Reason prefix of tasks skipped because a dependency can never finish."""

OVER_BUDGET = "budget reached: "
"""Reason prefix of tasks skipped because the goal's budget was spent."""

SKIPPED_BY_RECOVERY = "skipped by recovery: "
"""Reason prefix of tasks a recovery plan skipped."""


def failed_or_held(tasks: dict[str, Task]) -> list[Task]:
    """Tasks that did not succeed through no choice of a person: failed, blocked, over budget."""
    return [
        t
        for t in tasks.values()
        if t.state is TaskState.FAILED or t.reason.startswith((BLOCKED, OVER_BUDGET))
    ]


def nothing_done(tasks: dict[str, Task]) -> str:
    """Why a goal whose tasks are over did nothing ("": it did): no task succeeded, and a
    recovery skipped one (a small model's recovery skipped a goal's only task; the goal
    "succeeded" with nothing on its branch). A person's skips are their choice."""
    if any(t.state is TaskState.SUCCEEDED for t in tasks.values()):
        return ""
    skipped = [t for t in tasks.values() if t.reason.startswith(SKIPPED_BY_RECOVERY)]
    if not skipped:
        return ""
    return f"nothing was done: no task succeeded ({skipped[0].id} was {skipped[0].reason})"
