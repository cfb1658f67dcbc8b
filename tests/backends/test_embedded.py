"""The embedded agent, end to end: the real SDKs talk to a scripted model server on 127.0.0.1, and
the agent's tools change a real git worktree and run real commands."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import Sink, assert_script_done, task
from embedded_helpers import (
    ANTHROPIC,
    KEY,
    MODELS,
    PRICES,
    InstantClock,
    backend,
    call,
    finish,
    tool_results,
)
from pydantic_ai.exceptions import IncompleteToolCall
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel

from blitz.backends.embedded import EmbeddedBackend
from blitz.llm import parse_model
from blitz.testing.model_server import ModelServer


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


# -- the happy path -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
async def test_the_agent_writes_edits_runs_a_command_and_finishes(
    server: ModelServer, worktree: Path, model: str
) -> None:
    usage = {"input": 100, "output": 20, "cached": 50}
    check = "python3 -c 'import hello; print(hello.hello())'"
    server.add(
        {
            "match": "Task t1: Add hello.py",
            "reply": {
                "text": "I will add the function.",
                "tool_calls": [
                    call("write_file", path="hello.py", content="def hello():\n    return 'hi'\n")
                ],
                "usage": usage,
            },
        },
        {
            "match_tool_result": "wrote 29 bytes to hello.py",
            "reply": {
                "tool_calls": [call("edit_file", path="hello.py", old="'hi'", new="'hello'")],
                "usage": usage,
            },
        },
        {
            "match_tool_result": "edited hello.py",
            "reply": {"tool_calls": [call("run_command", command=check)], "usage": usage},
        },
        {
            "match_tool_result": "exit code 0\nhello",
            "reply": {"tool_calls": [call("finish", summary="Added hello().")], "usage": usage},
        },
    )
    sink = Sink()

    result = await backend(server, model).run(task(worktree), sink)

    assert result.ok, result.error
    assert result.summary == "Added hello()."
    assert (worktree / "hello.py").read_text() == "def hello():\n    return 'hello'\n"
    # Four responses of 150 input tokens (50 read from the cache) and 20 output tokens each.
    assert result.usage.input_tokens == 600
    assert result.usage.cached_tokens == 200
    assert result.usage.output_tokens == 80
    assert result.usage.cost_usd == pytest.approx((400 * 3 + 200 * 0.3 + 80 * 15) / 1e6)
    assert sink.messages[0] == "I will add the function."
    for shown in ("write_file hello.py", "edit_file hello.py", f"$ {check}"):
        assert shown in sink.messages
    assert "exit code 0\nhello\n" in sink.messages
    assert sink.messages[-1] == "finish: Added hello()."
    assert result.messages == tuple(sink.messages[-20:])
    # The model was told the task and given the tools.
    first = server.requests[0]
    assert "Add hello() returning 'hello' in hello.py." in first.text
    names = {tool.get("name") or tool["function"]["name"] for tool in first.body["tools"]}
    assert names == {
        "read_file",
        "list_dir",
        "search",
        "write_file",
        "append_to_file",
        "edit_file",
        "run_command",
        "finish",
    }
    assert_script_done(server)


async def test_a_retry_carries_the_previous_failure_and_the_guidance(
    server: ModelServer, worktree: Path
) -> None:
    server.add(finish(match="Advice for this attempt:\nuse the helper"))
    request = task(
        worktree, attempt=2, previous_failure="tests failed: test_hello", guidance="use the helper"
    )

    result = await backend(server).run(request)

    assert result.ok
    seen = server.requests[0].text
    assert "attempt 2" in seen and "tests failed: test_hello" in seen
    assert_script_done(server)


async def test_the_calls_of_one_response_run_in_order(server: ModelServer, worktree: Path) -> None:
    server.add(
        {
            "match": "Task t1",
            "reply": {
                "tool_calls": [
                    call("run_command", command="sleep 0.3; echo one > order.txt"),
                    call("run_command", command="echo two >> order.txt"),
                ]
            },
        },
        finish(match_tool_result="exit code 0"),
    )

    result = await backend(server).run(task(worktree))

    assert result.ok, result.error
    assert (worktree / "order.txt").read_text() == "one\ntwo\n"


async def test_concurrent_runs_share_the_backend_and_keep_apart(
    server: ModelServer, git_repo: Path, worktree: Path
) -> None:
    other = git_repo.parent / "wt2"
    subprocess.run(
        ["git", "worktree", "add", "-q", "-b", "blitz/t2", str(other)],
        cwd=git_repo,
        check=True,
        capture_output=True,
        timeout=30,
    )
    for task_id, where in (("t1", "one.txt"), ("t2", "two.txt")):
        server.add(
            {
                "match": f"Task {task_id}:",
                "reply": {"tool_calls": [call("write_file", path=where, content=task_id)]},
            },
            finish(f"wrote {where}", match=f"Task {task_id}:", match_tool_result=where),
        )
    shared = backend(server)

    first, second = await asyncio.gather(
        shared.run(task(worktree)), shared.run(task(other, task_id="t2"))
    )

    assert (first.ok, first.summary) == (True, "wrote one.txt")
    assert (second.ok, second.summary) == (True, "wrote two.txt")
    assert sorted(p.name for p in worktree.glob("*.txt")) == ["one.txt"]
    assert sorted(p.name for p in other.glob("*.txt")) == ["two.txt"]
    assert_script_done(server)


# -- the model's mistakes -----------------------------------------------------------------------


async def test_path_escapes_are_refused_and_the_model_is_told(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {
            "match": "Task t1",
            "reply": {
                "tool_calls": [
                    call("write_file", path="../x", content="escaped"),
                    call("read_file", path="/etc/passwd"),
                ]
            },
        },
        finish(match_tool_result="is absolute"),
    )
    sink = Sink()

    result = await backend(server).run(task(worktree), sink)

    assert result.ok, result.error
    assert not (worktree.parent / "x").exists()
    seen = tool_results(server)
    assert "'../x' is outside the worktree" in seen
    assert "'/etc/passwd' is absolute" in seen
    assert "root:" not in seen
    assert any(m.startswith("error: path '../x' is outside the worktree") for m in sink.messages)
    assert_script_done(server)


async def test_an_unknown_tool_and_bad_arguments_are_corrected(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [call("delete_everything")]}},
        {
            "match_tool_result": "Unknown tool name: 'delete_everything'",
            "reply": {"tool_calls": [call("write_file", path=3)]},
        },
        {
            "match_tool_result": "Field required",
            "reply": {"tool_calls": [call("write_file", path="hello.py", content="x = 1\n")]},
        },
        finish(match_tool_result="wrote 6 bytes"),
    )
    sink = Sink()

    result = await backend(server).run(task(worktree), sink)

    assert result.ok, result.error
    assert (worktree / "hello.py").read_text() == "x = 1\n"
    assert any(m.startswith("retry delete_everything: Unknown tool name") for m in sink.messages)
    assert any(m.startswith("retry write_file:") and "content" in m for m in sink.messages)
    assert_script_done(server)


async def test_output_that_stays_invalid_fails_the_attempt_without_crashing(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"tool_calls": [call("delete_everything")]}, "times": -1})

    result = await backend(server).run(task(worktree))

    assert not result.ok and not result.crashed and not result.config_error
    assert "delete_everything" in result.error and "retries" in result.error
    assert len(server.requests) == 4  # the first call and three retries


async def test_a_response_cut_off_at_the_token_limit_fails_the_attempt(worktree: Path) -> None:
    """pydantic-ai's FunctionModel stands in for a provider whose reply stopped at max_tokens in
    the middle of a tool call, which the scripted server cannot send."""
    requests: list[int] = []

    def cut_off(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        requests.append(len(messages))
        raise IncompleteToolCall("the model stopped at max_tokens while writing a tool call")

    embedded = EmbeddedBackend(
        model=FunctionModel(cut_off),
        spec=parse_model(ANTHROPIC),
        prices=PRICES,
        clock=InstantClock(),
    )

    result = await embedded.run(task(worktree))

    assert not result.ok and not result.crashed and not result.config_error
    assert "the model's output was unusable" in result.error
    assert len(requests) == 1  # unusable output is not retried like an outage


async def test_stopping_without_finish_fails_with_what_the_model_said(
    server: ModelServer, worktree: Path
) -> None:
    # Having looked around (a model that never calls a tool is re-asked: test_text_calls.py).
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [call("list_dir")]}},
        {
            "match_tool_result": "README.md",
            "reply": {"text": "I cannot find   the file\nto change."},
        },
    )

    result = await backend(server).run(task(worktree))

    assert not result.ok and not result.crashed
    assert result.error == (
        "the agent stopped without calling finish: I cannot find the file to change."
    )
    assert result.messages[-1] == "I cannot find   the file\nto change."
    assert len(server.requests) == 2  # not re-asked: it had called tools, and chose to stop


# -- limits -------------------------------------------------------------------------------------


async def test_the_turn_limit_stops_the_run(server: ModelServer, worktree: Path) -> None:
    server.add({"reply": {"tool_calls": [call("list_dir")]}, "times": -1})

    result = await backend(server, max_turns=3, stuck_repeats=10).run(task(worktree))

    assert not result.ok and not result.crashed
    assert result.error == "turn limit of 3 reached"
    assert len(server.requests) == 3


async def test_the_token_limit_stops_the_run(server: ModelServer, worktree: Path) -> None:
    server.add({"reply": {"tool_calls": [call("list_dir")]}, "times": -1})

    result = await backend(server, max_tokens=300, stuck_repeats=10).run(task(worktree))

    assert not result.ok
    assert result.error == "token limit of 300 reached (360 tokens used)"
    assert len(server.requests) == 3


async def test_the_cost_limit_stops_the_run_before_the_next_request(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"tool_calls": [call("list_dir")]}, "times": -1})
    # Each response costs $0.0006; the request's budget is lower than the backend's limit.
    run = backend(server, max_cost_usd=1.0, stuck_repeats=10)

    result = await run.run(task(worktree, budget_usd=0.001))

    assert not result.ok and not result.crashed
    assert result.error == "cost limit of $0.001 reached ($0.0012 spent)"
    assert len(server.requests) == 2
    assert result.usage.cost_usd == pytest.approx(0.0012)


async def test_the_same_call_with_the_same_result_three_times_is_stuck(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"tool_calls": [call("read_file", path="README.md")]}, "times": -1})

    result = await backend(server).run(task(worktree))

    assert not result.ok and not result.crashed
    assert result.error == "stuck: the same read_file call returned the same result 3 times"
    assert len(server.requests) == 3


async def test_a_failing_call_repeated_is_stuck_too(server: ModelServer, worktree: Path) -> None:
    server.add({"reply": {"tool_calls": [call("read_file", path="missing.py")]}, "times": -1})

    result = await backend(server).run(task(worktree))

    assert result.error == "stuck: the same read_file call returned the same result 3 times"


async def test_two_calls_made_in_turn_with_the_same_results_are_stuck(
    server: ModelServer, worktree: Path
) -> None:
    # Each call follows the other one, so no one call repeats itself in a row.
    for _ in range(3):
        server.add(
            {"reply": {"tool_calls": [call("read_file", path="README.md")]}},
            {"reply": {"tool_calls": [call("list_dir", path=".")]}},
        )

    result = await backend(server).run(task(worktree))

    assert not result.ok and not result.crashed
    assert result.error == (
        "stuck: the same 2 calls (read_file, list_dir) went round 3 times, each round with the"
        " same results"
    )
    assert len(server.requests) == 6
    assert_script_done(server)


async def test_an_append_made_again_with_its_text_grown_is_stuck(
    server: ModelServer, worktree: Path
) -> None:
    # Qwen2.5-Coder-1.5B appended test_slugify one assert longer each turn, until its time ran
    # out (each appended definition replaces the one before, so each result is new). Grown, it
    # is a circle at one call more than ``stuck_repeats`` (3 here).
    text = "def test_slugify():\n    assert slugify('a') == 'a'\n"
    for letter in "abcd":
        text += f"    assert slugify('{letter.upper()}') == '{letter}'\n"
        server.add({"reply": {"tool_calls": [call("append_to_file", path="test_s.py", text=text)]}})

    result = await backend(server).run(task(worktree, instructions="Test slugify in test_s.py."))

    assert not result.ok and not result.crashed
    assert result.error == (
        "stuck: 4 append_to_file calls in a row, each after the first adding again what the one"
        " before it added (or more)"
    )
    assert (worktree / "test_s.py").read_text() == text  # the last one, once
    assert_script_done(server)


async def test_the_wall_time_limit_ends_a_hanging_request_quickly(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"text": "too late", "delay": 30}})
    started = time.monotonic()

    result = await backend(server).run(task(worktree, timeout=0.5))

    assert time.monotonic() - started < 30  # it did not wait for the reply (however loaded)
    assert not result.ok and not result.crashed
    assert result.error == "timed out after 0.5s"


async def test_the_backend_wall_time_caps_the_request_timeout(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"text": "too late", "delay": 30}})

    result = await backend(server, wall_time=0.3).run(task(worktree, timeout=600))

    assert result.error == "timed out after 0.3s"


# -- secrets ------------------------------------------------------------------------------------


async def test_secrets_stay_out_of_commands_messages_and_the_result(
    server: ModelServer, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("BLITZ_MARKER", "visible-to-commands")
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [call("run_command", command="env")]}},
        finish(match_tool_result="BLITZ_MARKER=visible-to-commands"),
    )
    sink = Sink()

    result = await backend(server).run(task(worktree), sink)

    assert result.ok, result.error
    assert "ANTHROPIC_API_KEY" not in tool_results(server)
    assert KEY not in tool_results(server)
    assert KEY not in sink.text()
    assert KEY not in repr(result)
    assert_script_done(server)


async def test_a_secret_the_agent_reads_is_redacted_from_what_it_shows(
    server: ModelServer, worktree: Path
) -> None:
    (worktree / ".env").write_text(f"ANTHROPIC_API_KEY={KEY}\n")
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [call("read_file", path=".env")]}},
        {
            "match_tool_result": "ANTHROPIC_API_KEY=",
            "reply": {"text": f"The key is {KEY}; I will not use it."},
        },
    )
    sink = Sink()

    result = await backend(server).run(task(worktree), sink)

    assert not result.ok
    assert "[redacted]" in sink.text() and "[redacted]" in result.error
    assert KEY not in sink.text()
    assert KEY not in repr(result)


async def test_anthropic_requests_ask_for_prompt_caching(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"tool_calls": [call("list_dir")]}}, finish())
    result = await backend(server).run(task(worktree))
    assert result.ok, result.error
    bodies = [r.body for r in server.requests if r.path.endswith("/messages")]
    assert len(bodies) == 2
    # The instructions, the tools and the growing conversation are marked cacheable.
    assert all("cache_control" in json.dumps(body) for body in bodies)
