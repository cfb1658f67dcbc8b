"""The embedded agent's finish runs the project's gates, end to end: the real ``blitz run``, the
real SDK, a scripted model server on 127.0.0.1. A first try the test gate faults is fixed in the
same attempt, with no recovery (``[agent] gates_on_finish``, on by default)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_runs import (
    BUGGY_GREET,
    GREET,
    GREET_AND_SHOUT,
    GREET_TEST,
    KEY,
    RECOVERING,
    TEST_GATE,
    anthropic_env,
    assert_script_done,
    blitz,
    call,
    finish,
    gated,
    git,
    of,
    ok,
    plan_turn,
    reply,
    shout_turns,
)

from blitz.testing.model_server import ModelServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A committed repository whose blitz.toml runs a quick unittest gate."""
    return gated(git_repo)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def test_a_wrong_first_try_is_fixed_in_the_same_attempt_when_the_finish_runs_the_gate(
    repo: Path, home: Path, server: ModelServer
) -> None:
    # The same buggy greet as above, but the agent's finish runs the project's test gate (the
    # default): its failure comes back to the agent, which fixes greet in the same attempt.
    told = "the project's test check fails"
    server.add(
        plan_turn(),
        reply(
            call("write_file", path="greet.py", content=BUGGY_GREET),
            call("write_file", path="tests/test_greet.py", content=GREET_TEST),
            match="Task greet:",
        ),
        reply(finish("Added greet()."), match="Task greet:", match_tool_result="wrote"),
        reply(call("write_file", path="greet.py", content=GREET), match=told),
        reply(finish("Fixed greet()."), match=told, match_tool_result=f"wrote {len(GREET)} bytes"),
        *shout_turns(),
    )

    done = blitz(
        home, "run", "Add a greet function", "--repo", repo, "--json", **anthropic_env(server)
    )

    result = json.loads(ok(done))
    assert result["state"] == "succeeded", result
    tasks = {t["id"]: (t["state"], t["attempts"]) for t in result["tasks"]}
    assert tasks == {"greet": ("succeeded", 1), "shout": ("succeeded", 1)}
    assert not of(server, RECOVERING)  # no recovery was needed
    (first,) = [r for r in of(server, "Task greet:") if told not in r.text][:1]
    assert f"- test: `{TEST_GATE}`" in first.text  # the agent was told the gate
    sent_back = of(server, told)[0].text
    assert "'Hello Ada' != 'Hello, Ada!'" in sent_back  # with the gate's own output
    assert git(repo, "show", f"{result['branch']}:greet.py") == GREET_AND_SHOUT
    assert_script_done(server)
