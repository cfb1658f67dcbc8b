"""``blitz plan``: show the plan a planner makes for a goal, without running it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from blitz.backends.registry import NO_MODEL
from blitz.cli.common import app, make_app, out, print_json
from blitz.domain import new_id
from blitz.errors import ConfigError
from blitz.planner import PlanRequest, check_plan


@app.command()
def plan(
    goal: str = typer.Argument(..., help="What you want done, in plain words."),
    repo: Path = typer.Option(Path("."), "--repo", help="The repository."),
    model: str = typer.Option("", "--model", help="Model as provider:model."),
    planner_model: str = typer.Option("", "--planner-model", help="Model for planning."),
    scenario: str = typer.Option("", "--scenario", help="Scenario file for the scripted planner."),
    json_out: bool = typer.Option(
        False, "--json", help="Print the plan as JSON (a plan file for --plan)."
    ),
) -> None:
    """Plan GOAL and show the tasks; nothing runs and nothing is stored."""
    blitz = make_app(scenario_path=scenario, model=model, planner_model=planner_model)

    async def go() -> None:
        try:
            project = await blitz.register(repo)
            if not blitz.has_planner(project):
                raise ConfigError(NO_MODEL)
            limits = blitz.limits(project)
            planned = await blitz.planner(project).plan(
                PlanRequest(
                    goal_id=new_id("g"),
                    goal=goal,
                    repo=Path(project.path),
                    gates=project.gates.configured(),
                    max_tasks=limits.max_tasks,
                )
            )
            check_plan(planned.plan.tasks, max_tasks=limits.max_tasks)
            p = planned.plan
            if json_out:
                data = {
                    "summary": p.summary,
                    "tasks": [
                        {
                            "id": t.id,
                            "title": t.title,
                            "instructions": t.instructions,
                            "depends_on": list(t.depends_on),
                            "priority": t.priority,
                            "files": list(t.files),
                            "labels": list(t.labels),
                            "checks": [
                                {"kind": c.kind, "path": c.path, "command": c.command}
                                if c.kind == "command"
                                else {"kind": c.kind, "path": c.path}
                                for c in t.checks
                            ],
                        }
                        for t in p.tasks
                    ],
                }
                print_json(data)
                return
            out.print(f"[bold]{escape(goal)}[/]\n{escape(p.summary)}\n")
            table = Table(header_style="bold")
            for col in ("task", "priority", "depends on", "title"):
                table.add_column(col)
            for t in p.tasks:
                table.add_row(
                    escape(t.id), str(t.priority), escape(", ".join(t.depends_on)), escape(t.title)
                )
            out.print(table)
            cost = planned.usage
            out.print(
                f"{len(p.tasks)} tasks; planning used {cost.input_tokens} tokens in, "
                f"{cost.output_tokens} out ({cost.cached_tokens} cached), ${cost.cost_usd:.4f}"
            )
        finally:
            await blitz.aclose()

    asyncio.run(go())
