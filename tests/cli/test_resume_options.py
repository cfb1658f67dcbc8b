"""``blitz resume`` runs a goal the way it was started: a real ``blitz run --model`` process
killed with BLITZ_CRASH_AT, then ``blitz resume`` against the same scripted model server, with
no options (the goal's own models) and with an override (stored for the next resume)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_runs import (
    GREET,
    KEY,
    MODEL,
    assert_script_done,
    blitz,
    greet_turns,
    load_goal,
    ok,
    plan_turn,
    shout_turns,
    task_trailers,
)

from blitz.testing.model_server import ModelServer
from blitz.testing.turns import SeenRequest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OTHER_MODEL = "anthropic:claude-haiku-4-5"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def keys_only(server: ModelServer) -> dict[str, str]:
    """Provider keys and address, but no model: the model is only ever on the command line."""
    return {"ANTHROPIC_BASE_URL": server.anthropic_base_url, "ANTHROPIC_API_KEY": KEY}


def killed_after_greet(home: Path, repo: Path, server: ModelServer) -> str:
    """``blitz run --model`` killed once greet's commit is on the goal branch, before the
    store heard of it; the goal's id."""
    server.add(plan_turn(), *greet_turns("Task greet:", GREET, run=False))
    done = blitz(
        home, "run", "Add a greet function", "--repo", repo, "--model", MODEL, "--json",
        BLITZ_CRASH_AT="before_store_write", **keys_only(server),
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, (done.stdout, done.stderr)
    (goal,) = json.loads(ok(blitz(home, "status", "--json")))
    return str(goal["id"])


def models_of(requests: list[SeenRequest], marker: str) -> set[str]:
    return {r.body.get("model", "") for r in requests if marker in r.text}


def test_resume_runs_the_goal_on_the_models_it_was_started_with(
    repo: Path, home: Path, server: ModelServer
) -> None:
    goal_id = killed_after_greet(home, repo, server)
    goal, _ = load_goal(home, goal_id)
    assert goal.model_for("planner") == MODEL and goal.model_for("agent") == MODEL
    server.add(*shout_turns())

    resumed = blitz(home, "resume", "--json", **keys_only(server))

    result = json.loads(ok(resumed))
    assert result["state"] == "succeeded", result
    assert task_trailers(repo, result["branch"]) == ["greet", "shout"]
    assert_script_done(server)
    assert models_of(server.requests, "Task shout:") == {MODEL.partition(":")[2]}
    # The attempt whose commit landed before the kill is recorded as the one that succeeded.
    _, attempts = load_goal(home, goal_id)
    assert [(a.task_id, a.state.value) for a in attempts] == [
        ("greet", "succeeded"),
        ("shout", "succeeded"),
    ]
    greet_commit = {t["id"]: t["commit"] for t in result["tasks"]}["greet"]
    assert attempts[0].commit == greet_commit


def test_resume_with_a_model_overrides_the_goals_and_keeps_it(
    repo: Path, home: Path, server: ModelServer
) -> None:
    goal_id = killed_after_greet(home, repo, server)
    server.add(*shout_turns())

    resumed = blitz(home, "resume", "--json", "--agent-model", OTHER_MODEL, **keys_only(server))

    assert json.loads(ok(resumed))["state"] == "succeeded"
    assert models_of(server.requests, "Task shout:") == {OTHER_MODEL.partition(":")[2]}
    goal, _ = load_goal(home, goal_id)
    assert goal.model_for("agent") == OTHER_MODEL
    assert goal.model_for("planner") == MODEL  # not overridden: as started
