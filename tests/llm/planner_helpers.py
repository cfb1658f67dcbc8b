"""What the planner's tests share: a good plan and the answers that break it, the scripted
replies, planners on real models pointed at the scripted server (through the ``make`` fixture in
conftest.py) or on pydantic-ai's function model, and the requests they are given."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import ModelRequest, ModelResponse, ToolCallPart, UserPromptPart
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel

from blitz.domain import (
    Attempt,
    Check,
    GateResult,
    Recovery,
    RecoveryAction,
    RecoveryPlan,
    Task,
    TaskSpec,
    Usage,
)
from blitz.llm.models import ModelSpec, ProviderConfig, parse_model
from blitz.llm.planner import (
    PLAN_TOOL,
    LLMPlanner,
)
from blitz.llm.usage import PriceTable
from blitz.planner import PlanRequest, RecoveryRequest
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

KEY = "sk-ant-test-0123456789abcdef"
CONFIG = ProviderConfig(anthropic_api_key=KEY)
APIS = ["anthropic", "ollama"]

GOOD: dict[str, Any] = {
    "summary": "Add rate limiting",
    "tasks": [
        {
            "id": "limiter",
            "title": "Add a token-bucket limiter",
            "instructions": "Add src/limiter.py with a TokenBucket class and tests.",
            "files": ["src/limiter.py"],
            "checks": [{"kind": "file_exists", "path": "src/limiter.py"}],
            "priority": 2,
        },
        {
            "id": "middleware",
            "title": "Use the limiter in the middleware",
            "instructions": "Call TokenBucket.take() in src/app.py before each request.",
            "depends_on": ["limiter"],
        },
    ],
}
EXPECTED = (
    TaskSpec(
        id="limiter",
        title="Add a token-bucket limiter",
        instructions="Add src/limiter.py with a TokenBucket class and tests.",
        files=("src/limiter.py",),
        checks=(Check(kind="file_exists", path="src/limiter.py"),),
        priority=2,
    ),
    TaskSpec(
        id="middleware",
        title="Use the limiter in the middleware",
        instructions="Call TokenBucket.take() in src/app.py before each request.",
        depends_on=("limiter",),
    ),
)


def with_tasks(*changes: dict[str, Any], summary: str = "s") -> dict[str, Any]:
    """A plan whose tasks are GOOD's first task changed by each of ``changes``."""
    tasks = [{**copy.deepcopy(GOOD["tasks"][0]), "checks": [], **change} for change in changes]
    return {"summary": summary, "tasks": tasks}


CYCLE = with_tasks({"id": "a", "depends_on": ["b"]}, {"id": "b", "depends_on": ["a"]})
UNKNOWN = with_tasks({"id": "a"}, {"id": "b", "depends_on": ["nope"]})


class InstantClock(ManualClock):
    """Sleeps return at once (time moves on); every wait is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


def tool_reply(data: Any, tool: str = PLAN_TOOL) -> dict[str, Any]:
    return {"reply": {"tool_calls": [{"name": tool, "input": data}]}}


def json_reply(data: Any, **turn: Any) -> dict[str, Any]:
    return {"reply": {"json": data}, **turn}


def uses_tools(body: Any) -> bool:
    return bool(body.get("tools"))


def spec_for(api: str, server: ModelServer) -> ModelSpec:
    if api == "anthropic":
        return parse_model(f"anthropic:claude-sonnet-4-6@{server.anthropic_base_url}")
    return parse_model(f"{api}:qwen3-coder@{server.openai_base_url}")


Make = Callable[..., Awaitable[LLMPlanner]]


def plan_request(repo: Path, **changes: Any) -> PlanRequest:
    fields: dict[str, Any] = {
        "goal_id": "g1",
        "goal": "Add rate limiting to the request handler",
        "repo": repo,
        "gates": {"test": "pytest -q", "lint": "ruff check ."},
        "max_tasks": 10,
        **changes,
    }
    return PlanRequest(**fields)


def priced(api: str, calls: int) -> Usage:
    """The usage of ``calls`` scripted replies (100 input and 20 output tokens each)."""
    cost = calls * (100 * 3 + 20 * 15) / 1e6 if api == "anthropic" else 0.0  # ollama is free
    return Usage(input_tokens=100 * calls, output_tokens=20 * calls, cost_usd=cost)


def assert_usage(actual: Usage, expected: Usage) -> None:
    assert (actual.input_tokens, actual.output_tokens, actual.cached_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
        expected.cached_tokens,
    )
    assert actual.cost_usd == pytest.approx(expected.cost_usd)


def recovery_request(**changes: Any) -> RecoveryRequest:
    task = Task(
        id="parser",
        goal_id="g1",
        title="Parse the config file",
        instructions="Add parse() to src/config.py reading TOML.",
        depends_on=("setup",),
    )
    gate = GateResult(
        name="test",
        command="pytest -q",
        passed=False,
        exit_code=1,
        duration=2.5,
        output_tail="...\nE   KeyError: 'limits'\nFAILED tests/test_config.py::test_parse",
        new_failures=("tests/test_config.py::test_parse",),
    )
    attempt = Attempt(
        id="a1",
        goal_id="g1",
        task_id="parser",
        number=2,
        error="the test gate failed",
        gates=(gate,),
        diff="diff --git a/src/config.py b/src/config.py\n+def parse(text): ...",
    )
    earlier = Recovery(
        id="r1",
        goal_id="g1",
        task_id="parser",
        attempt_id="a0",
        root_cause="parse() ignored the [limits] table",
        action=RecoveryAction.RETRY,
        guidance="read every table",
    )
    fields: dict[str, Any] = {
        "goal_id": "g1",
        "goal": "Read limits from the config file",
        "task": task,
        "attempt": attempt,
        "error": "the test gate failed: KeyError: 'limits'",
        "gates": (gate,),
        "diff": attempt.diff,
        "messages": ("I added parse().", "Done: parse() reads the file."),
        "earlier": (earlier,),
        "task_ids": ("setup", "parser", "docs"),
        **changes,
    }
    return RecoveryRequest(**fields)


NEW_TASK = {
    "id": "fixture",
    "title": "Add a config fixture",
    "instructions": "Add tests/fixtures/config.toml with a [limits] table.",
}
PARSE_AGAIN = {
    "id": "parse-2",
    "title": "Parse the config file with the fixture",
    "instructions": "Add parse() to src/config.py reading TOML, tested on the fixture.",
}
"""A replacement that does the replaced task's work (it names the parse() that one adds)."""
NEW_SPEC = TaskSpec(
    id="fixture",
    title="Add a config fixture",
    instructions="Add tests/fixtures/config.toml with a [limits] table.",
)

RECOVERIES = {
    "retry": (
        {"root_cause": "wrong key", "action": "retry", "guidance": "read [limits]"},
        RecoveryPlan(root_cause="wrong key", action=RecoveryAction.RETRY, guidance="read [limits]"),
    ),
    "insert": (
        {"root_cause": "no fixture", "action": "insert", "tasks": [NEW_TASK]},
        RecoveryPlan(root_cause="no fixture", action=RecoveryAction.INSERT, tasks=(NEW_SPEC,)),
    ),
    "replace": (
        {
            "root_cause": "too big",
            "action": "replace",
            "tasks": [NEW_TASK, {**PARSE_AGAIN, "depends_on": ["fixture", "setup"]}],
        },
        RecoveryPlan(
            root_cause="too big",
            action=RecoveryAction.REPLACE,
            tasks=(
                NEW_SPEC,
                TaskSpec(**PARSE_AGAIN, depends_on=("fixture", "setup")),
            ),
        ),
    ),
    "skip": (
        {"root_cause": "already done by setup", "action": "skip"},
        RecoveryPlan(root_cause="already done by setup", action=RecoveryAction.SKIP),
    ),
    "abort": (
        {"root_cause": "the config format is unknown", "action": "abort"},
        RecoveryPlan(root_cause="the config format is unknown", action=RecoveryAction.ABORT),
    ),
}


LOCAL = ModelSpec(provider="ollama", name="function", base_url="http://127.0.0.1:9/v1")


def scripted(*answers: Any) -> tuple[FunctionModel, list[list[ModelMessage]]]:
    """A function model calling the output tool with each answer in turn; it records what it
    was sent."""
    seen: list[list[ModelMessage]] = []
    pending = list(answers)

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        [tool] = info.output_tools
        return ModelResponse(parts=[ToolCallPart(tool_name=tool.name, args=pending.pop(0))])

    return FunctionModel(reply), seen


def user_text(message: ModelMessage) -> str:
    assert isinstance(message, ModelRequest)
    return "\n".join(
        str(part.content) for part in message.parts if isinstance(part, UserPromptPart)
    )


def local_planner(model: Any, **options: Any) -> LLMPlanner:
    return LLMPlanner(model=model, spec=LOCAL, prices=PriceTable(), clock=InstantClock(), **options)
