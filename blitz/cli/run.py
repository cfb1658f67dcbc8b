"""``blitz run``, ``blitz resume`` and ``blitz cancel``."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from functools import partial
from pathlib import Path

import typer
from rich.markup import escape

from blitz import actions, executors
from blitz.actions import Applied, GoalRequest
from blitz.app import App
from blitz.backends.availability import require
from blitz.cli.common import (
    app,
    err,
    make_app,
    out,
    print_json,
    report,
    server_option,
    styled,
    token_option,
)
from blitz.cli.live import live_view
from blitz.cli.options import app_for, run_options
from blitz.conductor import Engine
from blitz.conductor.ownership import GoalTaken
from blitz.conductor.publishing import PENDING
from blitz.conductor.resume import INTERRUPTED, interrupt, resumable
from blitz.domain import GOAL_DONE, Goal, GoalState
from blitz.errors import ConfigError, UserError
from blitz.planner import load_plan_file
from blitz.run_options import RunOptions, resumed_with
from blitz.store.leases import orphaned


@app.command()
@run_options
def run(
    goal: str = typer.Argument(..., help="What you want done, in plain words."),
    repo: Path = typer.Option(
        Path("."), "--repo", help="The repository (registered on first use)."
    ),
    plan: Path | None = typer.Option(
        None, "--plan", help="Run this plan file (YAML or JSON) instead of planning."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON, no live view."),
    allow_dirty: bool = typer.Option(
        False, "--allow-dirty", help="Go ahead despite uncommitted changes (they are not used)."
    ),
    follows: str = typer.Option(
        "",
        "--follows",
        metavar="GOAL",
        help="Continue an ended goal: work on its branch and update its pull request.",
    ),
    server: str = server_option(),
    token: str = token_option(),
    *,
    options: RunOptions,
) -> None:
    """Plan GOAL on a repository, run it through agents, validate, commit, and open a PR
    (with --follows: add to an earlier goal's branch and pull request)."""
    request = GoalRequest(
        title=goal,
        backend=options.backend,
        max_parallel=options.max_parallel,
        allow_dirty=allow_dirty,
        explore=options.explore,
        explore_mode=options.explore_mode,
        portfolio=options.portfolio,
        follows=follows,
    )
    if server:
        if options.scenario or options.models:
            raise UserError(
                "--scenario and the models are the daemon's settings (set them where it runs: "
                "BLITZ_MODEL and the like, or [models] in blitz.toml), not --server's"
            )
        from blitz.cli.remote import run_remote  # the HTTP client, only when asked for

        code = run_remote(server, token, repo=repo, request=request, plan=plan, json_out=json_out)
        raise typer.Exit(code)
    if plan is not None:
        request = dataclasses.replace(request, plan=partial(load_plan_file, plan))
    code = asyncio.run(_run(app_for(options), repo, request, json_out))
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
                f"goal [bold]{goal.id}[/] on "
                + escape(f"{project.name} ({project.path}), branch {goal.branch}")
                + escape(f", following {goal.follows}" if goal.follows else "")
            )
        async with live_view(engine, [goal.id], enabled=not json_out):
            finished = await drive(engine)
        if goal.id not in finished:
            if goal.id in blitz.store.lost():
                raise UserError(
                    f"goal {goal.id} was taken over by another process; follow it there "
                    f"(`blitz status {goal.id}`)"
                )
            reason = engine.blocked().get(goal.id, "paused")
            raise ConfigError(
                f"project {project.name} is paused: {reason}\n"
                f"Goal {goal.id} is kept: fix that, then run `blitz projects resume "
                f"{project.name}` and `blitz resume`."
            )
        final = finished[goal.id]
        if goal.id in engine.user_errors:
            raise engine.user_errors[goal.id]
        return 0 if reported(blitz, final, json_out) else 1
    finally:
        await blitz.aclose()


@app.command()
@run_options
def resume(
    json_out: bool = typer.Option(False, "--json", help="Print results as JSON, no live view."),
    *,
    options: RunOptions,
) -> None:
    """Continue every unfinished goal whose process is gone (after a crash or a kill), as it
    was started; the options given here override how it was started, for good."""
    code = asyncio.run(_resume(json_out, options))
    raise typer.Exit(code)


async def _resume(json_out: bool, options: RunOptions) -> int:
    blitz = app_for(options)
    try:
        unfinished = [g for g in blitz.store.list_goals() if resumable(g)]
        # Claimed one by one (a compare-and-swap each): of several processes resuming at once,
        # each goal goes to one. The options given here are stored once the goal is ours.
        engine, orphans, refused = blitz.engine(), [], []
        for g in unfinished:
            lease = blitz.store.lease(g.id)
            if not orphaned(g, lease, owner=engine.ownership.owner, ttl=engine.ownership.ttl):
                continue
            unusable = await _cannot_run(blitz, g, options)
            if unusable:  # left as it is, for a resume that can run it (nothing paused)
                refused.append(g.id)
                err.print(f"not resuming {g.id}: {unusable}", markup=False)
                continue
            try:
                g = _resumed_with(blitz, engine.ownership.take(g), options)
                await blitz.store.flush()
                await engine.resume(g)
            except GoalTaken:
                continue
            orphans.append(g)
            if not json_out:
                out.print(f"resuming {g.id} ({g.state.value}): {g.title}", markup=False)
        if not orphans and refused:
            return 2
        if not orphans:
            msg = "nothing to resume"
            if unfinished:
                msg += f" ({len(unfinished)} goal(s) still running in another process)"
            out.print(msg, markup=False) if not json_out else print_json({"resumed": []})
            return 0
        ids = [g.id for g in orphans]
        async with live_view(engine, ids, enabled=not json_out):
            finished = await drive(engine)
        ok = True
        for goal_id in ids:
            final = finished.get(goal_id) or blitz.store.get_goal(goal_id)
            assert final is not None
            ok = reported(blitz, final, json_out) and ok
        return 0 if ok and not refused else 1
    finally:
        await blitz.aclose()


async def _cannot_run(blitz: App, goal: Goal, options: RunOptions) -> str:
    """Why ``goal``'s backend (or one of its portfolio), as ``resume`` would run it, cannot run
    here; "" when it can, or when the goal has nothing left for an agent (it only publishes)."""
    project = blitz.store.get_project(goal.project_id)
    agents_left = (GoalState.PLANNING, GoalState.AWAITING_APPROVAL, GoalState.RUNNING)
    if project is None or goal.state not in agents_left:
        return ""
    if not executors.runs_here(blitz.executor):  # the cluster's workers offer their backends
        return ""
    resumed = resumed_with(blitz, project, goal, options)
    for spec in (resumed.backend, *resumed.portfolio):
        name, _, model = spec.partition(":")
        try:
            await require(name, blitz.options_for(project, name, model, resumed))
        except ConfigError as exc:
            return str(exc).replace("\n", " ")
    return ""


def reported(blitz: App, goal: Goal, json_out: bool) -> bool:
    """Print how ``goal`` ended; whether it did all it was asked (its pull request too)."""
    report(blitz, goal, json_out=json_out)
    if goal.publish_state == PENDING and not json_out:
        out.print(
            f"  [yellow]publishing pending[/] after {goal.publish_attempts} tries: "
            f"{escape(goal.publish_error)}\n  `blitz publish {goal.id}` tries again"
        )
    return goal.state is GoalState.SUCCEEDED and goal.publish_state != PENDING


async def drive(engine: Engine) -> dict[str, Goal]:
    """Run the engine; on Ctrl-C (the run is cancelled) record its goals as interrupted and
    say how to continue them, before the command exits with 130."""
    try:
        return await engine.run()
    except asyncio.CancelledError:
        runs = list(engine.runs.values())
        for run in runs:
            interrupt(run)
        await engine.store.flush()
        for run in runs:
            engine.store.release(run.goal.id)  # nobody's now: `blitz resume` takes it at once
            print(
                f"goal {run.goal.id} interrupted: continue it with `blitz resume`",
                file=sys.stderr,
                flush=True,
            )
        raise


def _resumed_with(blitz: App, goal: Goal, options: RunOptions) -> Goal:
    """``goal`` as it resumes: with the options given to ``resume`` over its own, stored."""
    project = blitz.store.get_project(goal.project_id)
    if project is None:
        return goal  # the engine says so
    resumed = resumed_with(blitz, project, goal, options)
    if resumed.error == INTERRUPTED:
        resumed = resumed.evolve(error="")
    if resumed != goal:
        blitz.store.write(resumed)
    return resumed


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
