"""``blitz slack``: which project each Slack channel's goals go to."""

from __future__ import annotations

import asyncio

import typer

from blitz.cli.common import app, make_app, out, print_json
from blitz.integrations.slack import channels

slack = typer.Typer(
    help="Slack: map channels to projects (the daemon takes goals from Slack; see the README).",
    no_args_is_help=True,
)
app.add_typer(slack, name="slack")


@slack.command("map")
def map_(
    channel: str = typer.Argument(..., help="The channel's id (C0123ABC), not its name."),
    project: str = typer.Argument(..., help="The project's name or id."),
) -> None:
    """Start the goals asked for in CHANNEL in PROJECT (several channels may share one)."""
    blitz = make_app()
    try:
        mapping = asyncio.run(channels.map_channel(blitz.store, channel, project))
        out.echo(f"{mapping.channel} -> {mapping.project.name} ({mapping.project.id})")
    finally:
        blitz.store.close()


@slack.command("unmap")
def unmap(channel: str = typer.Argument(..., help="The channel's id.")) -> None:
    """Stop taking goals in CHANNEL."""
    blitz = make_app()
    try:
        out.echo(f"{asyncio.run(channels.unmap_channel(blitz.store, channel))} unmapped")
    finally:
        blitz.store.close()


@slack.command("list")
def list_(json_out: bool = typer.Option(False, "--json")) -> None:
    """List the channels mapped to projects."""
    blitz = make_app()
    try:
        found = channels.mappings(blitz.store)
        if json_out:
            print_json(
                [
                    {"channel": m.channel, "project_id": m.project.id, "project": m.project.name}
                    for m in found
                ]
            )
            return
        if not found:
            out.echo("no channels mapped: `blitz slack map CHANNEL PROJECT`")
        for m in found:
            out.echo(f"{m.channel} -> {m.project.name} ({m.project.id})")
    finally:
        blitz.store.close()
