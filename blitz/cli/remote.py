"""``blitz run --server`` and ``blitz approve --server``: the same actions asked of a daemon
over its API (docs/api.md), a goal followed over its event stream."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from blitz.actions import GoalRequest
from blitz.cli.common import out, print_report
from blitz.cli.events import line
from blitz.domain import GoalState
from blitz.events import Event, EventKind
from blitz.planner import load_plan_file
from blitz.server.client import Client
from blitz.server.schemas import plan_data


def run_remote(
    server: str,
    token: str,
    *,
    repo: Path,
    request: GoalRequest,
    plan: Path | None,
    json_out: bool,
) -> int:
    """Submit a goal to the daemon at ``server`` and follow it to its end; the exit code of
    ``blitz run`` (0 succeeded, 1 failed or cancelled; user errors raise)."""
    body: dict[str, object] = {
        "title": request.title,
        "backend": request.backend,
        "max_parallel": request.max_parallel,
        "allow_dirty": request.allow_dirty,
        "explore": request.explore,
        "explore_mode": request.explore_mode,
        "portfolio": list(request.portfolio),
        "follows": request.follows,
    }
    if plan is not None:
        body["plan"] = plan_data(load_plan_file(plan))  # checked here: errors name the file
    with Client(server, token) as client:
        project = client.call("POST", "/api/projects", {"path": str(repo.expanduser().resolve())})
        goal = client.call("POST", "/api/goals", {"project": project["id"], **body})
        goal_id = goal["id"]
        if not json_out:
            out.print(
                f"goal [bold]{goal_id}[/] on "
                + escape(f"{project['name']} ({project['path']}), branch {goal['branch']}, ")
                + escape(f"run by {server}")
            )
        try:
            for data in client.follow(goal_id):
                if json_out:
                    continue
                event = Event(
                    id=data["id"],
                    ts=data["ts"],
                    kind=EventKind(data["kind"]),
                    goal_id=data["goal_id"],
                    task_id=data["task_id"],
                    message=data["message"],
                )
                out.print(line(event), markup=False)
                if event.kind is EventKind.PLAN_AWAITING_APPROVAL:
                    out.print(
                        f"the plan waits for approval: `blitz approve {goal_id}`", markup=False
                    )
        except KeyboardInterrupt:
            out.print(f"\nstopped following; goal {goal_id} goes on in the daemon", markup=False)
            return 130
        final = client.call("GET", f"/api/goals/{goal_id}")
    print_report(final, json_out=json_out)
    return 0 if final["state"] == GoalState.SUCCEEDED.value else 1


def approve_remote(server: str, token: str, goal: str, plan: Path | None) -> None:
    """Approve a goal's plan (or run ``plan`` instead) in the daemon at ``server``."""
    body = plan_data(load_plan_file(plan)) if plan is not None else None
    with Client(server, token) as client:
        done = client.call("POST", f"/api/goals/{goal}/approve", body)
    how = (
        "approved: its tasks start"
        if done["applied"] == "engine"
        else "approved: the process that drives it starts its tasks"
    )
    out.print(f"goal {done['goal_id']} {how}", markup=False)
