"""``blitz serve`` (the daemon), ``blitz token`` and ``blitz approve``."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from blitz import actions
from blitz.cli.common import app, make_app, out, server_option, token_option
from blitz.domain import Goal
from blitz.errors import UserError
from blitz.settings import ExecutorSettings, Settings, executor_choice

if TYPE_CHECKING:
    from blitz.integrations.slack.settings import SlackSettings


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
    executor: str = typer.Option(
        "",
        "--executor",
        help='Where attempts run: "local" (here), "ray" (a Ray cluster\'s `blitz worker` nodes) '
        'or "auto" (ray when RAY_ADDRESS is set). Default: [executor] name (BLITZ_EXECUTOR).',
    ),
    ray_address: str = typer.Option(
        "", "--ray-address", help="The Ray cluster's address, HEAD:PORT (implies --executor ray)."
    ),
) -> None:
    """Run the daemon: the engine and its HTTP API (docs/api.md) with the dashboard."""
    from blitz.server.auth import TokenStore
    from blitz.server.daemon import Daemon, hold_home, listen, url_of

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    slack = _slack_settings()  # a bad Slack set-up stops here, before anything is made
    chosen = executor_settings(executor, ray_address)
    chosen_name, options = executor_choice(chosen, Settings().ray_address)  # checked up front
    blitz = make_app(scenario_path=scenario, executor=chosen)
    tokens = TokenStore.of_home(blitz.settings.home)
    try:
        hold_home(blitz.settings.home)  # a second daemon on this data directory stops here
        sock = listen(host, port)
    except BaseException:
        blitz.store.close()
        raise
    # Made only once the daemon has its port: a token made by a start that fails would be
    # kept (hashed) and never shown, and the next start would not make one.
    made = tokens.ensure()
    shown = False

    def show_token() -> None:
        nonlocal shown
        shown = True
        if made:
            print(f"token: {made}", flush=True)
            print(
                "  shown this once; only its hash is kept. `blitz token` makes a new one.",
                flush=True,
            )
        else:
            print(f"token: kept hashed in {tokens.path}; `blitz token` makes a new one", flush=True)

    daemon = Daemon(blitz, tokens=tokens, grace=grace, cors_origins=cors_origin, slack=slack)

    def ready(resumed: list[Goal]) -> None:
        # Plain prints, flushed: scripts read these lines, and Rich would wrap them.
        print(f"blitz daemon listening on {url_of(sock)} (pid {os.getpid()})", flush=True)
        show_token()
        where = f"on the Ray cluster at {options['address']}" if options else "in this process"
        print(f"executor: {chosen_name} (attempts run {where})", flush=True)
        if daemon.slack is not None:
            modes = {"http": "HTTP events at /slack/events", "socket": "Socket Mode"}
            print("slack: " + " and ".join(modes[m] for m in daemon.slack.modes), flush=True)
        for goal in resumed:
            out.echo(f"resuming {goal.id} ({goal.state.value}): {goal.title}")

    try:
        code = asyncio.run(daemon.serve(sock, ready=ready))
    finally:
        if made and not shown:  # the start failed after the token was made: show it anyway
            show_token()
    print("blitz daemon stopped; unfinished goals resume on its next start", flush=True)
    raise typer.Exit(code)


def executor_settings(name: str, ray_address: str) -> ExecutorSettings:
    """The daemon's ``[executor]`` with ``--executor`` and ``--ray-address`` over the
    settings' (an address alone means the ray executor)."""
    current = Settings().executor
    if name and name not in ("local", "ray", "auto"):
        raise UserError(f'--executor must be "local", "ray" or "auto", not {name!r}')
    if name == "local" and ray_address:
        raise UserError("--ray-address is for the ray executor, not --executor local")
    chosen = name or ("ray" if ray_address else current.name)
    return ExecutorSettings(name=chosen, address=ray_address or current.address)  # type: ignore[arg-type]


def _slack_settings() -> SlackSettings | None:
    """Slack's tokens from SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_APP_TOKEN, or None
    when they are not set (the Slack SDKs are then never imported)."""
    if not os.environ.get("SLACK_BOT_TOKEN"):
        return None
    from blitz.integrations.slack.settings import SlackSettings

    settings = SlackSettings()
    if not settings.enabled:
        raise UserError(
            "SLACK_BOT_TOKEN is set but Slack cannot reach the daemon: set SLACK_SIGNING_SECRET "
            "(HTTP events at /slack/events) or SLACK_APP_TOKEN (Socket Mode)"
        )
    return settings


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
        from blitz.cli.remote import approve_remote  # the HTTP client, only when asked for

        approve_remote(server, token, goal, plan)
        return
    if plan is not None:
        raise UserError("--plan needs --server: an edited plan is sent to the daemon")
    blitz = make_app()
    try:
        done = asyncio.run(actions.approve(blitz, None, goal))
        lease = blitz.store.lease(done.goal.id)
        owner = lease.owner if lease is not None else ""
        out.print(
            f"goal {done.goal.id} approved; the process that drives it ({owner}) starts its tasks",
            markup=False,
        )
    finally:
        blitz.store.close()
