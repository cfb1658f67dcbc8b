"""``blitz run``, ``blitz resume`` and ``blitz cancel``."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from functools import partial
from pathlib import Path

import typer

from blitz import actions
from blitz.actions import Applied, GoalRequest
from blitz.app import App
from blitz.cli.common import (
    app,
    make_app,
    out,
    print_json,
    report,
    server_option,
    styled,
    token_option,
)
from blitz.cli.live import live_view
from blitz.conductor.ownership import GoalTaken
from blitz.domain import GOAL_DONE, GoalState
from blitz.errors import ConfigError, UserError
from blitz.planner import load_plan_file
from blitz.store.leases import orphaned


@app.command()
def run(
    goal: str = typer.Argument(..., help="What you want done, in plain words."),
    repo: Path = typer.Option(
        Path("."), "--repo", help="The repository (registered on first use)."
    ),
    plan: Path | None = typer.Option(
        None, "--plan", help="Run this plan file (YAML or JSON) instead of planning."
    ),
    backend: str = typer.Option("", "--backend", help="Agent backend (default: the project's)."),
    max_parallel: int = typer.Option(
        0, "--max-parallel", min=0, help="Tasks at once for this goal."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON, no live view."),
    allow_dirty: bool = typer.Option(
        False, "--allow-dirty", help="Go ahead despite uncommitted changes (they are not used)."
    ),
    scenario: str = typer.Option(
        "", "--scenario", help="Scenario file for the scripted planner and backend."
    ),
    model: str = typer.Option(
        "",
        "--model",
        help="Model for every role, as provider:model (e.g. anthropic:claude-sonnet-4-6).",
    ),
    planner_model: str = typer.Option(
        "", "--planner-model", help="Model for planning (and recovery), if not --model's."
    ),
    explore: int = typer.Option(
        0, "--explore", min=0, max=10, help="Best of N: attempts of every task in parallel."
    ),
    explore_mode: str = typer.Option(
        "", "--explore-mode", help='"all" (wait for every attempt) or "first" (first to pass).'
    ),
    portfolio: str = typer.Option(
        "",
        "--portfolio",
        help='Backends to spread the attempts over, e.g. "claude-code:sonnet,codex".',
    ),
    server: str = server_option(),
    token: str = token_option(),
) -> None:
    """Plan GOAL on a repository, run it through agents, validate, commit, and open a PR."""
    request = GoalRequest(
        title=goal,
        backend=backend,
        max_parallel=max_parallel,
        allow_dirty=allow_dirty,
        explore=explore,
        explore_mode=explore_mode,
        portfolio=tuple(part.strip() for part in portfolio.split(",") if part.strip()),
    )
    if server:
        if scenario or model or planner_model:
            raise UserError(
                "--scenario, --model and --planner-model are the daemon's settings (give them to "
                "`blitz serve` or put them in blitz.toml), not --server's"
            )
        from blitz.cli.remote import run_remote  # the HTTP client, only when asked for

        code = run_remote(server, token, repo=repo, request=request, plan=plan, json_out=json_out)
        raise typer.Exit(code)
    if plan is not None:
        request = dataclasses.replace(request, plan=partial(load_plan_file, plan))
    blitz = make_app(scenario_path=scenario, model=model, planner_model=planner_model)
    code = asyncio.run(_run(blitz, repo, request, json_out))
    raise typer.Exit(code)


async def _run(blitz: App, repo: Path, request: GoalRequest, json_out: bool) -> int:
    try:
        engine = blitz.engine(return_when_blocked=True)
        submitted = await actions.new_goal(
            blitz,
            engine,
            repo,
            request,
            no_planner_hint="Or run a plan you wrote with --plan FILE (docs/plan-format.md).",
        )
        project, goal = submitted.project, submitted.goal
        if not json_out:
            out.print(
                f"goal [bold]{goal.id}[/] on {project.name} ({project.path}), branch {goal.branch}"
            )
        async with live_view(engine, [goal.id], enabled=not json_out):
            finished = await engine.run()
        if goal.id not in finished:
            reason = engine.blocked().get(goal.id, "paused")
            raise ConfigError(
                f"project {project.name} is paused: {reason}\n"
                f"Goal {goal.id} is kept: fix that, then run `blitz projects resume "
                f"{project.name}` and `blitz resume`."
            )
        final = finished[goal.id]
        if goal.id in engine.user_errors:
            raise engine.user_errors[goal.id]
        report(blitz, final, json_out=json_out)
        return 0 if final.state is GoalState.SUCCEEDED else 1
    finally:
        await blitz.aclose()


@app.command()
def resume(
    json_out: bool = typer.Option(False, "--json", help="Print results as JSON, no live view."),
    scenario: str = typer.Option("", "--scenario", help="Scenario file for the scripted fakes."),
) -> None:
    """Continue every unfinished goal whose process is gone (after a crash or a kill)."""
    code = asyncio.run(_resume(json_out, scenario))
    raise typer.Exit(code)


async def _resume(json_out: bool, scenario: str) -> int:
    blitz = make_app(scenario_path=scenario)
    try:
        unfinished = [
            g
            for g in blitz.store.list_goals()
            if g.state not in GOAL_DONE and g.state is not GoalState.AWAITING_APPROVAL
        ]
        # Claimed one by one (a compare-and-swap each): of several processes resuming at once,
        # each goal goes to one.
        engine, orphans = blitz.engine(), []
        for g in unfinished:
            lease = blitz.store.lease(g.id)
            if not orphaned(g, lease, owner=engine.ownership.owner, ttl=engine.ownership.ttl):
                continue
            try:
                await engine.resume(g)
            except GoalTaken:
                continue
            orphans.append(g)
            if not json_out:
                out.print(f"resuming {g.id} ({g.state.value}): {g.title}")
        if not orphans:
            msg = "nothing to resume"
            if unfinished:
                msg += f" ({len(unfinished)} goal(s) still running in another process)"
            out.print(msg) if not json_out else print_json({"resumed": []})
            return 0
        ids = [g.id for g in orphans]
        async with live_view(engine, ids, enabled=not json_out):
            finished = await engine.run()
        ok = True
        for goal_id in ids:
            final = finished.get(goal_id) or blitz.store.get_goal(goal_id)
            assert final is not None
            ok = ok and final.state is GoalState.SUCCEEDED
            report(blitz, final, json_out=json_out)
        return 0 if ok else 1
    finally:
        await blitz.aclose()


@app.command()
def cancel(goal: str = typer.Argument(..., help="Goal id (or a unique prefix).")) -> None:
    """Cancel a goal: queued tasks are dropped, running agents are stopped."""
    blitz = make_app()
    try:
        done = asyncio.run(actions.cancel(blitz, None, goal, "cancelled by `blitz cancel`"))
        if done.applied is Applied.QUEUED:
            # Another process drives it: wait a while for it to stop its agents.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = blitz.store.get_goal(done.goal.id)
                if now is not None and now.state in GOAL_DONE:
                    out.print(f"goal {done.goal.id} {styled(now.state.value)}")
                    return
                time.sleep(0.2)
            out.print(f"cancel requested; goal {done.goal.id} is stopping its running agents")
            return
        out.print(f"goal {done.goal.id} {styled('cancelled')}")
    finally:
        blitz.store.close()
