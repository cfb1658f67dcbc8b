"""``blitz projects``: register, list, pause, resume and remove projects."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from blitz import actions
from blitz.cli.common import app, make_app, out, print_json

projects = typer.Typer(help="Manage the repositories blitz works on.", no_args_is_help=True)
app.add_typer(projects, name="projects")


@projects.command("add")
def add(
    path: Path = typer.Argument(Path("."), help="The repository."),
    name: str = typer.Option("", "--name", help="Name (default: the directory's)."),
) -> None:
    """Register a repository (reads its blitz.toml, or detects its gates)."""
    blitz = make_app()
    try:
        project = asyncio.run(actions.register(blitz, path, name=name)).project
        out.print(f"project [bold]{escape(project.name)}[/] ({project.id}): {escape(project.path)}")
        gates = project.gates.configured()
        out.print(
            "gates: " + (", ".join(f"{k}=`{v}`" for k, v in gates.items()) or "none detected"),
            markup=False,
        )
    finally:
        blitz.store.close()


@projects.command("list")
def list_(json_out: bool = typer.Option(False, "--json")) -> None:
    """List projects."""
    blitz = make_app()
    try:
        items = blitz.store.list_projects()
        if json_out:
            print_json(
                [
                    {
                        "id": p.id,
                        "name": p.name,
                        "path": p.path,
                        "base_branch": p.base_branch,
                        "backend": p.backend,
                        "paused": p.paused,
                        "gates": p.gates.configured(),
                    }
                    for p in items
                ]
            )
            return
        if not items:
            out.print("no projects: `blitz projects add PATH` or `blitz run GOAL --repo PATH`")
            return
        table = Table(header_style="bold")
        for col in ("name", "id", "path", "base", "backend", "state"):
            table.add_column(col)
        for p in items:
            table.add_row(
                *map(
                    escape,
                    (
                        p.name,
                        p.id,
                        p.path,
                        p.base_branch,
                        p.backend,
                        f"paused: {p.pause_reason}" if p.paused else "active",
                    ),
                )
            )
        out.print(table)
    finally:
        blitz.store.close()


def _set_paused(key: str, paused: bool, reason: str) -> None:
    blitz = make_app()
    try:
        project = blitz.project(key)  # says which projects there are
        if paused:
            asyncio.run(actions.pause(blitz, None, project.id, reason))
        else:
            asyncio.run(actions.resume(blitz, None, project.id))
        out.print(f"project {project.name} {'paused' if paused else 'resumed'}", markup=False)
    finally:
        blitz.store.close()


@projects.command("pause")
def pause(name: str, reason: str = typer.Option("paused by the user", "--reason")) -> None:
    """Pause a project: no new goals; queued tasks wait."""
    _set_paused(name, True, reason)


@projects.command("resume")
def resume_project(name: str) -> None:
    """Resume a paused project."""
    _set_paused(name, False, "")


@projects.command("remove")
def remove(name: str) -> None:
    """Forget a project and its goals' records (the repository itself is not touched)."""
    blitz = make_app()
    try:
        project = blitz.project(name)  # says which projects there are
        asyncio.run(actions.remove(blitz, None, project.id))
        out.print(
            f"removed project {project.name} (the repository at {project.path} is untouched)",
            markup=False,
        )
    finally:
        blitz.store.close()
