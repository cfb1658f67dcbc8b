"""``blitz serve`` (the daemon), ``blitz token``, ``blitz approve``, and ``blitz run --server``
(a goal run by a daemon, followed over its event stream)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from blitz.cli import app
from blitz.cli.common import make_app, out, print_json, styled
from blitz.domain import Goal, GoalState
from blitz.errors import UserError
from blitz.events import Event, EventKind
from blitz.settings import Settings

if TYPE_CHECKING:
    from blitz.cli.run import Explore

TOKEN_ENV = "BLITZ_SERVER_TOKEN"


def server_option() -> str:
    return typer.Option("", "--server", help="A blitz daemon's URL: do it there, over its API.")


def token_option() -> str:
    return typer.Option(
        "", "--token", envvar=TOKEN_ENV, help=f"The daemon's token (or ${TOKEN_ENV})."
    )


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: a free one)."),
    grace: float = typer.Option(
        30.0, "--grace", min=0, help="Seconds running attempts get to finish at shutdown."
    ),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="Let this origin call the API from a browser (repeatable)."
    ),
    scenario: str = typer.Option(
        "", "--scenario", help="Scenario file for the scripted planner and backend."
    ),
) -> None:
    """Run the daemon: the engine and its HTTP API (docs/api.md) with the dashboard."""
    from blitz.server.auth import TokenStore
    from blitz.server.daemon import Daemon, listen, url_of

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    blitz = make_app(scenario_path=scenario)
    tokens = TokenStore.of_home(blitz.settings.home)
    try:
        made = tokens.ensure()
        sock = listen(host, port)
    except BaseException:
        blitz.store.close()
        raise
    daemon = Daemon(blitz, tokens=tokens, grace=grace, cors_origins=cors_origin)

    def ready(resumed: list[Goal]) -> None:
        # Plain prints, flushed: scripts read these lines, and Rich would wrap them.
        print(f"blitz daemon listening on {url_of(sock)} (pid {os.getpid()})", flush=True)
        if made:
            print(f"token: {made}", flush=True)
            print(
                "  shown this once; only its hash is kept. `blitz token` makes a new one.",
                flush=True,
            )
        else:
            print(f"token: kept hashed in {tokens.path}; `blitz token` makes a new one", flush=True)
        for goal in resumed:
            print(f"resuming {goal.id} ({goal.state.value}): {goal.title}", flush=True)

    code = asyncio.run(daemon.serve(sock, ready=ready))
    print("blitz daemon stopped; unfinished goals resume on its next start", flush=True)
    raise typer.Exit(code)


@app.command()
def token() -> None:
    """Make a new token for the daemon (the old one stops working at once) and print it."""
    from blitz.server.auth import TokenStore

    tokens = TokenStore.of_home(Settings().home)
    print(f"token: {tokens.rotate()}", flush=True)
    print("  shown this once; only its hash is kept in " + str(tokens.path), flush=True)


@app.command()
def approve(
    goal: str = typer.Argument(..., help="Goal id (or a unique prefix)."),
    plan: Path | None = typer.Option(
        None, "--plan", help="Run this edited plan file instead (with --server)."
    ),
    server: str = server_option(),
    token: str = token_option(),
) -> None:
    """Approve the plan of a goal that waits for approval, so its tasks run."""
    if server:
        from blitz.planner import load_plan_file
        from blitz.server.client import Client
        from blitz.server.schemas import plan_data

        body = plan_data(load_plan_file(plan)) if plan is not None else None
        with Client(server, token) as client:
            done = client.call("POST", f"/api/goals/{goal}/approve", body)
        how = "approved" if done["applied"] == "engine" else "approval queued for its process"
        out.print(f"goal {done['goal_id']} {how}")
        return
    if plan is not None:
        raise UserError("--plan needs --server: an edited plan is sent to the daemon")
    blitz = make_app()
    try:
        found = blitz.store.get_goal(goal)
        if found is None:
            raise UserError(f"no goal {goal!r}")
        if found.state is not GoalState.AWAITING_APPROVAL:
            raise UserError(f"goal {found.id} is {found.state.value}, not awaiting approval")
        blitz.store.add_command(found.id, "approve")
        out.print(
            f"goal {found.id} approved: the process that drives it (`blitz serve`) starts its tasks"
        )
    finally:
        blitz.store.close()


# -- blitz run --server ----------------------------------------------------------------------


def run_remote(
    server: str,
    token: str,
    *,
    title: str,
    repo: Path,
    plan: Path | None,
    backend: str,
    max_parallel: int,
    allow_dirty: bool,
    json_out: bool,
    explore: Explore | None = None,
) -> int:
    """Submit a goal to the daemon at ``server`` and follow it to its end; the exit code of
    ``blitz run`` (0 succeeded, 1 failed or cancelled; user errors raise)."""
    from blitz.cli.events import _line
    from blitz.planner import load_plan_file
    from blitz.server.client import Client
    from blitz.server.schemas import plan_data

    body: dict[str, object] = {
        "title": title,
        "backend": backend,
        "max_parallel": max_parallel,
        "allow_dirty": allow_dirty,
    }
    if explore is not None:
        body.update(
            explore=explore.attempts, explore_mode=explore.mode, portfolio=list(explore.portfolio)
        )
    if plan is not None:
        body["plan"] = plan_data(load_plan_file(plan))  # checked here: errors name the file
    with Client(server, token) as client:
        project = client.call("POST", "/api/projects", {"path": str(repo.expanduser().resolve())})
        goal = client.call("POST", "/api/goals", {"project": project["id"], **body})
        goal_id = goal["id"]
        if not json_out:
            out.print(
                f"goal [bold]{goal_id}[/] on {project['name']} ({project['path']}), "
                f"branch {goal['branch']}, run by {server}"
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
                out.print(_line(event), markup=False)
                if event.kind is EventKind.PLAN_AWAITING_APPROVAL:
                    out.print(f"the plan waits for approval: `blitz approve {goal_id}`")
        except KeyboardInterrupt:
            out.print(f"\nstopped following; goal {goal_id} goes on in the daemon")
            return 130
        final = client.call("GET", f"/api/goals/{goal_id}")
    _report(final, json_out=json_out)
    return 0 if final["state"] == GoalState.SUCCEEDED.value else 1


def _report(goal: dict[str, object], *, json_out: bool) -> None:
    """How a goal run by the daemon ended (the shape of `blitz run`'s own report)."""
    tasks = goal["tasks"]
    assert isinstance(tasks, list)
    if json_out:
        print_json(
            {
                "goal": goal["id"],
                "title": goal["title"],
                "state": goal["state"],
                "branch": goal["branch"],
                "error": goal["error"],
                "pr": goal["pr_url"],
                "tasks": [
                    {
                        k: t[k]
                        for k in ("id", "title", "state", "commit", "attempts", "origin", "reason")
                    }
                    for t in tasks
                ],
            }
        )
        return
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    out.print(f"\ngoal {goal['id']} {styled(str(goal['state']))}: {summary}")
    if goal["error"]:
        out.print(f"  {goal['error']}")
    for t in tasks:
        if t["state"] == "failed" or (t["state"] == "skipped" and t["reason"]):
            out.print(f"  {t['id']}: {styled(t['state'])} - {t['reason'].splitlines()[0]}")
    out.print(f"  branch: {goal['branch']}")
    pr = str(goal["pr_url"])
    if pr:
        label = "pull request" if pr.startswith("http") else "pull request description"
        out.print(f"  {label}: {pr}")
