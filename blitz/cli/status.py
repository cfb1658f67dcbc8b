"""``blitz status``: goals, or one goal's tasks and recoveries."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from blitz import progress
from blitz.cli.common import app, open_reader, out, print_json, styled
from blitz.domain import (
    INTERRUPTED,
    PUBLISH_PENDING,
    Attempt,
    AttemptState,
    Goal,
    Task,
    TaskState,
    Usage,
)
from blitz.errors import UserError
from blitz.events import headline
from blitz.worker_wait import waiting_for_worker

if TYPE_CHECKING:
    from blitz.store.reader import StoreReads


def _age(ts: float) -> str:
    seconds = max(0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


@app.command()
def status(
    goal: str = typer.Argument("", help="A goal id (or unique prefix); all goals when left out."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show goals, or one goal's tasks, attempts, recoveries and cost."""
    store = open_reader()
    try:
        if not goal:
            goals = store.list_goals()
            projects = {p.id: p.name for p in store.list_projects()}
            rows = []
            for g in goals:
                tasks = store.load_tasks(g.id)
                cost = (store.usage(g.id) + g.usage).cost_usd  # attempts + planning
                rows.append((g, tasks, cost))
            if json_out:
                print_json(
                    [
                        {
                            "id": g.id,
                            "project": projects.get(g.project_id, g.project_id),
                            "title": g.title,
                            "state": g.state.value,
                            "branch": g.branch,
                            "tasks": len(t),
                            "succeeded": sum(x.state is TaskState.SUCCEEDED for x in t),
                            "progress": _progress(t),
                            "cost_usd": c,
                            "created_at": g.created_at,
                            "pr": g.pr_url,
                            "publish_state": g.publish_state,
                        }
                        for g, t, c in rows
                    ]
                )
                return
            if not rows:
                out.print(
                    "no goals yet: try `blitz demo`, or `blitz run GOAL --repo PATH --plan FILE`"
                )
                return
            table = Table(header_style="bold")
            for col in ("goal", "project", "state", "tasks", "cost", "age", "title"):
                table.add_column(col)
            for g, tasks, cost in rows:
                table.add_row(
                    g.id,
                    escape(projects.get(g.project_id, "?")),
                    _state(g),
                    str(progress.of(tasks)),
                    f"${cost:.2f}",
                    _age(g.created_at),
                    escape(g.title),
                )
            out.print(table)
            return
        found = store.get_goal(goal)
        if found is None:
            raise UserError(f"no goal {goal!r}")
        tasks = store.load_tasks(found.id)
        attempts = store.load_attempts(found.id)
        recoveries = store.load_recoveries(found.id)
        waits = _worker_waits(store, found.id, attempts)
        if json_out:
            print_json(
                {
                    "id": found.id,
                    "title": found.title,
                    "state": found.state.value,
                    "branch": found.branch,
                    "base": found.base_branch,
                    "error": found.error,
                    "pr": found.pr_url,
                    "follows": found.follows,
                    "publish": {
                        "state": found.publish_state,
                        "error": found.publish_error,
                        "attempts": found.publish_attempts,
                    },
                    "models": found.model_map(),
                    "tasks": [
                        {
                            "id": t.id,
                            "title": t.title,
                            "state": t.state.value,
                            "attempts": t.attempts,
                            "commit": t.commit,
                            "depends_on": list(t.depends_on),
                            "origin": t.origin,
                            "root_cause": t.root_cause,
                            "reason": t.reason,
                            "labels": list(t.labels),
                            "waiting_for_worker": waits.get(t.id, ""),
                        }
                        for t in tasks
                    ],
                    "attempts": [
                        {
                            "id": a.id,
                            "task": a.task_id,
                            "number": a.number,
                            "state": a.state.value,
                            "backend": a.backend,
                            "model": a.model,
                            "candidate": a.candidate,
                            "selected": a.selected,
                            "verdict": a.verdict,
                            "ref": a.ref,
                            "commit": a.commit,
                            "error": a.error,
                            "cost_usd": a.usage.cost_usd,
                            "gates": {r.name: r.passed or r.preexisting for r in a.gates},
                            "reused_gates": [r.name for r in a.gates if r.reused],
                        }
                        for a in attempts
                    ],
                    "recoveries": [
                        {
                            "task": r.task_id,
                            "root_cause": r.root_cause,
                            "action": r.action.value,
                            "new_tasks": list(r.new_tasks),
                        }
                        for r in recoveries
                    ],
                    "usage": _usage(store.usage(found.id) + found.usage),
                    "planning_usage": _usage(found.usage),
                }
            )
            return
        out.print(f"[bold]{escape(found.title)}[/]  {found.id}  {_state(found)}")
        following = f", following goal {found.follows}" if found.follows else ""
        out.print(f"branch {found.branch} from {found.base_branch}{following}", markup=False)
        if found.models:
            models = ", ".join(f"{r} {m}" for r, m in found.model_map().items())
            out.print(f"models: {models}", markup=False)
        if found.error:
            out.print(f"[red]{escape(found.error)}[/]")
        if found.pr_url:
            out.print(f"pull request: {found.pr_url}", markup=False)
        if found.publish_state == PUBLISH_PENDING:
            out.print(
                f"[yellow]publishing pending[/] after {found.publish_attempts} tries: "
                f"{escape(found.publish_error)}\n`blitz publish {found.id}` tries again"
            )
        table = Table(header_style="bold")
        for col in ("task", "state", "attempts", "commit", "depends on", "title / reason"):
            table.add_column(col)
        for t in tasks:
            note = t.title + (
                f" - {headline(t.reason)}"
                if t.reason and t.state is not TaskState.SUCCEEDED
                else ""
            )
            if t.labels:
                note += f" [needs {', '.join(t.labels)}]"
            if t.id in waits:
                note += f" - waiting for a worker: {waits[t.id]}"
            table.add_row(
                escape(t.id),
                styled(t.state.value),
                str(t.attempts),
                t.commit[:10],
                escape(", ".join(t.depends_on)),
                escape(note),
            )
        out.print(table)
        _candidates(attempts)
        for r in recoveries:
            out.print(
                f"recovery of {r.task_id}: {r.action.value} - {r.root_cause}"
                + (f" (new: {', '.join(r.new_tasks)})" if r.new_tasks else ""),
                markup=False,
            )
        spent = store.usage(found.id) + found.usage
        out.print(
            f"{len(attempts)} attempts; {spent.input_tokens} tokens in ({spent.cached_tokens} "
            f"cached), {spent.output_tokens} out; cost ${spent.cost_usd:.4f} (planning and "
            f"recovery ${found.usage.cost_usd:.4f})"
        )
    finally:
        store.close()


def _worker_waits(store: StoreReads, goal_id: str, attempts: list[Attempt]) -> dict[str, str]:
    """Why each task whose attempt is running waits for a worker (task id -> reason): a remote
    executor's latest ``attempt.waiting`` with no ``attempt.placed`` after it."""
    running = {a.id: a.task_id for a in attempts if a.state is AttemptState.RUNNING}
    if not running:
        return {}
    events, after = [], 0
    while page := store.events(goal_id=goal_id, after=after, limit=5000):
        events.extend(page)
        after = page[-1].id
    return {running[a]: why for a, why in waiting_for_worker(events, running).items()}


def _state(goal: Goal) -> str:
    """A goal's state as shown: with its publishing pending, or its process interrupted."""
    shown = styled(goal.state.value)
    if goal.publish_state == PUBLISH_PENDING:
        shown += ", [yellow]publishing pending[/]"
    if goal.error == INTERRUPTED:
        shown += ", [yellow]interrupted[/]"
    return shown


def _candidates(attempts: list[Attempt]) -> None:
    """Best-of-N rounds: every candidate, its verdict and where its work is kept."""
    rounds: dict[tuple[str, int], list[Attempt]] = {}
    for a in attempts:
        if a.candidate:
            rounds.setdefault((a.task_id, a.number), []).append(a)
    for (task_id, number), candidates in rounds.items():
        table = Table(
            title=escape(f"{task_id}: best of {len(candidates)} (attempt {number})"),
            header_style="bold",
        )
        for col in ("#", "backend", "result", "verdict", "cost", "ref"):
            table.add_column(col)
        for a in sorted(candidates, key=lambda a: a.candidate):
            table.add_row(
                str(a.candidate),
                escape(f"{a.backend}:{a.model}" if a.model else a.backend),
                "[green]selected[/]" if a.selected else styled(a.state.value),
                escape(a.verdict),
                f"${a.usage.cost_usd:.4f}",
                escape(a.ref),
            )
        out.print(table)


def _progress(tasks: list[Task]) -> dict[str, object]:
    """Progress as the API gives it: done of total tasks, and the tasks counted by state."""
    found = progress.of(tasks)
    return {"done": found.done, "total": found.total, "by_state": dict(found.by_state)}


def _usage(usage: Usage) -> dict[str, float]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "cost_usd": usage.cost_usd,
    }
