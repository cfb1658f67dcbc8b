"""How a goal being resumed takes the options it is resumed with (``run_options``), on a real
app, store and repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_helpers import make_repo, task, write

from blitz.app import App
from blitz.errors import UserError
from blitz.run_options import RunOptions, resumed_with

pytestmark = pytest.mark.usefixtures("isolated_git")

SCENARIO: dict[str, Any] = {"tasks": [task("a")], "agent": {"a": [[write("a.txt", "a\n")]]}}
MODEL = "anthropic:claude-sonnet-4-6"


async def test_a_goal_keeps_its_models_and_takes_the_overrides_it_is_resumed_with(
    apps: Any, tmp_path: Path
) -> None:
    app: App = apps(SCENARIO, anthropic_api_key="not-used", openai_api_key="not-used")
    app.models.update(default=MODEL, judge="openai:gpt-5")
    project = await app.register(make_repo(tmp_path))
    goal = await app.new_goal(project, "Write a", explore=2)
    assert goal.models == (
        f"planner={MODEL}",
        f"recovery={MODEL}",
        f"agent={MODEL}",
        "judge=openai:gpt-5",
    )

    # Another process, without the command line's models: the goal's own are used.
    app.models.clear()
    assert app.model_name("agent", project, goal) == MODEL
    assert app.model_name("agent", project) == ""
    assert resumed_with(app, project, goal, RunOptions()) == goal

    app.models.update(agent="openai:gpt-5-mini")
    resumed = resumed_with(
        app, project, goal, RunOptions(explore=3, explore_mode="first", max_parallel=2)
    )
    assert resumed.model_for("agent") == "openai:gpt-5-mini"
    assert resumed.model_for("planner") == MODEL
    assert (resumed.explore, resumed.explore_mode, resumed.max_parallel) == (3, "first", 2)
    assert resumed_with(app, project, goal, RunOptions(explore=1)).explore == 0

    with pytest.raises(UserError, match="explore mode"):
        resumed_with(app, project, goal, RunOptions(explore_mode="some"))
    with pytest.raises(UserError, match="between 1 and 10"):
        resumed_with(app, project, goal, RunOptions(explore=11))
