"""The live Rich view of running goals: every task's state, attempts and running time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from blitz.cli.common import out, styled
from blitz.conductor import Engine
from blitz.domain import Goal, GoalState, Task, TaskState


class _Timer:
    def __init__(self) -> None:
        self.started: dict[tuple[str, str], float] = {}

    def running_for(self, goal_id: str, task: Task) -> str:
        key = (goal_id, task.id)
        if task.state is TaskState.RUNNING:
            start = self.started.setdefault(key, time.monotonic())
            return f"{time.monotonic() - start:5.1f}s"
        self.started.pop(key, None)
        return ""


def render(engine: Engine, goal_ids: list[str], timer: _Timer) -> Group:
    parts: list[RenderableType] = []
    for goal_id in goal_ids:
        run = engine.runs.get(goal_id)
        goal: Goal | None = run.goal if run else engine.finished.get(goal_id)
        if goal is None:
            continue
        tasks = list(run.tasks.values()) if run else []
        done = sum(t.state is TaskState.SUCCEEDED for t in tasks)
        waiting = (
            f"\nthe plan waits for approval: `blitz approve {goal.id}` (or the dashboard)"
            if goal.state is GoalState.AWAITING_APPROVAL
            else ""
        )
        header = Text.from_markup(
            f"[bold]{goal.title}[/]  {goal.id}  {styled(goal.state.value)}  "
            f"{done}/{len(tasks)} tasks  branch {goal.branch}{waiting}"
        )
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("task")
        table.add_column("state")
        table.add_column("attempts", justify="right")
        table.add_column("time", justify="right")
        table.add_column("title / reason", overflow="ellipsis", no_wrap=True, max_width=70)
        for t in tasks[:60]:
            note = t.title
            if t.state in (TaskState.FAILED, TaskState.SKIPPED, TaskState.REPLACED) and t.reason:
                note = f"{t.title} - {t.reason.splitlines()[0]}"
            origin = " (recovery)" if t.origin.startswith("recovery") else ""
            table.add_row(
                t.id + origin,
                styled(t.state.value),
                str(t.attempts),
                timer.running_for(goal_id, t),
                note,
            )
        if len(tasks) > 60:
            table.add_row(f"... {len(tasks) - 60} more", "", "", "", "")
        parts.extend([header, table])
    return Group(*parts)


@contextlib.asynccontextmanager
async def live_view(engine: Engine, goal_ids: list[str], *, enabled: bool) -> AsyncIterator[None]:
    """Show the live view while the body runs (only on a terminal and when enabled)."""
    if not enabled or not out.is_terminal:
        yield
        return
    timer = _Timer()
    with Live(
        render(engine, goal_ids, timer), console=out, refresh_per_second=8, transient=False
    ) as live:

        async def refresh() -> None:
            while True:
                live.update(render(engine, goal_ids, timer))
                await asyncio.sleep(0.2)

        task = asyncio.ensure_future(refresh())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            live.update(render(engine, goal_ids, timer))
