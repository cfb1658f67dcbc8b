"""The model-backed planner, checked fast with pydantic-ai's own function and test models: what
the model is told, routing and attempts, what any answer becomes, titles, follow-ups."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_ai import ModelResponse, ToolCallPart
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from blitz.errors import PlanError
from blitz.llm.plan_answers import distinct_ids, fold_tests_into_code, offered_routes
from blitz.llm.plan_output import PlanOutput
from blitz.llm.planner import (
    OUTPUT_RETRIES,
    OutputMode,
)
from blitz.planner import check_plan, parse_plan

from .planner_helpers import (
    CYCLE,
    EXPECTED,
    GOOD,
    NEW_TASK,
    UNKNOWN,
    local_planner,
    plan_request,
    recovery_request,
    scripted,
    user_text,
    with_tasks,
)


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

    offered = recovery_request(backends=("codex:gpt-5",))  # as a plan's tasks, what is offered
    recovered = await local_planner(model).recover(offered)

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
        # The answer as the output schema reads it (a task given no title gets one), read as
        # meant: ids made distinct, no route when none was offered, code before its tests.
        answer = distinct_ids(PlanOutput.model_validate(answers[calls - 1]).model_dump())
        parsed = parse_plan(answer, max_tasks=3)
        meant = fold_tests_into_code(offered_routes(parsed.tasks, request.backends))
        assert planned.plan == replace(parsed, tasks=meant)
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
