"""``blitz notify``: try every notification sink (``test``), and see how delivery goes
(``status``)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from blitz.cli.common import app, err, open_store, out, print_json

if TYPE_CHECKING:
    from blitz.integrations.notify.sinks import Sink
    from blitz.store.sql import SqlStore

notify = typer.Typer(
    help="Notifications: try every sink, and see how delivery goes.", no_args_is_help=True
)
app.add_typer(notify, name="notify")


def _sinks(store: SqlStore, project: str) -> list[Sink]:
    """The daemon's sinks (BLITZ_NOTIFY) and each project's (its blitz.toml's [notify])."""
    from blitz.config import load_repo_config
    from blitz.errors import ConfigError, UserError
    from blitz.integrations.notify.sinks import sinks_of
    from blitz.settings import Settings

    settings = Settings()
    api = settings.notify.slack_api_url
    found = sinks_of(settings.notify, "daemon", os.environ, slack_api_url=api)
    if project:
        chosen = store.get_project(project)
        if chosen is None:
            raise UserError(f"no project {project!r}: `blitz projects list` shows them")
        projects = [chosen]
    else:
        projects = store.list_projects()
    for p in projects:
        try:
            config = load_repo_config(Path(p.path))
        except ConfigError as exc:
            err.print(f"project {escape(p.name)}: {escape(str(exc))}")
            continue
        if config is not None:
            scope = f"project:{p.name}"
            found += sinks_of(config.notify, scope, os.environ, slack_api_url=api)
    return found


@notify.command("test")
def test(
    project: str = typer.Option("", "--project", "-p", help="Only this project's sinks."),
) -> None:
    """Send a test message to every sink: the daemon's (BLITZ_NOTIFY) and each project's
    ([notify] in its blitz.toml). Exits with 1 when one fails or none is configured."""
    from blitz.integrations.notify.message import trial_message
    from blitz.integrations.notify.notifier import send
    from blitz.integrations.notify.sinks import DeliveryFailed

    store = open_store()
    try:
        sinks = _sinks(store, project)
    finally:
        store.close()
    if not sinks:
        err.print(
            "no notification sinks: set BLITZ_NOTIFY for the daemon, or [notify] in a "
            "project's blitz.toml (README: Notifications)",
            markup=False,
        )
        raise typer.Exit(1)

    async def one(sink: Sink) -> str:
        try:
            await send(sink, trial_message(uuid.uuid4().hex, sink.name, time.time()))
        except DeliveryFailed as exc:
            return str(exc)
        return ""

    async def every() -> list[str]:
        return await asyncio.gather(*(one(sink) for sink in sinks))

    failures = 0
    for sink, problem in zip(sinks, asyncio.run(every()), strict=True):
        if problem:
            failures += 1
            out.print(f"{sink.name}: FAILED: {problem}", markup=False)
        else:
            out.print(f"{sink.name}: sent", markup=False)
    if failures:
        raise typer.Exit(1)


@notify.command("status")
def status(json_out: bool = typer.Option(False, "--json")) -> None:
    """How delivery goes, per sink: delivered, pending and failed (given up on) notifications,
    and the last error."""
    import dataclasses

    from blitz.integrations.notify.status import status as delivery_status

    store = open_store()
    try:
        found = delivery_status(store.outbox)
    finally:
        store.close()
    if json_out:
        print_json(dataclasses.asdict(found))
        return
    if found.waiting:
        out.print(f"{found.waiting} notification(s) wait for a daemon (`blitz serve`) to send them")
    if not found.sinks:
        out.print("no notifications sent yet")
        return
    table = Table(header_style="bold")
    for col in ("sink", "delivered", "pending", "failed", "last error"):
        table.add_column(col)
    for s in found.sinks:
        table.add_row(
            escape(s.sink),
            str(s.delivered),
            str(s.pending),
            f"[red]{s.failed}[/]" if s.failed else "0",
            escape(s.last_error),
        )
    out.print(table)
