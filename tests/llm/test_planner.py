"""The model-backed planner, driven through the real Anthropic and OpenAI SDKs against the scripted
model server on 127.0.0.1 (and, for a few fast checks, pydantic-ai's function and test models)."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_ai import ModelResponse, ToolCallPart
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from blitz.breaker import BreakerBoard, BreakerPolicy
from blitz.errors import PlanError
from blitz.llm.breakers import breaker_key
from blitz.llm.errors import ProviderConfigError
from blitz.llm.models import ProviderConfig, build_model
from blitz.llm.plan_output import PlanOutput
from blitz.llm.planner import (
    OUTPUT_RETRIES,
    PLAN_TOOL,
    LLMPlanner,
    OutputMode,
)
from blitz.llm.usage import PriceTable
from blitz.planner import check_plan, parse_plan
from blitz.testing.model_server import ModelServer

from .planner_helpers import (
    APIS,
    CYCLE,
    EXPECTED,
    GOOD,
    KEY,
    NEW_TASK,
    UNKNOWN,
    InstantClock,
    Make,
    assert_usage,
    json_reply,
    local_planner,
    plan_request,
    priced,
    recovery_request,
    scripted,
    spec_for,
    tool_reply,
    user_text,
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


# -- fast checks with pydantic-ai's own models -------------------------------------------------


async def test_function_model_sees_the_problems_after_its_own_answer(repo: Path) -> None:
    model, seen = scripted(CYCLE, UNKNOWN, GOOD)
    planner = local_planner(model)

    planned = await planner.plan(plan_request(repo))

    assert planned.plan.tasks == EXPECTED
    assert len(seen) == 3
    second, third = seen[1], seen[2]
    assert isinstance(second[1], ModelResponse)  # the rejected answer stays in the conversation
    assert "cycle: a -> b -> a" in user_text(second[-1])
    assert "depends on unknown task 'nope'" in user_text(third[-1])
    assert "cycle" not in user_text(third[-1])  # only the last answer's problems


async def test_function_model_instructions_state_the_rules(repo: Path) -> None:
    instructions: list[str | None] = []

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        instructions.append(info.instructions)
        return ModelResponse(parts=[ToolCallPart(tool_name=info.output_tools[0].name, args=GOOD)])

    await local_planner(FunctionModel(reply)).plan(plan_request(repo, max_tasks=7, gates={}))

    [text] = instructions
    assert text is not None
    assert "At most 7 tasks" in text and "no gates configured" in text


@pytest.mark.parametrize("budget", [0, 60, 2_000])
async def test_the_repository_context_keeps_to_its_budget(repo: Path, budget: int) -> None:
    prompts: list[str] = []

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompts.append(user_text(messages[0]))
        return ModelResponse(parts=[ToolCallPart(tool_name=info.output_tools[0].name, args=GOOD)])

    await local_planner(FunctionModel(reply), context_budget=budget).plan(plan_request(repo))

    [prompt] = prompts
    goal, _, context = prompt.partition("\n\n# The repository\n\n")
    assert goal == "Goal: Add rate limiting to the request handler"
    assert len(context) <= budget * 4
    assert bool(context) == (budget > 0)
    assert ("def handle(request)" in context) == (budget == 2_000)  # the relevant file


ROUTED = with_tasks(
    {"id": "rename", "backend": "claude-code", "model": "haiku"},
    {"id": "rewrite", "depends_on": ["rename"], "model": "opus", "attempts": 3},
)


async def test_routing_and_attempts_become_the_task_specs(repo: Path) -> None:
    model, _ = scripted(ROUTED)

    offered = ("claude-code:haiku", "claude-code:opus")
    planned = await local_planner(model).plan(plan_request(repo, backends=offered))

    rename, rewrite = planned.plan.tasks
    assert (rename.backend, rename.model, rename.attempts) == ("claude-code", "haiku", 0)
    assert (rewrite.backend, rewrite.model, rewrite.attempts) == ("", "opus", 3)


async def test_attempts_out_of_range_are_sent_back_naming_the_task(repo: Path) -> None:
    greedy = with_tasks({"id": "risky", "attempts": 50})
    model, seen = scripted(greedy, ROUTED)

    planned = await local_planner(model).plan(plan_request(repo))

    assert [t.id for t in planned.plan.tasks] == ["rename", "rewrite"]
    assert "task 'risky': attempts must be from 1 to 10, not 50" in user_text(seen[1][-1])


async def test_recovery_tasks_may_be_routed(repo: Path) -> None:
    stronger = {**NEW_TASK, "backend": "codex", "model": "gpt-5", "attempts": 2}
    model, _ = scripted({"root_cause": "too hard", "action": "insert", "tasks": [stronger]})

    recovered = await local_planner(model).recover(recovery_request())

    [task] = recovered.recovery.tasks
    assert (task.backend, task.model, task.attempts) == ("codex", "gpt-5", 2)


@pytest.mark.parametrize(
    ("backends", "shown", "hidden"),
    [
        ((), ["leave them empty (no other agents are configured)"], ['backend "']),
        (
            ("claude-code:opus", "embedded:openai:gpt-5-mini", "codex"),
            [
                'backend "claude-code", model "opus"',
                'backend "embedded", model "openai:gpt-5-mini"',
                'backend "codex", model empty',
            ],
            ["no other agents"],
        ),
    ],
)
async def test_instructions_offer_the_backends_of_the_request(
    repo: Path, backends: tuple[str, ...], shown: list[str], hidden: list[str]
) -> None:
    instructions: list[str | None] = []
    schemas: list[dict[str, Any]] = []

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        instructions.append(info.instructions)
        schemas.append(info.output_tools[0].parameters_json_schema)
        return ModelResponse(parts=[ToolCallPart(tool_name=info.output_tools[0].name, args=GOOD)])

    await local_planner(FunctionModel(reply)).plan(plan_request(repo, backends=backends))

    [text], [schema] = instructions, schemas
    assert text is not None
    assert "attempts: leave it out for most tasks" in text and "at most 10" in text
    assert all(s in text for s in shown) and not any(h in text for h in hidden)
    task_fields = next(d for d in schema["$defs"].values() if "instructions" in d["properties"])
    for name in ("backend", "model", "attempts"):
        assert task_fields["properties"][name]["description"]
        assert name not in task_fields.get("required", [])


async def test_test_model_plans_with_the_output_tool(repo: Path) -> None:
    planned = await local_planner(TestModel(custom_output_args=GOOD)).plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED


_IDS = st.sampled_from(["a", "b", "c", "d", "bad id", ""])
_TASK = st.fixed_dictionaries(
    {"id": _IDS, "title": st.text(max_size=4)},
    optional={
        "instructions": st.text(max_size=4),
        "depends_on": st.lists(_IDS, max_size=3),
        "priority": st.integers(-2, 2),
        "checks": st.lists(
            st.fixed_dictionaries({"kind": st.sampled_from(["file_exists", "command", "x"])}),
            max_size=1,
        ),
        "depend_on": st.lists(_IDS, max_size=1),  # a typo the schema refuses
        "backend": st.sampled_from(["", "codex", " claude-code "]),
        "model": st.sampled_from(["", "opus"]),
        "attempts": st.one_of(st.none(), st.integers(-1, 12)),
    },
)
_ANSWER = st.one_of(
    st.fixed_dictionaries({"summary": st.text(max_size=4), "tasks": st.lists(_TASK, max_size=5)}),
    st.lists(_TASK, max_size=2),  # a bare list is not the tool's object
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers=st.lists(_ANSWER, min_size=8, max_size=8))
def test_whatever_the_model_answers_the_plan_is_valid_or_a_plan_error(
    tmp_path_factory: pytest.TempPathFactory, answers: list[Any]
) -> None:
    calls = 0

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        nonlocal calls
        calls += 1
        return ModelResponse(
            parts=[
                ToolCallPart(
                    tool_name=info.output_tools[0].name, args=json.dumps(answers[calls - 1])
                )
            ]
        )

    planner = local_planner(
        FunctionModel(reply), output_mode="tool", max_reasks=3, context_budget=0
    )
    request = plan_request(tmp_path_factory.getbasetemp(), max_tasks=3)
    try:
        planned = asyncio.run(planner.plan(request))
    except PlanError as exc:
        assert "could not produce a valid plan after 4 attempts" in str(exc)
    else:
        check_plan(planned.plan.tasks, max_tasks=3)
        # The answer as the output schema reads it (a task given no title gets one).
        answer = PlanOutput.model_validate(answers[calls - 1]).model_dump()
        assert planned.plan == parse_plan(answer, max_tasks=3)
    assert calls <= 4 * (OUTPUT_RETRIES + 1)


@pytest.mark.parametrize("mode", ["tool", "prompted", "auto"])
def test_constructor_checks_its_arguments(mode: OutputMode) -> None:
    model = TestModel()
    local_planner(model, output_mode=mode)
    with pytest.raises(ValueError):
        local_planner(model, max_reasks=-1, output_mode=mode)
    with pytest.raises(ValueError):
        local_planner(model, recovery_model=TestModel(), output_mode=mode)
    with pytest.raises(ValueError):
        local_planner(model, output_mode="json")


async def test_a_task_the_model_gave_no_title_is_titled_from_its_instructions(
    repo: Path,
) -> None:
    untitled = {
        "summary": "Add slugify",
        "tasks": [
            {"id": "add_slugify", "instructions": "Add slugify() to text.py. Test it too."},
            {"id": "tidy-docs", "title": "", "instructions": "", "allow_empty": True},
        ],
    }
    model, seen = scripted(untitled)

    planned = await local_planner(model).plan(plan_request(repo))

    assert len(seen) == 1  # taken as it was, not re-asked
    assert [t.title for t in planned.plan.tasks] == ["Add slugify() to text.py", "Tidy docs"]
    assert planned.plan.tasks[1].instructions == "Tidy docs"


def test_the_plan_schema_still_asks_for_a_title() -> None:
    assert "title" in PlanOutput.model_json_schema()["$defs"]["TaskOutput"]["required"]


async def test_a_follow_up_s_planner_is_told_the_work_it_continues(repo: Path) -> None:
    earlier = "This goal continues goal g-1.\n\nEarlier goal g-1 (succeeded): Add a note"
    model, seen = scripted(GOOD, GOOD)
    planner = local_planner(model)

    await planner.plan(plan_request(repo))
    await planner.plan(plan_request(repo, earlier=earlier))

    alone, following = user_text(seen[0][-1]), user_text(seen[1][-1])
    assert "# The work this goal continues" not in alone
    assert "# The work this goal continues\n\nThis goal continues goal g-1." in following
    assert following.index("Earlier goal g-1 (succeeded)") < following.index("# The repository")
