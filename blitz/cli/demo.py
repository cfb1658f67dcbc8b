"""``blitz demo``: the whole engine on a sample repository, with the scripted planner and agent."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import typer
from rich.markup import escape

from blitz import demo as sample
from blitz import sandbox
from blitz.app import App
from blitz.cli.common import app, out, report
from blitz.cli.live import live_view
from blitz.domain import GoalState
from blitz.git import run_git
from blitz.settings import Settings


@app.command()
def demo(
    path: Path | None = typer.Option(
        None,
        "--path",
        help="Where to create the sample repository (default: a new temporary folder).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON, no live view."),
) -> None:
    """Run a goal on a sample repository with the scripted planner and agent (no model)."""
    code = asyncio.run(_demo(path, json_out))
    raise typer.Exit(code)


async def _demo(path: Path | None, json_out: bool) -> int:
    from blitz.testing.scripted import SCRIPTED_LABEL, Scenario  # the demo is the scripted fakes

    root = Path(tempfile.mkdtemp(prefix="blitz-demo-")) if path is None else path.resolve()
    root.mkdir(parents=True, exist_ok=True)
    repo = await sample.make_repo(root)
    scenario = Scenario.from_data(sample.scenario())
    settings = Settings()
    blitz = App(settings, scenario=scenario)
    try:
        if not json_out:
            out.print(f"[bold magenta]blitz demo[/] - {SCRIPTED_LABEL}")
            out.print(f"sample repository: {repo}", markup=False)
            out.print(f"goal: {sample.GOAL}", markup=False)
            found = sandbox.probe()
            shown = "in the sandbox" if found.ok else f"unconfined: {found.reason}"
            out.print(f"agents and gates run {shown}\n", markup=False)
        project = await blitz.register(repo)
        goal = await blitz.new_goal(project, sample.GOAL)
        engine = blitz.engine()
        engine.start(project, goal)
        async with live_view(engine, [goal.id], enabled=not json_out):
            finished = await engine.run()
        final = finished[goal.id]
        report(blitz, final, json_out=json_out)
        if json_out:
            return 0 if final.state is GoalState.SUCCEEDED else 1
        span = f"{final.base_branch}..{final.branch}"
        log = (await run_git(repo, "log", "--format=  %h %s", span, timeout=30, check=False)).out
        out.print(
            f"\n[bold]commits on {escape(final.branch)}[/] (one per task):\n{escape(log.rstrip())}"
        )
        for r in blitz.store.load_recoveries(final.id):
            out.print(
                f"\n[bold]recovery[/] of {escape(r.task_id)}: {r.action.value}"
                f" -> {escape(', '.join(r.new_tasks))}\n"
                f"  root cause: {escape(r.root_cause)}"
            )
        description = (
            Path(final.pr_url) if final.pr_url and not final.pr_url.startswith("http") else None
        )
        if description is not None and description.exists():
            out.print(f"\n[bold]pull request description[/] ({escape(str(description))}):\n")
            out.print(description.read_text(encoding="utf-8"), markup=False, soft_wrap=True)
        out.print("\n[bold]where everything is[/]")
        out.print(f"  sample repository:  {repo}  (your goal branch: {final.branch})", markup=False)
        out.print(f"  pushed to remote:   {root / 'origin.git'}", markup=False)
        out.print(
            f"  blitz state:        {settings.home} (database {settings.db_url})", markup=False
        )
        me = shell_command(os.environ, sys.argv[0])
        out.print(
            f"  inspect:            {me} status {final.id}   |   {me} events {final.id}",
            markup=False,
            soft_wrap=True,  # one line, to copy as it is
        )
        return 0 if final.state is GoalState.SUCCEEDED else 1
    finally:
        await blitz.aclose()


def shell_command(env: Mapping[str, str], argv0: str) -> str:
    """How to type blitz in the shell that started this one, so the hints printed work as typed:
    ``blitz`` when it is on that shell's PATH; ``uv run blitz`` when ``uv run`` started this one
    (from the clone, whose environment only ``uv run`` puts on PATH); else this blitz's path."""
    path = env.get("PATH", "")
    started_by_uv = bool(env.get("UV_RUN_RECURSION_DEPTH")) and bool(env.get("VIRTUAL_ENV"))
    if started_by_uv:
        venv_bin = str(Path(env["VIRTUAL_ENV"]) / "bin")
        path = os.pathsep.join(p for p in path.split(os.pathsep) if p and p != venv_bin)
    if shutil.which("blitz", path=path):
        return "blitz"
    if started_by_uv:
        return "uv run blitz"
    return shlex.quote(str(Path(argv0).resolve()))
