"""A 400 about the request's shape (a schema a server cannot turn into a grammar, tools it does not
support) is told apart from a rejected request, and the planner asks for prompted JSON instead of
pausing the project. The scripted server answers with llama.cpp's, Ollama's and vLLM's real
error bodies; the real SDK clients read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blitz.errors import PlanError
from blitz.llm.errors import ProviderConfigError, classify
from blitz.llm.retries import call_with_retries
from blitz.testing.model_server import ErrorReply, ModelServer, Reply

from . import anthropic_error, model_for
from .planner_helpers import (
    EXPECTED,
    GOOD,
    InstantClock,
    json_reply,
    local_planner,
    plan_request,
    tool_reply,
)

LLAMACPP_SHAPE = [
    "Cannot determine type of 'item'",
    "Unable to generate parser for this template. Automatic parser generation failed: JSON "
    "schema error at #/properties/a: cannot resolve $ref #/$defs/Missing, $defs not found",
    "Unable to generate parser for this template. Automatic parser generation failed: JSON "
    "schema error at #/properties/a: unrecognized type foo",
    "JSON schema conversion failed: Unrecognized schema: {}",
]
OTHERS_SHAPE = [
    "registry.ollama.ai/library/gemma:2b does not support tools",
    '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
]


def llamacpp_400(message: str) -> Reply:
    """llama.cpp's own 400 body, byte for byte."""
    body = {"error": {"code": 400, "message": message, "type": "invalid_request_error"}}
    error = ErrorReply(
        status=400, body=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    return Reply(error=error)


async def failure_of(model: Any) -> BaseException:
    from pydantic_ai import Agent

    async with model:
        try:
            await Agent(model).run("hi")
        except Exception as exc:
            return exc
    raise AssertionError("the call succeeded")


@pytest.mark.parametrize("message", LLAMACPP_SHAPE)
async def test_llamacpp_refusing_a_schema_is_a_request_shape_error(
    fake: ModelServer, message: str
) -> None:
    fake.add(llamacpp_400(message))
    failure = classify(await failure_of(model_for(fake, "llamacpp")), provider="llamacpp")
    assert (failure.kind, failure.reason, failure.status) == ("config", "request_shape", 400)
    assert message.split(":")[0] in failure.message


@pytest.mark.parametrize("message", OTHERS_SHAPE)
async def test_a_server_without_tools_is_a_request_shape_error(
    fake: ModelServer, message: str
) -> None:
    fake.add(Reply(error=ErrorReply(status=400, message=message)))
    failure = classify(await failure_of(model_for(fake, "ollama")), provider="ollama")
    assert (failure.kind, failure.reason) == ("config", "request_shape")


async def test_anthropic_refusing_a_tool_schema_is_a_request_shape_error(fake: ModelServer) -> None:
    fake.add(
        anthropic_error(
            400, "invalid_request_error", "tools.0.input_schema: JSON schema is invalid"
        )
    )
    failure = classify(await failure_of(model_for(fake, "anthropic")), provider="anthropic")
    assert (failure.kind, failure.reason) == ("config", "request_shape")


async def test_a_hosted_provider_s_400_about_a_conversation_s_tool_calls_stays_rejected(
    fake: ModelServer,
) -> None:
    # Anthropic's words for a conversation blitz built wrong: blitz's to fix, not a reason to ask
    # without tools (a server of one's own saying "tool" is read as one).
    message = "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after"
    fake.add(anthropic_error(400, "invalid_request_error", message))
    failure = classify(await failure_of(model_for(fake, "anthropic")), provider="anthropic")
    assert (failure.kind, failure.reason) == ("config", "rejected")
    fake.add(Reply(error=ErrorReply(status=400, message="tool choice is not supported")))
    failure = classify(await failure_of(model_for(fake, "vllm")), provider="vllm")
    assert (failure.kind, failure.reason) == ("config", "request_shape")


@pytest.mark.parametrize("status", [400, 422])
async def test_a_400_about_something_else_stays_a_rejected_request(
    fake: ModelServer, status: int
) -> None:
    fake.add(Reply(error=ErrorReply(status=status, message="max_tokens must be at least 1")))
    failure = classify(await failure_of(model_for(fake, "llamacpp")), provider="llamacpp")
    assert (failure.kind, failure.reason) == ("config", "rejected")


async def test_a_request_shape_error_is_not_retried(fake: ModelServer) -> None:
    fake.add(llamacpp_400(LLAMACPP_SHAPE[0]), Reply(text="unused"))
    model = model_for(fake, "llamacpp")
    from pydantic_ai import Agent

    async with model:
        with pytest.raises(ProviderConfigError) as info:
            await call_with_retries(
                lambda: Agent(model).run("hi"),
                clock=InstantClock(),
                breakers=None,
                provider="llamacpp",
            )
    assert info.value.failure.reason == "request_shape"
    assert len(fake.requests) == 1


# -- the planner --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "tool"])
async def test_the_planner_falls_back_to_prompted_json_when_the_schema_is_refused(
    fake: ModelServer, repo: Path, mode: str
) -> None:
    fake.add(llamacpp_400(LLAMACPP_SHAPE[1]), json_reply(GOOD))
    async with model_for(fake, "llamacpp") as model:
        planned = await local_planner(model, output_mode=mode).plan(plan_request(repo))
    assert planned.plan.tasks == EXPECTED
    sent = fake.requests
    assert [(r.status, bool(r.body.get("tools"))) for r in sent] == [(400, True), (200, False)]


async def test_a_prompted_request_refused_too_is_a_plan_error_not_a_pause(
    fake: ModelServer, repo: Path
) -> None:
    fake.add(llamacpp_400(LLAMACPP_SHAPE[0]))
    async with model_for(fake, "llamacpp") as model:
        with pytest.raises(PlanError) as info:
            await local_planner(model, output_mode="prompted").plan(plan_request(repo))
    assert not isinstance(info.value, ProviderConfigError)
    assert "Cannot determine type of 'item'" in str(info.value)


async def test_tool_output_that_is_accepted_stays_tool_output(
    fake: ModelServer, repo: Path
) -> None:
    fake.add(tool_reply(GOOD))
    async with model_for(fake, "llamacpp") as model:
        plans = local_planner(model)
        await plans.plan(plan_request(repo))
    assert plans.output_modes == ("tool", "tool")
