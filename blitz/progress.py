"""A goal's progress, one definition for every place that shows it (the CLI's status and live
view, the API and so the dashboard): ``done`` of ``total`` tasks.

``done`` counts the tasks that succeeded: work validated and committed. ``total`` counts every
task but those ``replaced`` (recovery put new tasks in their place, which are counted instead),
so a goal that succeeded reads ``n/n`` and one that failed shows how much of it was done, not
how much of it ended (a skipped or cancelled task is not done)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from blitz.domain import Task, TaskState


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """``done`` of ``total`` tasks; ``by_state`` counts the tasks counted in ``total`` by state."""

    done: int = 0
    total: int = 0
    by_state: Mapping[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.done}/{self.total}"


def of(tasks: Iterable[Task]) -> Progress:
    """The progress of a goal whose tasks are ``tasks``."""
    counts: dict[str, int] = {}
    for task in tasks:
        if task.state is not TaskState.REPLACED:
            counts[task.state.value] = counts.get(task.state.value, 0) + 1
    return Progress(
        done=counts.get(TaskState.SUCCEEDED.value, 0),
        total=sum(counts.values()),
        by_state=counts,
    )
