"""What the commands share: settings, the app, and output helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from blitz.app import App
from blitz.settings import Settings
from blitz.testing.scripted import Scenario

out = Console(highlight=False)


def make_app(*, scenario_path: str = "", model: str = "", planner_model: str = "") -> App:
    """The app for one command; ``scenario_path`` (or BLITZ_SCENARIO) feeds the scripted fakes;
    ``model`` and ``planner_model`` are --model and --planner-model."""
    settings = Settings()
    path = scenario_path or settings.scenario
    scenario = Scenario.load(Path(path)) if path else None
    models = {"default": model, "planner": planner_model}
    return App(settings, scenario=scenario, models={k: v for k, v in models.items() if v})


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


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
