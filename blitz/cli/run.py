"""``blitz run``, ``blitz resume`` and ``blitz cancel``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from blitz.app import App
from blitz.backends.registry import NO_MODEL
from blitz.cli import app
from blitz.cli.common import make_app, out, print_json, styled
from blitz.cli.live import live_view
from blitz.cli.serve import run_remote, server_option, token_option
from blitz.conductor import runner_alive
from blitz.domain import GOAL_DONE, Goal, GoalState, TaskState
from blitz.errors import ConfigError, UserError
from blitz.events import Event, EventKind
from blitz.planner import load_plan_file


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
    if server:
        if scenario or model or planner_model:
            raise UserError(
                "--scenario, --model and --planner-model are the daemon's settings (give them to "
                "`blitz serve` or put them in blitz.toml), not --server's"
            )
        code = run_remote(
            server,
            token,
            title=goal,
            repo=repo,
            plan=plan,
            backend=backend,
            max_parallel=max_parallel,
            allow_dirty=allow_dirty,
            json_out=json_out,
            explore=Explore(explore, explore_mode, _specs(portfolio)),
        )
        raise typer.Exit(code)
    code = asyncio.run(
        _run(
            goal,
            repo,
            plan,
            backend,
            max_parallel,
            json_out,
            allow_dirty,
            make_app(scenario_path=scenario, model=model, planner_model=planner_model),
            Explore(explore, explore_mode, _specs(portfolio)),
        )
    )
    raise typer.Exit(code)


@dataclass(frozen=True, slots=True)
class Explore:
    """``--explore``, ``--explore-mode`` and ``--portfolio`` as given."""

    attempts: int = 0
    mode: str = ""
    portfolio: tuple[str, ...] = ()


def _specs(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


async def _run(
    title: str,
    repo: Path,
    plan_path: Path | None,
    backend: str,
    max_parallel: int,
    json_out: bool,
    allow_dirty: bool,
    blitz: App,
    explore: Explore = Explore(),
) -> int:
    try:
        project = await blitz.register(repo)
        plan = None
        if plan_path is not None:
            plan = load_plan_file(plan_path, max_tasks=blitz.limits(project).max_tasks)
        elif not blitz.has_planner(project):
            raise ConfigError(
                NO_MODEL + "\nOr run a plan you wrote with --plan FILE (docs/plan-format.md)."
            )
        goal = await blitz.new_goal(
            project,
            title,
            backend=backend,
            max_parallel=max_parallel,
            allow_dirty=allow_dirty,
            explore=explore.attempts,
            explore_mode=explore.mode,
            portfolio=explore.portfolio,
        )
        engine = blitz.engine(return_when_blocked=True)
        engine.start(project, goal, plan=plan)
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


def report(blitz: App, goal: Goal, *, json_out: bool) -> None:
    """Print how a goal ended: its tasks, and where the pull request or its description is."""
    tasks = blitz.store.load_tasks(goal.id)
    if json_out:
        print_json(
            {
                "goal": goal.id,
                "title": goal.title,
                "state": goal.state.value,
                "branch": goal.branch,
                "error": goal.error,
                "pr": goal.pr_url,
                "tasks": [
                    {
                        "id": t.id,
                        "title": t.title,
                        "state": t.state.value,
                        "commit": t.commit,
                        "attempts": t.attempts,
                        "origin": t.origin,
                        "reason": t.reason,
                    }
                    for t in tasks
                ],
            }
        )
        return
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    out.print(f"\ngoal {goal.id} {styled(goal.state.value)}: {summary}")
    if goal.error:
        out.print(f"  {goal.error}")
    for t in tasks:
        if t.state is TaskState.FAILED or (t.state is TaskState.SKIPPED and t.reason):
            out.print(
                f"  {t.id}: {styled(t.state.value)} - "
                + (t.reason.splitlines()[0] if t.reason else "")
            )
    out.print(f"  branch: {goal.branch}")
    if goal.pr_url:
        label = "pull request" if goal.pr_url.startswith("http") else "pull request description"
        out.print(f"  {label}: {goal.pr_url}")


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
        orphans = [g for g in unfinished if not runner_alive(g.runner)]
        if not orphans:
            msg = "nothing to resume"
            if unfinished:
                msg += f" ({len(unfinished)} goal(s) still running in another process)"
            out.print(msg) if not json_out else print_json({"resumed": []})
            return 0
        engine = blitz.engine()
        for g in orphans:
            await engine.resume(g)
            if not json_out:
                out.print(f"resuming {g.id} ({g.state.value}): {g.title}")
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
        found = blitz.store.get_goal(goal)
        if found is None:
            raise UserError(f"no goal {goal!r}")
        if found.state in GOAL_DONE:
            raise UserError(f"goal {found.id} already ended ({found.state.value})")
        if runner_alive(found.runner):
            blitz.store.add_command(found.id, "cancel")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = blitz.store.get_goal(found.id)
                if now is not None and now.state in GOAL_DONE:
                    out.print(f"goal {found.id} {styled(now.state.value)}")
                    return
                time.sleep(0.2)
            out.print(f"cancel requested; goal {found.id} is stopping its running agents")
            return
        # Nobody drives it: cancel it in the store directly.
        for t in blitz.store.load_tasks(found.id):
            if t.state not in (
                TaskState.SUCCEEDED,
                TaskState.SKIPPED,
                TaskState.REPLACED,
                TaskState.CANCELLED,
            ):
                blitz.store.write(t.evolve(state=TaskState.CANCELLED, reason="cancelled"))
        state = found.state
        if state is GoalState.FINISHING:
            raise UserError(f"goal {found.id} is publishing its pull request; resume it instead")
        done = found.evolve(
            state=GoalState.CANCELLED, error="cancelled by `blitz cancel`", finished_at=time.time()
        )
        blitz.store.write(
            done,
            events=[
                Event(
                    kind=EventKind.GOAL_CANCELLED,
                    goal_id=found.id,
                    project_id=found.project_id,
                    message="cancelled by `blitz cancel`",
                )
            ],
        )
        blitz.store.flush_sync()
        out.print(f"goal {found.id} {styled('cancelled')}")
    finally:
        blitz.store.close()
