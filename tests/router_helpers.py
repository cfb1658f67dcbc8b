"""What the router's tests share: a short breaker policy, work items, and an open breaker."""

from __future__ import annotations

from blitz.breaker import BreakerBoard, BreakerPolicy
from blitz.domain import BreakerState
from blitz.router import WorkItem

POLICY = BreakerPolicy(threshold=2, cooldown=30.0)


def item(
    task: str, project: str = "p", goal: str = "g", priority: int = 0, backend: str = ""
) -> WorkItem:
    return WorkItem(
        goal_id=goal, task_id=task, project_id=project, priority=priority, backend=backend
    )


def ids(items: list[WorkItem]) -> list[str]:
    return [i.task_id for i in items]


def open_breaker(board: BreakerBoard, key: str) -> None:
    for _ in range(POLICY.threshold):
        board.get(key).record_failure("down")
    assert board.get(key).state is BreakerState.OPEN
