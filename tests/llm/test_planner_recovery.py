"""The model-backed planner's recovery: each action, what a model gets wrong read as meant or
sent back, and the recovery model priced apart; driven through the real Anthropic and OpenAI SDKs
against the scripted model server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from blitz.domain import (
    RecoveryAction,
)
from blitz.errors import PlanError
from blitz.llm.planner import (
    RECOVERY_TOOL,
    RecoveryOutput,
)
from blitz.testing.model_server import ModelServer

from .planner_helpers import (
    APIS,
    GOOD,
    NEW_TASK,
    RECOVERIES,
    Make,
    assert_usage,
    plan_request,
    priced,
    recovery_request,
    tool_reply,
)


def test_the_recovery_output_offers_every_action() -> None:
    actions = get_args(RecoveryOutput.model_fields["action"].annotation)
    assert set(actions) == {a.value for a in RecoveryAction}


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("action", list(RECOVERIES))
async def test_recovery_answers_each_action(
    server: ModelServer, make: Make, api: str, action: str
) -> None:
    answer, expected = RECOVERIES[action]
    server.add(tool_reply(answer, RECOVERY_TOOL))
    planner = await make(api)

    recovered = await planner.recover(recovery_request())

    assert recovered.recovery == expected
    assert_usage(recovered.usage, priced(api, 1))
    [seen] = server.requests
    text = seen.text
    for expected_text in (
        "Read limits from the config file",  # the goal
        "parser: Parse the config file",  # the task
        "Add parse() to src/config.py reading TOML.",
        "KeyError: 'limits'",  # the error and the gate's output
        "tests/test_config.py::test_parse",
        "+def parse(text): ...",  # the diff
        "Done: parse() reads the file.",  # the agent's last message
        "parse() ignored the [limits] table",  # the earlier recovery
        "setup, parser, docs",  # the ids new tasks may not reuse
    ):
        assert expected_text in text


@pytest.mark.parametrize("api", APIS)
async def test_a_recovery_task_reusing_an_id_is_taken_under_a_fresh_one(
    server: ModelServer, make: Make, api: str
) -> None:
    colliding = {
        "root_cause": "no fixture",
        "action": "insert",
        "tasks": [{**NEW_TASK, "id": "docs"}],
    }
    server.add(tool_reply(colliding, RECOVERY_TOOL))
    planner = await make(api)

    recovered = await planner.recover(recovery_request())

    assert len(server.requests) == 1  # read as meant (tests/llm/test_recovery_meant.py)
    assert [t.id for t in recovered.recovery.tasks] == ["docs-2"]
    assert recovered.recovery.tasks[0].title == NEW_TASK["title"]


@pytest.mark.parametrize(
    ("action", "taken", "tasks"),
    [("retry", "insert", 1), ("skip", "skip", 0), ("abort", "abort", 0)],
)
async def test_recovery_tasks_an_action_takes_none_of_are_read_as_meant(
    server: ModelServer, make: Make, action: str, taken: str, tasks: int
) -> None:
    answer = {"root_cause": "x", "action": action, "guidance": "g", "tasks": [NEW_TASK]}
    server.add(tool_reply(answer, RECOVERY_TOOL))
    planner = await make("anthropic")

    recovered = await planner.recover(recovery_request())

    assert len(server.requests) == 1  # taken, not sent back
    assert recovered.recovery.action is RecoveryAction(taken)
    assert len(recovered.recovery.tasks) == tasks


async def test_a_retry_given_the_failed_task_again_is_taken_as_a_plain_retry(
    server: ModelServer, make: Make
) -> None:
    again = {"id": "parser", "title": "Parse the config file", "instructions": "Same again."}
    answer = {"root_cause": "x", "action": "retry", "guidance": "g", "tasks": [again]}
    server.add(tool_reply(answer, RECOVERY_TOOL))
    planner = await make("anthropic")

    recovered = await planner.recover(recovery_request())

    assert len(server.requests) == 1
    assert recovered.recovery.action is RecoveryAction.RETRY
    assert recovered.recovery.tasks == () and recovered.recovery.guidance == "g"


async def test_a_new_task_depending_on_a_replaced_one_depends_on_what_replaced_it(
    server: ModelServer, make: Make
) -> None:
    after_docs = {**NEW_TASK, "depends_on": ["docs"]}
    server.add(
        tool_reply({"root_cause": "x", "action": "insert", "tasks": [after_docs]}, RECOVERY_TOOL)
    )
    planner = await make("anthropic")

    ids = ("setup", "parser", "docs", "docs-2")
    recovered = await planner.recover(
        recovery_request(task_ids=ids, replaced={"docs": ("docs-2",)})
    )

    assert len(server.requests) == 1  # taken as meant, not sent back
    assert recovered.recovery.tasks[0].depends_on == ("docs-2",)


async def test_recovery_tasks_that_depend_on_the_failed_task_are_sent_back(
    server: ModelServer, make: Make
) -> None:
    loop = {**NEW_TASK, "depends_on": ["parser"]}
    server.add(
        tool_reply({"root_cause": "x", "action": "insert", "tasks": [loop]}, RECOVERY_TOOL),
        tool_reply({"root_cause": "x", "action": "insert", "tasks": [NEW_TASK]}, RECOVERY_TOOL),
    )
    planner = await make("anthropic")

    recovered = await planner.recover(recovery_request())

    assert recovered.recovery.action is RecoveryAction.INSERT
    assert "depends on the failed task 'parser'" in server.requests[1].last_user_text


async def test_a_skip_of_a_task_others_need_whose_attempt_broke_the_gates_is_sent_back(
    server: ModelServer, make: Make
) -> None:
    # Qwen2.5-Coder-1.5B skipped add-slugify (its attempt failed the tests; add-test needed it):
    # the goal "succeeded" without slugify.
    skip = {"root_cause": "the task was completed without any changes", "action": "skip"}
    retry = {"root_cause": "shout() was dropped", "action": "retry", "guidance": "keep shout()"}
    server.add(tool_reply(skip, RECOVERY_TOOL), tool_reply(retry, RECOVERY_TOOL))
    planner = await make("anthropic")

    recovered = await planner.recover(recovery_request(dependents=("report",)))

    assert recovered.recovery.action is RecoveryAction.RETRY
    told = server.requests[1].last_user_text
    assert "task 'parser' cannot be skipped: its attempt failed test" in told
    assert "'report' depend on it" in told
    # Nor when it is the goal's only task (the others replaced): the 1.5B skipped add-slugify,
    # the goal's one task, its test failing, and the goal ended with nothing done.
    server.add(tool_reply(skip, RECOVERY_TOOL), tool_reply(retry, RECOVERY_TOOL))
    only = recovery_request(task_ids=("old", "parser"), replaced={"old": ("parser",)})
    assert (await planner.recover(only)).recovery.action is RecoveryAction.RETRY
    assert "it is the goal's only task, so without it the goal does nothing" in (
        server.requests[-1].last_user_text
    )
    # Skipped when nothing needs it, or when its attempt broke no gate (its work may be done).
    for request in (recovery_request(), recovery_request(dependents=("report",), gates=())):
        server.add(tool_reply(skip, RECOVERY_TOOL))
        assert (await planner.recover(request)).recovery.action is RecoveryAction.SKIP


async def test_recovery_that_never_validates_is_a_plan_error(
    server: ModelServer, make: Make
) -> None:
    server.add({**tool_reply({"root_cause": "x", "action": "replace"}, RECOVERY_TOOL), "times": -1})
    planner = await make("ollama", max_reasks=1)

    with pytest.raises(PlanError) as info:
        await planner.recover(recovery_request())

    assert len(server.requests) == 2
    assert "could not produce a valid recovery plan after 2 attempts" in str(info.value)
    assert "recovery action 'replace' needs at least one task" in str(info.value)


async def test_recovery_uses_the_recovery_model_and_prices_its_usage(
    server: ModelServer, make: Make, repo: Path
) -> None:
    server.add(tool_reply(GOOD), tool_reply(RECOVERIES["skip"][0], RECOVERY_TOOL))
    planner = await make("ollama", recovery_api="anthropic")

    planned = await planner.plan(plan_request(repo))
    recovered = await planner.recover(recovery_request())

    assert [r.api for r in server.requests] == ["openai", "anthropic"]
    assert_usage(planned.usage, priced("ollama", 1))
    assert_usage(recovered.usage, priced("anthropic", 1))


@pytest.mark.parametrize("api", APIS)
async def test_a_replacement_that_leaves_out_the_function_the_task_was_to_add_is_sent_back(
    server: ModelServer, make: Make, api: str
) -> None:
    # The 1.5B replaced "add slugify(text) and its test" with "add shout(text)" (bench run O):
    # its attempt wrote shout alone, and the goal succeeded without slugify.
    unrelated = {"root_cause": "too big", "action": "replace", "tasks": [NEW_TASK]}
    answer, expected = RECOVERIES["replace"]
    server.add(tool_reply(unrelated, RECOVERY_TOOL), tool_reply(answer, RECOVERY_TOOL))
    planner = await make(api)

    recovered = await planner.recover(recovery_request())

    assert recovered.recovery == expected
    told = server.requests[1].text
    assert (
        "the new tasks take the place of 'parser', which was to add parse(), and none of them"
        " names parse: a replacement does the replaced task's work"
    ) in told


@pytest.mark.parametrize("api", APIS)
async def test_an_insert_that_tests_the_function_the_task_is_to_add_first_is_sent_back(
    server: ModelServer, make: Make, api: str
) -> None:
    # The 1.5B inserted "Add a test for slugify(text)" ahead of the task adding slugify (bench
    # run V): run first, its test could only fail.
    early = {**NEW_TASK, "id": "test-parse", "title": "Add a test for parse()"}
    too_soon = {"root_cause": "untested", "action": "insert", "tasks": [early]}
    answer, expected = RECOVERIES["insert"]
    server.add(tool_reply(too_soon, RECOVERY_TOOL), tool_reply(answer, RECOVERY_TOOL))
    planner = await make(api)

    recovered = await planner.recover(recovery_request())

    assert recovered.recovery == expected
    assert (
        "task 'test-parse' tests parse(), but it runs before 'parser', which is to add parse(),"
        " is tried again: a test of parse() goes in 'parser' (retry, with guidance) or in a task"
        " that depends on it"
    ) in server.requests[1].text
