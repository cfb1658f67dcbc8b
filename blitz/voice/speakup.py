"""The events worth saying aloud while a voice session is open, in words: a goal finished or
failed, a plan waits for approval, a budget was exceeded.

A session follows the daemon's event hub as its other followers do (an observer, called once
per event as the hub finds it in the store): :func:`worth` picks the events on the loop at
once, and :func:`announcement` words one from the store (blocking: call it in a thread).
"""

from __future__ import annotations

from blitz import goal_summary
from blitz.domain import GoalState
from blitz.events import Event, EventKind, headline
from blitz.store.base import Store

SPOKEN = frozenset(
    {
        EventKind.GOAL_SUCCEEDED,
        EventKind.GOAL_FAILED,
        EventKind.PLAN_AWAITING_APPROVAL,
        EventKind.BUDGET_EXCEEDED,
    }
)


def worth(event: Event) -> bool:
    return event.kind in SPOKEN


def announcement(event: Event, store: Store) -> str:
    """What to say of ``event``: short, plain, with what can be done next."""
    summary = goal_summary.read(store, event.goal_id) if event.goal_id else None
    if summary is None:
        said = headline(event.message)
        return (
            f"The budget is exceeded. {said}".strip()
            if event.kind is EventKind.BUDGET_EXCEEDED
            else said
        )
    title = f"The goal {summary.title}, on {summary.project},"
    p = summary.progress
    match event.kind:
        case EventKind.GOAL_SUCCEEDED:
            pr = " The pull request is open." if summary.pr_link else ""
            return f"{title} finished: {p.done} of {p.total} tasks done.{pr}"
        case EventKind.GOAL_FAILED:
            why = (
                f" {summary.reason}."
                if summary.reason and summary.state is GoalState.FAILED
                else ""
            )
            return f"{title} failed.{why} Ask how it is going to hear more."
        case EventKind.PLAN_AWAITING_APPROVAL:
            return (
                f"{title} has a plan of {p.total} tasks waiting for approval. "
                "Say approve or reject."
            )
        case _:
            return f"{title} went over its budget. {headline(event.message)}".strip()
