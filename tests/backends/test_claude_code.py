"""The Claude Code backend end to end: the real ``claude`` CLI bundled with claude-agent-sdk talks
to a scripted model server on 127.0.0.1 and changes a real git worktree."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import Sink, assert_script_done, task
from claude_helpers import KEY, QUICK, backend
from engine_helpers import (
    CALC,
    MUL,
    MUL_TEST,
    PYTHON,
    UNITTEST,
    assert_engine_invariants,
    branch_commits,
    git,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used by the engine test
    make_app,
    make_repo,
    of_kind,
    run_one,
)

from blitz.backends.claude_code import PROVIDER_BREAKER
from blitz.backends.registry import BackendOptions, create_backend
from blitz.breaker import BreakerBoard
from blitz.domain import GoalState
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A HOME of the test's own for the CLI (which the CLI inherits): its Bash tool sources
    ``~/.bashrc``, and the machine's must not run in tests."""
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "input": args}


def reply(*calls: dict[str, Any], text: str | None = None, **condition: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"tool_calls": list(calls)}
    if text is not None:
        answer["text"] = text
    return {**condition, "reply": answer}


# -- the real CLI ---------------------------------------------------------------------------------


async def test_the_cli_writes_edits_and_runs_a_command_in_the_worktree(
    server: ModelServer, worktree: Path
) -> None:
    usage = {"input": 100, "output": 20, "cached": 50, "cache_write": 10}
    check = "python3 -c 'import hello; print(hello.hello())'"
    server.add(
        # Each turn answers the request carrying the result of the call before it.
        {
            "match": "Task t1: Add hello.py",
            "reply": {
                "text": "I will add the function.",
                "tool_calls": [call("Write", file_path="hello.py", content="def hello():\n")],
                "usage": usage,
            },
        },
        {
            "match_tool_result": "File created successfully",
            "reply": {
                "tool_calls": [
                    call(
                        "Edit",
                        file_path=str(worktree / "hello.py"),
                        old_string="def hello():\n",
                        new_string="def hello():\n    return 'hello'\n",
                    )
                ],
                "usage": usage,
            },
        },
        {
            "match_tool_result": "has been updated successfully",
            "reply": {"tool_calls": [call("Bash", command=check)], "usage": usage},
        },
        {
            "match_tool_result": "\nhello",
            "reply": {"text": "Added hello(), which returns 'hello'.", "usage": usage},
        },
    )
    sink = Sink()
    request = task(worktree, model="anthropic:claude-sonnet-4-6")

    result = await backend(server).run(request, sink)

    assert result.ok, result.error
    assert result.summary == "Added hello(), which returns 'hello'."
    assert (worktree / "hello.py").read_text() == "def hello():\n    return 'hello'\n"
    # Shown live: the start, what the model said, each call with its key input, brief results.
    assert sink.messages[0].startswith("Claude Code 2.")
    assert "permission mode acceptEdits" in sink.messages[0]
    for shown in ("I will add the function.", "Write hello.py", "Edit hello.py", f"$ {check}"):
        assert shown in sink.messages
    assert "hello" in sink.messages  # the command's output
    assert sink.messages[-1] == "Added hello(), which returns 'hello'."
    assert result.messages == tuple(sink.messages[-20:])
    # Four answers of 160 input tokens (50 read from the cache, 10 written to it), 20 output.
    assert result.usage.input_tokens == 640
    assert result.usage.cached_tokens == 200
    assert result.usage.output_tokens == 80
    assert result.usage.cost_usd > 0
    # The model was asked for the attempt's model, with the task and blitz's rules.
    first = next(r for r in server.requests if r.path == "/v1/messages")
    assert first.body["model"] == "claude-sonnet-4-6"
    assert "Add hello() returning 'hello' in hello.py." in first.text
    assert "This task is one step towards the goal: Greet people" in first.text
    assert f"git worktree made for this task: {worktree.resolve()}" in first.text
    assert "Do not commit" in first.text
    assert_script_done(server)


async def test_a_retry_carries_the_previous_failure_and_the_guidance_and_the_settings_apply(
    server: ModelServer, worktree: Path
) -> None:
    server.add(reply(text="Nothing to do.", match="Advice for this attempt:\nuse the helper"))
    request = task(
        worktree,
        attempt=2,
        previous_failure="tests failed: test_hello",
        guidance="use the helper",
        model="anthropic:claude-sonnet-4-6",
    )
    agent = backend(
        server, model="claude-haiku-4-5", permission_mode="default", disallowed_tools=["Skill"]
    )

    result = await agent.run(request)

    assert result.ok, result.error
    asked = server.requests[0]
    assert "attempt 2" in asked.text and "tests failed: test_hello" in asked.text
    # blitz.toml's model and permission mode win; disallowed tools are not offered at all.
    assert asked.body["model"] == "claude-haiku-4-5"
    assert "permission mode default" in result.messages[0]
    offered = {tool["name"] for tool in asked.body["tools"]}
    assert "Bash" in offered and "Write" in offered
    assert not offered & {"Skill", "ScheduleWakeup", "EnterWorktree", "AskUserQuestion"}
    assert_script_done(server)


async def test_calls_reaching_outside_the_worktree_are_refused(
    server: ModelServer, worktree: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    attempts = [
        call("Write", file_path=str(outside / "absolute.txt"), content="x"),
        call("Write", file_path="../outside/relative.txt", content="x"),
        call("Read", file_path=str(tmp_path / "repo" / "README.md")),
        call("Bash", command=f"echo x > {outside}/redirected.txt"),
        call("Bash", command=f"cd {outside} && touch moved.txt"),
        call("Bash", command="git commit -qam 'sneaky'"),
        call("Write", file_path="inside.txt", content="fine\n"),
    ]
    server.add(
        reply(attempts[0], match="Task t1"),
        *[
            reply(attempt, match_tool_result="Refused by blitz", times=1)
            for attempt in attempts[1:]
        ],
        reply(text="I stayed in the worktree.", match_tool_result="File created successfully"),
    )
    sink = Sink()

    result = await backend(server).run(task(worktree), sink)

    # The attempt still reports; only the call inside the worktree ran.
    assert result.ok, result.error
    assert list(outside.iterdir()) == []
    assert "# demo" not in "\n".join(r.tool_results for r in server.requests)
    assert (worktree / "inside.txt").read_text() == "fine\n"
    assert git(worktree, "rev-list", "--count", "HEAD") == "1"
    refusals = [m for m in sink.messages if m.startswith("error:") and "Refused by blitz" in m]
    assert len(refusals) == 6, sink.text()
    assert any("outside the worktree" in m for m in refusals)
    assert any("blitz commits your changes itself" in m for m in refusals)
    assert_script_done(server)


@pytest.mark.parametrize(("status", "says"), [(529, "Overloaded"), (429, "Rate limit")])
async def test_a_provider_outage_ends_the_attempt_as_one_and_feeds_the_breaker(
    server: ModelServer, worktree: Path, status: int, says: str
) -> None:
    breakers = BreakerBoard(ManualClock())
    server.fail_next(1, status)

    result = await backend(server, breakers=breakers).run(task(worktree))

    # An outage, not the task's crash: the task waits for the provider.
    assert not result.ok and result.unavailable and not result.crashed
    assert not result.config_error
    assert str(status) in result.error and says in result.error
    assert breakers.get(PROVIDER_BREAKER).failures == 1
    assert [r.status for r in server.requests] == [status]


async def test_an_unreachable_provider_is_an_outage(worktree: Path) -> None:
    breakers = BreakerBoard(ManualClock())
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    agent = create_backend(
        "claude-code",
        BackendOptions(
            env={
                "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}",
                "ANTHROPIC_API_KEY": KEY,
                **QUICK,
            },
            breakers=breakers,
        ),
    )

    result = await agent.run(task(worktree))

    assert not result.ok and result.unavailable and not result.crashed
    assert "Connection refused" in result.error
    assert breakers.get(PROVIDER_BREAKER).failures == 1


async def test_a_rejected_key_is_a_configuration_error(server: ModelServer, worktree: Path) -> None:
    breakers = BreakerBoard(ManualClock())
    wrong = "sk-ant-wrong-key-abcdefghijklmnop"

    result = await backend(server, key=wrong, breakers=breakers).run(task(worktree))

    assert not result.ok and not result.crashed
    assert "401" in result.config_error and "ANTHROPIC_API_KEY" in result.config_error
    assert result.error == result.config_error
    # The provider answered: its machinery works.
    assert breakers.get(PROVIDER_BREAKER).failures == 0
    everything = " ".join([result.error, *result.messages])
    assert wrong not in everything and KEY not in everything


async def test_the_turn_limit_fails_the_attempt(server: ModelServer, worktree: Path) -> None:
    server.add(reply(call("Bash", command="echo again"), times=-1))

    result = await backend(server, max_turns=1).run(task(worktree))

    assert not result.ok and not result.crashed and not result.config_error
    assert result.error == "turn limit of 1 reached"


async def test_the_budget_stops_the_attempt(server: ModelServer, worktree: Path) -> None:
    expensive = {"input": 200_000, "output": 1000}
    server.add(
        {
            "reply": {"tool_calls": [call("Bash", command="echo more")], "usage": expensive},
            "times": -1,
        }
    )

    result = await backend(server, max_budget_usd=5.0).run(task(worktree, budget_usd=0.01))

    assert not result.ok and not result.crashed
    assert result.error.startswith("cost limit of $0.01 reached")
    assert result.usage.cost_usd > 0.01
    assert result.usage.input_tokens >= 200_000


# -- through the engine ---------------------------------------------------------------------------


@pytest.mark.usefixtures("isolated_git")
async def test_the_engine_commits_what_claude_code_wrote_once_the_gate_passes(
    tmp_path: Path, server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path, files=CALC, gates={"test": UNITTEST, "timeout": 120})
    toml = (repo / "blitz.toml").read_text()
    (repo / "blitz.toml").write_text(
        toml.replace('backend = "scripted"', 'backend = "claude-code"')
    )
    git(repo, "commit", "-qam", "Let Claude Code do the work")
    # The CLI inherits the provider settings from blitz's environment.
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    plan = {
        "summary": "Multiply numbers",
        "tasks": [
            {
                "id": "mul",
                "title": "Add mul()",
                "instructions": "Add mul(a, b) in calc/mul.py with a unittest.",
                "checks": [
                    {
                        "kind": "command",
                        "command": f"{PYTHON} -c 'from calc.mul import mul; print(mul(4, 5))'"
                        " | grep -qx 20",
                    }
                ],
            }
        ],
    }
    server.add(
        reply(
            call("Write", file_path="calc/mul.py", content=MUL),
            call("Write", file_path="tests/test_mul.py", content=MUL_TEST),
            match="Task mul: Add mul()",
        ),
        reply(call("Bash", command=UNITTEST), match_tool_result="tests/test_mul.py"),
        reply(text="Added calc/mul.py and its test.", match_tool_result="\nOK"),
    )
    app = make_app(tmp_path / "home", plan)
    try:
        _, goal = await run_one(app, repo, "Multiply numbers")

        assert goal.state is GoalState.SUCCEEDED, goal
        commits = branch_commits(repo, goal.branch)
        assert [c.tasks for c in commits] == [("mul",)]
        assert git(repo, "show", f"{goal.branch}:calc/mul.py") + "\n" == MUL
        assert git(repo, "show", f"{goal.branch}:tests/test_mul.py") + "\n" == MUL_TEST
        assert_engine_invariants(app, repo, goal)
        attempts = app.store.load_attempts(goal.id)
        assert [(a.backend, a.state) for a in attempts] == [("claude-code", "succeeded")]
        assert attempts[0].summary == "Added calc/mul.py and its test."
        shown = [e.message for e in of_kind(goal_events(app, goal.id), "agent.message")]
        assert "Write calc/mul.py" in shown and f"$ {UNITTEST}" in shown
        assert git(repo, "status", "--porcelain") == ""  # the user's checkout is untouched
        assert_script_done(server)
    finally:
        await app.aclose()
