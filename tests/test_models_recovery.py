"""A recovery the model never gets right, end to end: the real ``blitz`` command and SDKs, a
scripted model server on 127.0.0.1 whose every recovery answer is unusable (what small local
models give). The failed task is tried again with its failure shown, not left failed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from model_runs import (
    BUGGY_GREET,
    GREET,
    KEY,
    MODEL,
    RECOVERING,
    ROOT_CAUSE,
    agent_turns,
    anthropic_env,
    assert_script_done,
    blitz,
    gated,
    git,
    greet_turns,
    load_goal,
    of,
    ok,
    plan_turn,
    shout_turns,
    task_trailers,
)

from blitz.llm.planner import RECOVERY_TOOL
from blitz.testing.model_server import ModelServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A committed repository whose blitz.toml runs a quick unittest gate, which the agent's
    finish does not run (the wrong attempt goes to recovery)."""
    return gated(git_repo, gates_on_finish=False)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def test_a_recovery_the_model_never_gets_right_retries_the_task_with_its_failure_shown(
    repo: Path, tmp_path: Path, server: ModelServer
) -> None:
    home = tmp_path / "home"
    unusable = {"root_cause": "It is done.", "action": "finish"}  # no such action
    answer = {"tool_calls": [{"name": RECOVERY_TOOL, "input": unusable}]}
    recovery_usage = {"input": 1500, "output": 80, "cached": 500}
    server.add(
        plan_turn(),
        {
            "match": RECOVERING,
            "times": -1,
            "reply": {**answer, "usage": recovery_usage},
        },
        *agent_turns(),
    )

    done = blitz(
        home, "run", "Add a greet function", "--repo", repo, "--json", **anthropic_env(server)
    )

    result = json.loads(ok(done))
    assert result["state"] == "succeeded", result
    tasks = {t["id"]: (t["state"], t["attempts"]) for t in result["tasks"]}
    assert tasks == {"greet": ("succeeded", 2), "shout": ("succeeded", 1)}
    assert task_trailers(repo, result["branch"]) == ["greet", "shout"]
    # The model was told what was wrong with each answer, as many times as the planner re-asks.
    recovering = of(server, RECOVERING)
    assert len(recovering) >= 4
    assert any("'retry', 'insert', 'replace', 'skip' or 'abort'" in r.text for r in recovering)
    # The second attempt was shown how the first failed: the gate's own output.
    retried = of(server, "attempt 2 at this task")[0].text
    assert "The previous attempt failed" in retried
    assert "'Hello Ada' != 'Hello, Ada!'" in retried

    detail = json.loads(ok(blitz(home, "status", result["goal"], "--json")))
    ((task, action, root_cause),) = [
        (r["task"], r["action"], r["root_cause"]) for r in detail["recoveries"]
    ]
    assert (task, action) == ("greet", "retry")
    assert root_cause.startswith("the planner gave no usable recovery (")
    assert "tried again with its failure shown" in root_cause
    # Every unusable answer was paid for and is kept on the goal.
    goal, _ = load_goal(home, result["goal"])
    assert goal.usage.input_tokens == 3000 + 2000 * len(recovering)
    assert_script_done(server)


def test_a_recoverys_new_task_may_take_only_a_route_the_goal_offers(
    git_repo: Path, tmp_path: Path, server: ModelServer
) -> None:
    # Qwen2.5-Coder-1.5B's recovery gave its new task "model": "python" (bench/local_model.py,
    # session 16), and the goal stopped on the unknown model. With a second agent configured the
    # planner is offered a choice; a route not offered is sent back, as a plan's is.
    repo = gated(git_repo, gates_on_finish=False)
    with (repo / "blitz.toml").open("a") as toml:
        toml.write('\n[backends.mine]\ncommand = ["true"]\n')
    git(repo, "commit", "-qam", "A second agent")
    home = tmp_path / "home"
    fixed = {
        "id": "greet-fix",
        "title": "Fix greet()",
        "instructions": "Make greet(name) return 'Hello, NAME!' in greet.py, with its test.",
    }

    def recovery(task: dict[str, str]) -> dict[str, Any]:
        answer = {"root_cause": ROOT_CAUSE, "action": "replace", "tasks": [task]}
        return {"tool_calls": [{"name": RECOVERY_TOOL, "input": answer}]}

    server.add(
        plan_turn(),
        {"match": RECOVERING, "reply": recovery({**fixed, "model": "python"})},
        {"match": "is not one of the choices", "reply": recovery(fixed)},
        *greet_turns("Task greet-fix:", GREET, run=False),
        *greet_turns("Task greet:", BUGGY_GREET, run=False),
        *shout_turns(),
    )

    done = blitz(
        home, "run", "Add a greet function", "--repo", repo, "--json", **anthropic_env(server)
    )

    result = json.loads(ok(done))
    assert result["state"] == "succeeded", result
    states = {t["id"]: t["state"] for t in result["tasks"]}
    assert states == {"greet": "replaced", "greet-fix": "succeeded", "shout": "succeeded"}
    sent_back = of(server, "is not one of the choices")[0].text
    assert (
        "task 'greet-fix': backend '' with model 'python' is not one of the choices"
        " ('embedded', 'mine')"
    ) in sent_back
    # The new task ran on the goal's own agent and model.
    (fixing,) = [r for r in of(server, "Task greet-fix:")][:1]
    assert fixing.body["model"] == MODEL.partition(":")[2]
    assert_script_done(server)
