"""``blitz worker`` (join this machine to a Ray cluster as a worker node) and ``blitz workers``
(the cluster's worker nodes: slots, backends, labels, running attempts, last seen)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from blitz.cli.common import app, err, out, print_json, server_option, token_option
from blitz.errors import ConfigError, UserError
from blitz.settings import Settings

RAY_MISSING = "blitz worker needs Ray: install blitz with its ray extra (pip install 'blitz[ray]')"


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    address: str = typer.Option(
        "", "--address", help="The Ray cluster's head, HEAD:PORT (default: RAY_ADDRESS)."
    ),
    slots: int = typer.Option(1, "--slots", min=1, help="Attempts this machine runs at once."),
    label: list[str] = typer.Option(
        [], "--label", help="A label tasks may require (`--label gpu`; repeatable)."
    ),
    backend: list[str] = typer.Option(
        [], "--backend", help="Offer only these backends (each must be usable here; repeatable)."
    ),
    home: Path | None = typer.Option(
        None,
        "--home",
        help="Where the worker keeps its repositories (default: <BLITZ_HOME>/worker).",
    ),
) -> None:
    """Join this machine to a Ray cluster as a worker node (the `ray start --address ... --block`
    you would otherwise type), advertising its attempt slots, the backends usable here (CLI and
    key present) and its labels; Ctrl-C stops the node. Arguments after `--` go to `ray start`."""
    import importlib.util

    from blitz.executors.ray import resources
    from blitz.executors.ray.worker import node_env, ray_start_command

    settings = Settings()
    where = address or settings.ray_address
    if not where:
        raise UserError("say which cluster to join: --address HEAD:PORT (or RAY_ADDRESS)")
    if importlib.util.find_spec("ray") is None:
        raise UserError(RAY_MISSING)
    try:
        labels = [resources.check_name("label", lab) for lab in dict.fromkeys(label)]
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    offered, missing = usable_backends(settings, list(dict.fromkeys(backend)))
    directory = (home or settings.home / "worker").expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    advertised = resources.node_resources(slots, offered, labels)
    out.print(f"joining the Ray cluster at {escape(where)} as a blitz worker", soft_wrap=True)
    out.print(f"  slots: {slots}")
    out.print(f"  backends: {', '.join(offered) or 'none'}", markup=False)
    for name, why in missing:
        out.print(f"    not {name}: {why}", markup=False, soft_wrap=True)
    out.print(f"  labels: {', '.join(labels) or 'none'}", markup=False)
    out.print(f"  data directory: {directory}", markup=False, soft_wrap=True)
    if not offered:
        err.print("warning: no backend is usable here: no attempt can be placed on this worker")
    command = ray_start_command(where, advertised, ctx.args)
    env = node_env(directory, _marker(), slots=slots, ray_args=ctx.args)
    code = asyncio.run(_serve_node(command, env))
    out.print("blitz worker stopped")
    raise typer.Exit(code)


def usable_backends(settings: Settings, only: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The backends a run could use here, by ``blitz backends list``'s checks (``only``: just
    these, each required to be usable), and why each other is not."""
    from blitz.cli.backends import availability, tools_dir
    from blitz.config import RepoConfig

    found = asyncio.run(availability(settings, RepoConfig(), tools_dir(settings, None)))
    by_name = {a.name: a for a in found}
    for name in only:
        if name not in by_name:
            raise UserError(f"no backend {name!r}; known: {', '.join(sorted(by_name))}")
        if not by_name[name].available:
            raise ConfigError(f"the {name} backend cannot run here: {by_name[name].detail}")
    chosen = [a for a in found if not only or a.name in only]
    return (
        [a.name for a in chosen if a.available],
        [(a.name, a.detail) for a in chosen if not a.available],
    )


def _marker() -> str:
    from blitz.proctree import new_marker

    return new_marker()


async def _serve_node(command: list[str], env: dict[str, str]) -> int:
    """Run the node until it ends or SIGINT/SIGTERM asks this process to stop."""
    from blitz.executors.ray.worker import run_node

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await run_node(command, env, stop=stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@app.command()
def workers(
    server: str = server_option(),
    token: str = token_option(),
    address: str = typer.Option(
        "",
        "--address",
        help="Without --server: read the Ray cluster at HEAD:PORT (default: RAY_ADDRESS).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the cluster's worker nodes: slots (free/total), backends, labels, running attempts
    and when the daemon last saw each (with --server; else read from the cluster itself)."""
    if server:
        from blitz.server.client import Client

        with Client(server, token) as client:
            data: dict[str, Any] = client.call("GET", "/api/workers")
    else:
        data = _from_cluster(address or Settings().ray_address)
    if json_out:
        print_json(data)
        return
    show(data)


def _from_cluster(address: str) -> dict[str, Any]:
    """What ``GET /api/workers`` answers, read from the cluster by this process: no attempts
    (the daemon knows them) and seen now."""
    import importlib.util

    if not address:
        raise UserError(
            "say where to look: --server URL (a daemon) or --address HEAD:PORT (or RAY_ADDRESS)"
        )
    if importlib.util.find_spec("ray") is None:
        raise UserError(RAY_MISSING.replace("blitz worker", "blitz workers --address"))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from blitz.executors.ray.membership import cluster_nodes

    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:  # Ray's own: a ConnectionError, a timeout...
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc}") from exc
    try:
        nodes = cluster_nodes()
    finally:
        ray.shutdown()
    now = time.time()
    return {
        "executor": "ray",
        "address": address,
        "note": "read from the cluster: running attempts are known to the daemon (--server)",
        "workers": [
            {
                "node_id": n.node_id,
                "address": n.address,
                "alive": n.alive,
                "slots": n.slots,
                "free_slots": n.free_slots,
                "backends": list(n.backends),
                "labels": list(n.labels),
                "attempts": [],
                "last_seen": now if n.alive else 0.0,
            }
            for n in nodes
        ],
    }


def show(data: dict[str, Any]) -> None:
    """The workers as a table, with the answer's note."""
    rows = data.get("workers") or []
    if data.get("note"):
        out.print(escape(str(data["note"])), soft_wrap=True)
    if not rows:
        return
    table = Table(header_style="bold")
    for col in ("node", "address", "state", "slots", "backends", "labels", "attempts", "seen"):
        table.add_column(col)
    now = time.time()
    for w in rows:
        seen = w["last_seen"]
        table.add_row(
            escape(w["node_id"][:12]),
            escape(w["address"]),
            "[green]alive[/]" if w["alive"] else "[red]dead[/]",
            f"{w['free_slots']}/{w['slots']} free",
            escape(", ".join(w["backends"]) or "-"),
            escape(", ".join(w["labels"]) or "-"),
            escape(", ".join(w["attempts"]) or "-"),
            f"{max(0.0, now - seen):.0f}s ago" if seen else "never",
        )
    out.print(table)
