"""What the commands share: settings, the app, options, and output helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from blitz.cli.console import RedactedConsole
from blitz.cli.lazy import app as app  # the command line, the command modules add to it
from blitz.environment import read_environment
from blitz.events import headline
from blitz.redact import redact_data, redact_log_records, register_secret

if TYPE_CHECKING:  # what a command needs is imported when it runs (blitz/cli/lazy.py)
    from blitz.app import App
    from blitz.domain import Goal
    from blitz.settings import ExecutorSettings
    from blitz.store.reader import StoreReads
    from blitz.store.sql import SqlStore

out = RedactedConsole(highlight=False)
"""Standard output: every command prints through it (or :func:`print_json`), redacted."""

err = RedactedConsole(stderr=True)
"""Standard error: errors and warnings, redacted."""

redact_log_records()  # whatever a command logs, the daemon's uvicorn included, is redacted too

TOKEN_ENV = "BLITZ_SERVER_TOKEN"


def make_app(
    *,
    scenario_path: str = "",
    model: str = "",
    planner_model: str = "",
    executor: ExecutorSettings | None = None,
) -> App:
    """The app for one command; ``scenario_path`` (or BLITZ_SCENARIO) feeds the scripted fakes;
    ``model`` and ``planner_model`` are --model and --planner-model; ``executor`` overrides the
    settings' ``[executor]`` (``blitz serve --executor``)."""
    from blitz.app import App
    from blitz.settings import Settings

    settings = Settings() if executor is None else Settings(executor=executor)
    path = scenario_path or settings.scenario
    scenario = None
    if path:
        from blitz.testing.scripted import Scenario  # the fakes, only when a scenario is given

        scenario = Scenario.load(Path(path))
    models = {"default": model, "planner": planner_model}
    return App(settings, scenario=scenario, models={k: v for k, v in models.items() if v})


def _store_url() -> str:
    """The store's URL from the environment (:mod:`blitz.environment`: no pydantic), the
    settings' secrets registered for redaction as the app does, the home made."""
    found = read_environment()
    for secret in found.secrets:
        register_secret(secret)
    found.home.mkdir(parents=True, exist_ok=True)
    return found.database_url


def open_store() -> SqlStore:
    """The store alone, for commands that use it without running goals: none of what running
    goals needs (the engine, backends, models) is imported."""
    from blitz.store.sql import SqlStore

    return SqlStore(_store_url())


def open_reader() -> StoreReads:
    """What ``status`` and ``events`` read of the store; on SQLite without SQLAlchemy
    (:mod:`blitz.store.reader`)."""
    from blitz.store.reader import open_reader as open_for_reading

    return open_for_reading(_store_url())


def server_option() -> str:
    return typer.Option("", "--server", help="A blitz daemon's URL: do it there, over its API.")


def token_option() -> str:
    return typer.Option(
        "", "--token", envvar=TOKEN_ENV, help=f"The daemon's token (or ${TOKEN_ENV})."
    )


def print_json(data: Any, *, indent: int | None = 2) -> None:
    """Print ``data`` as JSON, its strings redacted (and the text, for what ``str`` made)."""
    out.echo(json.dumps(redact_data(data), indent=indent, default=str))


STATE_STYLE = {
    "pending": "dim",
    "ready": "cyan",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "crashed": "magenta",
    "skipped": "dim yellow",
    "replaced": "blue",
    "cancelled": "dim",
    "planning": "cyan",
    "awaiting_approval": "cyan",
    "finishing": "yellow",
}


def styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, '')}]{state}[/]"


REPORTED = ("id", "title", "state", "commit", "attempts", "origin", "reason")
"""A task's fields in the report of how a goal ended."""


def report(blitz: App, goal: Goal, *, json_out: bool) -> None:
    """Print how a goal run here ended: its tasks, and where the pull request or its
    description is."""
    tasks = [
        {
            "id": t.id,
            "title": t.title,
            "state": t.state.value,
            "commit": t.commit,
            "attempts": t.attempts,
            "origin": t.origin,
            "reason": t.reason,
        }
        for t in blitz.store.load_tasks(goal.id)
    ]
    print_report(
        {
            "id": goal.id,
            "title": goal.title,
            "state": goal.state.value,
            "branch": goal.branch,
            "error": goal.error,
            "pr_url": goal.pr_url,
            "tasks": tasks,
        },
        json_out=json_out,
    )


def print_report(goal: dict[str, Any], *, json_out: bool) -> None:
    """Print how a goal ended, from its fields as the API answers them (a goal run by a daemon,
    or by this process through :func:`report`)."""
    tasks = goal["tasks"]
    if json_out:
        print_json(
            {
                "goal": goal["id"],
                "title": goal["title"],
                "state": goal["state"],
                "branch": goal["branch"],
                "error": goal["error"],
                "pr": goal["pr_url"],
                "tasks": [{k: t[k] for k in REPORTED} for t in tasks],
            }
        )
        return
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    out.print(f"\ngoal {goal['id']} {styled(str(goal['state']))}: {summary}")
    if goal["error"]:
        out.print(f"  {goal['error']}", markup=False)
    for t in tasks:
        if t["state"] == "failed" or (t["state"] == "skipped" and t["reason"]):
            out.print(
                f"  {escape(t['id'])}: {styled(t['state'])} - " + escape(headline(t["reason"]))
            )
    out.print(f"  branch: {goal['branch']}", markup=False)
    pr = str(goal["pr_url"])
    if pr:
        label = "pull request" if pr.startswith("http") else "pull request description"
        out.print(f"  {label}: {pr}", markup=False)
