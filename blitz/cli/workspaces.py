"""``blitz workspaces``: the warm worktrees of each project, and ``prune`` to empty the pools."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from blitz import actions
from blitz.cli.common import app, make_app, out, print_json
from blitz.server.workspaces import WorktreeOut

if TYPE_CHECKING:
    from blitz.app import App
    from blitz.domain import Project

workspaces = typer.Typer(
    help="The warm worktrees blitz keeps per project (reset before every attempt).",
    invoke_without_command=True,
)
app.add_typer(workspaces, name="workspaces")


def _projects(blitz: App, key: str) -> list[Project]:
    return [actions.project_of(blitz.store, key)] if key else blitz.store.list_projects()


@workspaces.callback()
def list_(
    ctx: typer.Context,
    project: str = typer.Option("", "--project", "-p", help="Only this project (name or id)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List every project's worktrees: pooled (free or busy), temporary, other."""
    if ctx.invoked_subcommand is not None:
        return
    blitz = make_app()
    try:
        found = asyncio.run(blitz.worktrees.entries(_projects(blitz, project)))
    finally:
        blitz.store.close()
    if json_out:
        print_json([WorktreeOut.of(p, e).model_dump() for p, e in found])
        return
    if not found:
        out.print("no worktrees: attempts make them as they need them")
        return
    table = Table(header_style="bold")
    for col in ("project", "worktree", "kind", "state", "head", "since", "path"):
        table.add_column(col)
    now = time.time()
    for p, e in found:
        state = f"busy: {e.holder}" if e.busy else "free"
        since = f"{now - e.since:.0f}s ago" if e.since else ""
        table.add_row(
            *map(escape, (p.name, e.name, e.kind, state, e.head[:10], since, str(e.path)))
        )
    out.print(table)


@workspaces.command("prune")
def prune(
    project: str = typer.Option("", "--project", "-p", help="Only this project (name or id)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Remove every pooled worktree no attempt holds (busy ones are left alone); attempts make
    new ones as they need them."""
    blitz = make_app()
    try:
        done = asyncio.run(blitz.worktrees.prune(_projects(blitz, project)))
    finally:
        blitz.store.close()
    if json_out:
        print_json(
            [{"project": d.project, "removed": list(d.removed), "busy": list(d.busy)} for d in done]
        )
        return
    for d in done:
        line = f"{d.project}: removed {len(d.removed)} worktree{'' if len(d.removed) == 1 else 's'}"
        if d.busy:
            line += f"; {len(d.busy)} busy, left alone: {', '.join(d.busy)}"
        out.print(line, markup=False)
