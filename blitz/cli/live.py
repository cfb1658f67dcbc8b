"""The live Rich view of running goals: every task's state, attempts and running time.

What it shows is what ``blitz status`` and the dashboard show: progress is
:func:`blitz.progress.of`, and a goal that has ended shows its tasks as the store has them (its
last frame is the goal's end, not an empty table). While the base branch's gates run, the goal
says so in place of "planning"."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from blitz import background, progress
from blitz.cli.common import out, styled
from blitz.conductor import Engine
from blitz.domain import GOAL_DONE, Goal, GoalState, Task, TaskState
from blitz.events import headline

SHOWN = 60
"""Tasks shown per goal; the rest are counted."""


class Watch:
    """What the view remembers between frames: when each running task started, and the tasks of
    goals that ended (read from the store once)."""

    def __init__(self) -> None:
        self.started: dict[tuple[str, str], float] = {}
        self.ended: dict[str, list[Task]] = {}

    def running_for(self, goal_id: str, task: Task) -> str:
        key = (goal_id, task.id)
        if task.state is TaskState.RUNNING:
            start = self.started.setdefault(key, time.monotonic())
            return f"{time.monotonic() - start:5.1f}s"
        self.started.pop(key, None)
        return ""

    def tasks_of_ended(self, engine: Engine, goal_id: str) -> list[Task]:
        if goal_id not in self.ended:
            self.ended[goal_id] = engine.store.load_tasks(goal_id)
        return self.ended[goal_id]


def render(engine: Engine, goal_ids: list[str], watch: Watch) -> Group:
    parts: list[RenderableType] = []
    for goal_id in goal_ids:
        run = engine.runs.get(goal_id)
        goal: Goal | None = run.goal if run else engine.finished.get(goal_id)
        if goal is None:
            continue
        if run is not None:
            tasks, activity = list(run.tasks.values()), run.activity
        else:
            tasks = watch.tasks_of_ended(engine, goal_id) if goal.state in GOAL_DONE else []
            activity = ""
        parts.extend([header(goal, tasks, activity), table(goal_id, tasks, watch)])
    return Group(*parts)


def header(goal: Goal, tasks: list[Task], activity: str) -> Text:
    """The goal's line: title, id, state (or what planning is doing), progress, branch."""
    state = styled(goal.state.value)
    if goal.state is GoalState.PLANNING and activity:
        state = f"[cyan]{escape(activity)}…[/]"
    counts = f"{progress.of(tasks)} tasks  " if tasks else ""
    waiting = (
        f"\nthe plan waits for approval: `blitz approve {goal.id}` (or the dashboard)"
        if goal.state is GoalState.AWAITING_APPROVAL
        else ""
    )
    return Text.from_markup(
        f"[bold]{escape(goal.title)}[/]  {goal.id}  {state}  {counts}"
        f"branch {escape(goal.branch)}{waiting}"
    )


def table(goal_id: str, tasks: list[Task], watch: Watch) -> Table:
    """Every task (the first :data:`SHOWN`): id, state, attempts, running time, what it is."""
    shown = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    shown.add_column("task")
    shown.add_column("state")
    shown.add_column("attempts", justify="right")
    shown.add_column("time", justify="right")
    shown.add_column("title / reason", overflow="ellipsis", no_wrap=True, max_width=70)
    for t in tasks[:SHOWN]:
        note = t.title
        if t.state in (TaskState.FAILED, TaskState.SKIPPED, TaskState.REPLACED) and t.reason:
            note = f"{t.title} - {headline(t.reason)}"
        origin = " (recovery)" if t.origin.startswith("recovery") else ""
        shown.add_row(
            escape(t.id + origin),
            styled(t.state.value),
            str(t.attempts),
            watch.running_for(goal_id, t),
            escape(note),
        )
    if len(tasks) > SHOWN:
        shown.add_row(f"... {len(tasks) - SHOWN} more", "", "", "", "")
    return shown


@contextlib.asynccontextmanager
async def live_view(engine: Engine, goal_ids: list[str], *, enabled: bool) -> AsyncIterator[None]:
    """Show the live view while the body runs (only on a terminal and when enabled)."""
    if not enabled or not out.is_terminal:
        yield
        return
    watch = Watch()
    with Live(
        render(engine, goal_ids, watch), console=out, refresh_per_second=8, transient=False
    ) as live:

        async def refresh() -> None:
            while True:
                live.update(render(engine, goal_ids, watch))
                await asyncio.sleep(0.2)

        task = asyncio.ensure_future(refresh())
        try:
            yield
        finally:
            await background.stop(task)
            watch.ended.clear()  # the store has the goals' ends now (the engine flushed it)
            live.update(render(engine, goal_ids, watch))
