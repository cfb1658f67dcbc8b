"""``blitz events``: the event log, optionally followed live."""

from __future__ import annotations

import datetime
import time

import typer

from blitz.cli.common import app, open_reader, out, print_json
from blitz.domain import GOAL_DONE
from blitz.errors import UserError
from blitz.events import Event, headline


def line(ev: Event) -> str:
    """One event on one line: when, its id, kind, goal and task, and what matters of its
    message (the failing gate of a validation, not its first gate)."""
    ts = datetime.datetime.fromtimestamp(ev.ts).strftime("%H:%M:%S")
    where = " ".join(x for x in (ev.goal_id, ev.task_id) if x)
    return f"{ts} {ev.id:>6} {ev.kind.value:<22} {where:<24} {headline(ev.message)}"


@app.command()
def events(
    goal: str = typer.Argument("", help="Only this goal's events (id or unique prefix)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per line."),
    last: int = typer.Option(200, "--last", help="Show the last N events first."),
) -> None:
    """Print the event log (every state change blitz made)."""
    store = open_reader()
    try:
        goal_id = None
        if goal:
            found = store.get_goal(goal)
            if found is None:
                raise UserError(f"no goal {goal!r}")
            goal_id = found.id
        after = 0
        if last:
            # Start from the last N events (read only those).
            newest = store.events(goal_id=goal_id, limit=last, newest=True)
            after = newest[0].id - 1 if newest else 0
        ended = False
        while True:
            batch = store.events(goal_id=goal_id, after=after, limit=1000)
            for ev in batch:
                if json_out:
                    print_json(
                        {
                            "id": ev.id,
                            "ts": ev.ts,
                            "kind": ev.kind.value,
                            "goal": ev.goal_id,
                            "task": ev.task_id,
                            "attempt": ev.attempt_id,
                            "message": ev.message,
                            "data": dict(ev.data),
                        },
                        indent=None,
                    )
                else:
                    out.print(line(ev), markup=False)
                after = ev.id
            if not follow:
                return
            if goal_id is not None and not batch:
                g = store.get_goal(goal_id)
                if g is not None and g.state in GOAL_DONE:
                    if ended:
                        return
                    # Read once more: the goal's last events are written just after its state.
                    ended = True
            if not batch:
                time.sleep(0.3)
    finally:
        store.close()
