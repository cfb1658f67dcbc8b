"""The model-backed planner, driven through the real Anthropic and OpenAI SDKs against the scripted
model server on 127.0.0.1 (its fast checks on pydantic-ai's own models are in
test_planner_function_model.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from blitz.breaker import BreakerBoard, BreakerPolicy
from blitz.errors import PlanError
from blitz.llm.breakers import breaker_key
from blitz.llm.errors import ProviderConfigError
from blitz.llm.models import ProviderConfig, build_model
from blitz.llm.planner import (
    PLAN_TOOL,
    LLMPlanner,
)
from blitz.llm.usage import PriceTable
from blitz.testing.model_server import ModelServer

from .planner_helpers import (
    APIS,
    CYCLE,
    EXPECTED,
    GOOD,
    KEY,
    UNKNOWN,
    InstantClock,
    Make,
    assert_usage,
    json_reply,
    plan_request,
    priced,
    spec_for,
    tool_reply,
    uses_tools,
    with_tasks,
)

# -- planning --------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["anthropic", "openai-compatible", "ollama"])
async def test_a_valid_plan_is_accepted_first_time(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    server.add(tool_reply(GOOD))
    planner = await make(api)

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.summary == "Add rate limiting"
    assert planned.plan.tasks == EXPECTED
    assert_usage(planned.usage, priced(api, 1))
    [seen] = server.requests
    assert seen.api == ("anthropic" if api == "anthropic" else "openai")
    assert [
        tool["name"] if api == "anthropic" else tool["function"]["name"]
        for tool in seen.body["tools"]
    ] == [PLAN_TOOL]
    text = seen.text
    # The job, the gates that judge every task, the size cap, the goal and the repository.
    for expected in (
        "Small, independent, verifiable tasks",
        "`pytest -q`",
        "`ruff check .`",
        "At most 10 tasks",
        "Add rate limiting to the request handler",
        "src/app.py",
        "# demo",  # the README
        'name = "demo"',  # the manifest
    ):
        assert expected in text
    assert not server.unmatched and not server.pending


async def test_anthropic_requests_ask_for_prompt_caching(
    server: ModelServer, make: Make, repo: Path
) -> None:
    server.add(tool_reply(GOOD))
    planner = await make("anthropic")
    await planner.plan(plan_request(repo))
    [seen] = server.requests
    assert "cache_control" in str(seen.body)


@pytest.mark.parametrize("api", APIS)
async def test_a_cycle_is_sent_back_in_the_same_conversation_and_the_fix_accepted(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    server.add(tool_reply(CYCLE), tool_reply(GOOD))
    planner = await make(api)

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.tasks == EXPECTED
    first, second = server.requests
    assert "cycle: a -> b -> a" not in first.text
    assert "cycle: a -> b -> a" in second.last_user_text
    assert "Fix every problem" in second.last_user_text
    # The same conversation: the rejected plan is in it, the goal is not repeated.
    roles = [m["role"] for m in second.body["messages"]]
    assert "assistant" in roles
    assert second.text.count("Add rate limiting to the request handler") == 1
    # The output tool's reply to the rejected plan says so (not pydantic-ai's "processed").
    assert "This plan was rejected; what is wrong with it follows." in second.text
    assert "Final result processed" not in second.text
    assert_usage(planned.usage, priced(api, 2))


@pytest.mark.parametrize("api", APIS)
async def test_an_unknown_dependency_is_sent_back(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    server.add(tool_reply(UNKNOWN), tool_reply(GOOD))
    planner = await make(api)

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.tasks == EXPECTED
    assert "task 'b' depends on unknown task 'nope'" in server.requests[1].last_user_text


@pytest.mark.parametrize("api", APIS)
async def test_a_plan_over_max_tasks_is_sent_back(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    huge = with_tasks(*({"id": f"t{i}"} for i in range(25)))
    server.add(tool_reply(huge), tool_reply(GOOD))
    planner = await make(api)

    planned = await planner.plan(plan_request(repo, max_tasks=3))

    assert len(planned.plan.tasks) == 2
    assert "the plan has 25 tasks; the limit is 3" in server.requests[1].last_user_text


@pytest.mark.parametrize("api", APIS)
async def test_missing_fields_are_fixed_by_the_output_retry(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    broken = copy.deepcopy(GOOD)
    del broken["tasks"][1]["instructions"]
    server.add(tool_reply(broken), tool_reply(GOOD))
    planner = await make(api)

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.tasks == EXPECTED
    _, second = server.requests
    assert "Field required" in second.tool_results
    assert "instructions" in second.tool_results
    assert_usage(planned.usage, priced(api, 2))


@pytest.mark.parametrize("api", APIS)
async def test_text_that_is_not_json_is_re_asked_with_the_errors(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    server.add({"reply": {"text": "Sure! First we add a limiter, then..."}, "times": 2})
    server.add(json_reply(GOOD))
    planner = await make(api, output_mode="prompted")

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.tasks == EXPECTED
    assert len(server.requests) == 3
    assert not any(uses_tools(r.body) for r in server.requests)
    reask = server.requests[2].last_user_text
    assert "could not be read" in reask and "Invalid JSON" in reask
    # The broken conversation is dropped: the question is asked again, with the problem.
    assert "Add rate limiting to the request handler" in reask
    assert_usage(planned.usage, priced(api, 3))


@pytest.mark.parametrize("api", APIS)
async def test_a_json_object_in_a_fenced_block_is_accepted(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    fenced = f"Here is the plan:\n```json\n{json.dumps(GOOD)}\n```\n"
    server.add({"reply": {"text": fenced}})
    planner = await make(api, output_mode="prompted")

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.tasks == EXPECTED
    [seen] = server.requests
    assert '"depends_on"' in seen.text  # the schema is in the prompt
    assert not uses_tools(seen.body)


@pytest.mark.parametrize("api", APIS)
async def test_every_answer_failing_ends_in_a_plan_error_after_max_reasks_plus_one_calls(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    server.add({**tool_reply(CYCLE), "times": -1})
    planner = await make(api, max_reasks=2)

    with pytest.raises(PlanError) as info:
        await planner.plan(plan_request(repo))

    assert len(server.requests) == 3
    message = str(info.value)
    assert "the planner could not produce a valid plan after 3 attempts" in message
    assert "cycle: a -> b -> a" in message


@pytest.mark.parametrize("api", APIS)
async def test_a_model_answering_json_text_instead_of_calling_the_tool_falls_back_to_prompted(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    server.add(json_reply(GOOD, times=-1))
    planner = await make(api)

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.tasks == EXPECTED
    # Two tool-mode requests (the answer and pydantic-ai's one re-ask), then one prompted.
    assert [uses_tools(r.body) for r in server.requests] == [True, True, False]
    assert "Please include your response in a tool call" in server.requests[1].text
    assert planner.output_modes == ("prompted", "prompted")
    assert_usage(planned.usage, priced(api, 3))

    # The fallback holds for the rest of the goal: the next call asks for JSON at once.
    await planner.plan(plan_request(repo))
    assert [uses_tools(r.body) for r in server.requests[3:]] == [False]


async def test_a_model_that_refuses_tools_falls_back_to_prompted(
    server: ModelServer, make: Make, repo: Path
) -> None:
    server.fail_next(1, 400, message="registry.ollama.ai/library/gemma:2b does not support tools")
    server.add(json_reply(GOOD))
    planner = await make("ollama")

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.tasks == EXPECTED
    assert [(r.status, uses_tools(r.body)) for r in server.requests] == [(400, True), (200, False)]


async def test_tool_mode_never_falls_back(server: ModelServer, make: Make, repo: Path) -> None:
    server.add(json_reply(GOOD, times=-1))
    planner = await make("ollama", output_mode="tool", max_reasks=1)

    with pytest.raises(PlanError) as info:
        await planner.plan(plan_request(repo))

    # Two attempts of two requests each (pydantic-ai's one output retry), all with the tool.
    assert [uses_tools(r.body) for r in server.requests] == [True] * 4
    assert "after 2 attempts" in str(info.value)
    assert "Please include your response in a tool call" in str(info.value)
    assert planner.output_modes == ("tool", "tool")


@pytest.mark.parametrize("api", APIS)
async def test_a_transient_failure_is_retried_and_counted_once(
    server: ModelServer, make: Make, repo: Path, api: str
) -> None:
    status = 529 if api == "anthropic" else 503
    server.fail_next(1, status)
    server.add(tool_reply(GOOD))
    clock = InstantClock()
    board = BreakerBoard(clock, policies={"provider": BreakerPolicy(threshold=2, cooldown=60)})
    planner = await make(api, clock=clock, breakers=board, max_reasks=0)

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.tasks == EXPECTED
    assert [r.status for r in server.requests] == [status, 200]
    assert len(clock.waits) == 1  # one backoff on the injected clock
    assert_usage(planned.usage, priced(api, 1))  # the failed request cost nothing
    breaker = board.get(breaker_key(spec_for(api, server).provider))
    assert breaker.failures == 0  # the failure was counted, then the success reset it


@pytest.mark.parametrize("api", APIS)
async def test_a_rejected_key_is_a_config_error_and_not_retried(repo: Path, api: str) -> None:
    with ModelServer([tool_reply(GOOD)], api_key="another-key") as strict:
        spec = spec_for(api, strict)
        config = ProviderConfig(anthropic_api_key=KEY, compatible_api_key="wrong-key-123456")
        async with build_model(spec, config) as model:
            planner = LLMPlanner(model=model, spec=spec, prices=PriceTable(), clock=InstantClock())
            with pytest.raises(ProviderConfigError) as info:
                await planner.plan(plan_request(repo))
        assert info.value.failure.status == 401
        assert len(strict.requests) == 1
