"""The planner's outputs are bounded: a cap per call sized from ``max_tasks``, and an answer that
repeats itself, runs past the call cap or is cut at the limit is re-asked with a correction,
counted against ``max_reasks``. The real OpenAI client against the scripted model server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from blitz.conductor.selection import Candidate
from blitz.errors import PlanError
from blitz.llm.judge import JUDGE_MAX_TOKENS, ModelJudge
from blitz.llm.models import REASK_TEMPERATURE_CAP, STRUCTURED_TEMPERATURE, parse_model
from blitz.llm.planner import (
    PLAN_MAX_TOKENS,
    RECOVERY_MAX_TOKENS,
    LLMPlanner,
    plan_max_tokens,
)
from blitz.llm.usage import PriceTable
from blitz.testing.model_server import ModelServer, Reply, SeenRequest

from . import model_for
from .planner_helpers import (
    EXPECTED,
    GOOD,
    RECOVERIES,
    InstantClock,
    json_reply,
    local_planner,
    plan_request,
    recovery_request,
    tool_reply,
)

LOOPING = "The plan: add the limiter, then use it in the middleware, then test it. " * 40


def cap(request: SeenRequest) -> Any:
    return request.body.get("max_completion_tokens", request.body.get("max_tokens"))


def test_the_plan_cap_grows_with_max_tasks_within_bounds() -> None:
    low, high = PLAN_MAX_TOKENS
    assert plan_max_tokens(1) == low
    assert low < plan_max_tokens(10) < plan_max_tokens(20) < high
    assert plan_max_tokens(200) == high


async def test_every_plan_call_carries_its_output_cap(fake: ModelServer, repo: Path) -> None:
    fake.add(json_reply(GOOD))
    async with model_for(fake, "llamacpp") as model:
        await local_planner(model, output_mode="prompted").plan(plan_request(repo, max_tasks=10))
    [sent] = fake.requests
    assert cap(sent) == plan_max_tokens(10)
    assert sent.body["temperature"] == STRUCTURED_TEMPERATURE


async def test_every_recovery_call_carries_its_output_cap(fake: ModelServer) -> None:
    # A recovery is a decision, a reason and a few tasks: far below a plan's cap for max_tasks.
    fake.add(json_reply(RECOVERIES["insert"][0]))
    async with model_for(fake, "llamacpp") as model:
        recovered = await local_planner(model, output_mode="prompted").recover(recovery_request())
    assert recovered.recovery == RECOVERIES["insert"][1]
    [sent] = fake.requests
    assert cap(sent) == RECOVERY_MAX_TOKENS < plan_max_tokens(8)
    assert sent.body["temperature"] == STRUCTURED_TEMPERATURE


async def test_a_hosted_planner_keeps_its_provider_s_temperature(
    fake: ModelServer, repo: Path
) -> None:
    fake.add(json_reply(GOOD))
    spec = parse_model(f"openai:gpt-test@{fake.openai_base_url}")
    async with model_for(fake, "openai") as model:
        plans = LLMPlanner(
            model=model,
            spec=spec,
            prices=PriceTable(),
            clock=InstantClock(),
            output_mode="prompted",
        )
        await plans.plan(plan_request(repo))
    [sent] = fake.requests
    assert "temperature" not in sent.body


async def test_a_repeating_plan_is_re_asked_with_a_correction(
    fake: ModelServer, repo: Path
) -> None:
    fake.add(Reply(text=LOOPING), json_reply(GOOD))
    told: list[str] = []
    async with model_for(fake, "llamacpp") as model:
        plans = local_planner(model, output_mode="prompted")
        planned = await plans.plan(plan_request(repo, on_reask=told.append))
    assert planned.plan.tasks == EXPECTED
    [line] = told
    assert line.startswith("the plan would not do (") and "repeated itself" in line
    assert line.endswith("); asking again, 2 of 4")
    first, second = fake.requests
    assert "repeated itself" not in first.last_user_text
    assert "repeated itself" in second.last_user_text
    assert "without repeating" in second.last_user_text


async def test_a_stopped_answer_is_charged_its_tokens_estimated_when_never_reported(
    fake: ModelServer, repo: Path
) -> None:
    fake.add(json_reply(GOOD), Reply(text=LOOPING), json_reply(GOOD))
    async with model_for(fake, "llamacpp") as model:
        plans = local_planner(model, output_mode="prompted")
        alone = (await plans.plan(plan_request(repo))).usage
        after_a_loop = (await plans.plan(plan_request(repo))).usage
    # The looping answer was stopped before its server reported usage (that comes at a stream's
    # end): it is estimated from what was sent and streamed, about four characters a token.
    extra_in = after_a_loop.input_tokens - alone.input_tokens
    extra_out = after_a_loop.output_tokens - alone.output_tokens
    assert extra_in >= len(fake.requests[1].last_user_text) // 4
    assert 600 // 4 <= extra_out <= len(LOOPING) // 4


async def test_repeating_answers_count_against_max_reasks(fake: ModelServer, repo: Path) -> None:
    fake.add({"reply": {"text": LOOPING}, "times": -1})
    async with model_for(fake, "llamacpp") as model:
        plans = local_planner(model, output_mode="prompted", max_reasks=1)
        with pytest.raises(PlanError) as info:
            await plans.plan(plan_request(repo))
    assert len(fake.requests) == 2
    assert "repeated itself" in str(info.value)


async def test_each_re_ask_of_a_local_model_is_a_little_warmer(
    fake: ModelServer, repo: Path
) -> None:
    # Qwen2.5-Coder-1.5B at 0.2 gave one unusable recovery four times alike, told or not.
    fake.add({"reply": {"text": LOOPING}, "times": 3}, json_reply(GOOD))
    async with model_for(fake, "llamacpp") as model:
        plans = local_planner(model, output_mode="prompted", max_reasks=3)
        planned = await plans.plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED
    heat = [r.body["temperature"] for r in fake.requests]
    assert heat == [STRUCTURED_TEMPERATURE, 0.5, REASK_TEMPERATURE_CAP, REASK_TEMPERATURE_CAP]


async def test_a_plan_past_the_call_cap_is_re_asked_shorter(fake: ModelServer, repo: Path) -> None:
    slow = "A long, slow, varied answer: " + "".join(f"part {n}; " for n in range(200))
    fake.add(Reply(text=slow, chunk_delay=0.2), json_reply(GOOD))
    async with model_for(fake, "llamacpp", call_timeout=1.0) as model:
        planned = await local_planner(model, output_mode="prompted").plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED
    assert "answer again, shorter" in fake.requests[1].last_user_text


async def test_the_judge_call_carries_its_output_cap(fake: ModelServer) -> None:
    fake.add({"reply": {"tool_calls": [{"name": "choose", "input": {"choice": 2, "reason": "r"}}]}})
    spec = parse_model(f"llamacpp:local@{fake.openai_base_url}")
    judge = ModelJudge(model_for(fake, "llamacpp"), spec=spec, clock=InstantClock())
    candidates: Sequence[tuple[Candidate, str]] = [(_candidate(n), f"diff {n}") for n in (1, 2)]
    assert (await judge.pick("t", "do it", candidates))[0] == 1
    [sent] = fake.requests
    assert cap(sent) == JUDGE_MAX_TOKENS
    assert sent.body["temperature"] == STRUCTURED_TEMPERATURE


def _candidate(number: int) -> Candidate:
    return Candidate(attempt_id=f"a{number}", label=f"agent {number}", passed=True)


async def test_in_auto_mode_a_repeating_answer_is_corrected_not_taken_for_a_missing_tool(
    fake: ModelServer, repo: Path
) -> None:
    looping_call = {"tool_calls": [{"name": "submit_plan", "input": {"summary": LOOPING}}]}
    fake.add({"reply": looping_call}, tool_reply(GOOD))
    async with model_for(fake, "llamacpp") as model:
        plans = local_planner(model)
        planned = await plans.plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED
    assert plans.output_modes == ("tool", "tool")
    # Still the output tool, re-asked with a correction; written as text now, so that no grammar
    # holds the model in its loop.
    assert [bool(r.body.get("tools")) for r in fake.requests] == [True, False]
    assert "repeated itself" in fake.requests[1].last_user_text


@pytest.mark.parametrize("provider", ["anthropic", "openai-compatible"])
async def test_a_plan_cut_at_the_output_limit_is_re_asked_shorter(
    fake: ModelServer, repo: Path, provider: str
) -> None:
    cut = '{"summary": "Add rate limiting", "tasks": [{"id": "limiter", "title": "Add a tok'
    fake.add(Reply(text=cut, at_limit=True), json_reply(GOOD))
    spec = parse_model(f"{provider}:m@{fake.anthropic_base_url}")
    async with model_for(fake, provider) as model:
        plans = LLMPlanner(
            model=model,
            spec=spec,
            prices=PriceTable(),
            clock=InstantClock(),
            output_mode="prompted",
        )
        planned = await plans.plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED
    assert "cut off at the output token limit" in fake.requests[1].last_user_text


@pytest.mark.parametrize("provider", ["anthropic", "openai", "openai-compatible"])
async def test_the_scripted_server_says_when_an_answer_hit_the_limit(
    fake: ModelServer, provider: str
) -> None:
    from pydantic_ai import Agent

    fake.add(Reply(text="half an ans", at_limit=True))
    model = model_for(fake, provider)
    async with model:
        result = await Agent(model).run("hi")
    assert result.all_messages()[-1].finish_reason == "length"


@pytest.mark.parametrize("stream", [False, True])
async def test_the_scripted_responses_api_says_when_an_answer_hit_the_limit(
    fake: ModelServer, stream: bool
) -> None:
    from openai import AsyncOpenAI
    from pydantic_ai.messages import ModelRequest, UserPromptPart
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    fake.add(Reply(text="half an ans", at_limit=True))
    client = AsyncOpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
    model = OpenAIResponsesModel("gpt-5", provider=OpenAIProvider(openai_client=client))
    messages: list[Any] = [ModelRequest(parts=[UserPromptPart("hi")])]
    async with client, model:
        if stream:
            async with model.request_stream(messages, None, ModelRequestParameters()) as events:
                async for _ in events:
                    pass
                response = events.get()
        else:
            response = await model.request(messages, None, ModelRequestParameters())
    assert fake.requests[0].path == "/v1/responses"
    assert response.finish_reason == "length"


def _written(plan: Any) -> str:
    """A plan call the way Qwen2.5-Coder writes it when told to call a tool: as fenced JSON."""
    return (
        "```json\n" + json.dumps({"name": "submit_plan", "arguments": plan}, indent=2) + "\n```\n"
    )


async def test_a_plan_call_written_as_text_is_taken_as_the_call(
    fake: ModelServer, repo: Path
) -> None:
    fake.add(Reply(text=_written(GOOD)))
    async with model_for(fake, "llamacpp") as model:
        plans = local_planner(model, output_mode="tool")
        planned = await plans.plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED
    assert len(fake.requests) == 1
    assert plans.output_modes[0] == "tool"


@pytest.mark.parametrize("loop", [LOOPING, "\n" * 2000], ids=["prose", "blank lines"])
async def test_a_plan_call_written_before_the_answer_loops_is_taken(
    fake: ModelServer, repo: Path, loop: str
) -> None:
    fake.add(Reply(text=_written(GOOD) + "This plan adds the limiter.\n" + loop))
    async with model_for(fake, "llamacpp") as model:
        planned = await local_planner(model, output_mode="tool").plan(plan_request(repo))
    # The loop was stopped, and the complete call written before it was made: no re-ask.
    assert planned.plan.tasks == EXPECTED
    assert len(fake.requests) == 1


async def test_a_loop_with_no_complete_call_before_it_is_re_asked(
    fake: ModelServer, repo: Path
) -> None:
    broken = _written(GOOD)[:200]  # the call cut off, then the loop
    fake.add(Reply(text=broken + LOOPING), tool_reply(GOOD))
    async with model_for(fake, "llamacpp") as model:
        planned = await local_planner(model, output_mode="tool").plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED
    assert "repeated itself" in fake.requests[1].last_user_text


async def test_a_plan_call_that_loops_inside_its_arguments_moves_to_text_calls(
    fake: ModelServer, repo: Path
) -> None:
    # A JSON grammar held the model in a loop inside the call: blank space for ever.
    looping = dict(GOOD, summary="Add rate limiting" + " " * 3000)
    fake.add(tool_reply(looping), Reply(text=_written(GOOD)))
    async with model_for(fake, "llamacpp") as model:
        planned = await local_planner(model, output_mode="auto").plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED
    first, second = fake.requests
    assert first.body.get("tools")
    # Asked again with no tool definitions (so no grammar), told how to write the call as text.
    assert not second.body.get("tools") and "response_format" not in second.body
    assert "submit_plan" in json.dumps(second.body["messages"][0])
    assert "repeated itself" in second.last_user_text


async def test_prompted_output_after_text_calls_still_shows_its_schema(
    fake: ModelServer, repo: Path
) -> None:
    # A loop inside the call moves the role to text calls; prose then moves it to prompted
    # output, whose requests must still carry the plan's schema and ask for JSON.
    looping = dict(GOOD, summary="Add rate limiting" + " " * 3000)
    fake.add(
        tool_reply(looping),
        {"reply": {"text": "I am sorry, I cannot help with that."}, "times": 2},
        json_reply(GOOD),
    )
    async with model_for(fake, "llamacpp") as model:
        plans = local_planner(model, output_mode="auto")
        planned = await plans.plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED
    assert plans.output_modes[0] == "prompted"
    last = fake.requests[-1].body
    assert last.get("response_format")
    assert "depends_on" in json.dumps(last["messages"])  # the schema is in the prompt
