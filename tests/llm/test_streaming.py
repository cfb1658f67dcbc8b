"""Every model call streams: the read timeout measures silence, a whole call has a cap, and an
answer that repeats itself is stopped. Real SDK clients and pydantic-ai against the scripted model
server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import ModelRequest, UserPromptPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from blitz.llm.errors import ModelOutputError, OutputStopped, classify
from blitz.llm.models import (
    HOSTED_IDLE_TIMEOUT,
    LOCAL_IDLE_TIMEOUT,
    ProviderConfig,
    build_model,
    idle_timeout,
    parse_model,
)
from blitz.llm.retries import call_with_retries
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer, Reply, ToolCall

from . import USAGE, model_for

PROVIDERS = ("anthropic", "openai", "openai-compatible", "ollama", "llamacpp")

STEADY = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen. " * 2
"""Text streamed in about a dozen events."""

LOOPING = "Task 3: add the function add(a, b) to src/calc.py and test it. " * 60
"""What a degenerate small model writes: one sentence, again and again."""


class InstantClock(ManualClock):
    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)


async def run_once(model: Any, **run: Any) -> Any:
    async with model:
        return await call_with_retries(
            lambda: Agent(model, **run).run("hi"),
            clock=InstantClock(),
            breakers=None,
            provider="llamacpp",
            max_attempts=3,
        )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_call_streams_and_keeps_usage_and_finish_reason(
    fake: ModelServer, provider: str
) -> None:
    fake.add(Reply(text=STEADY, usage=USAGE))
    model = model_for(fake, provider)
    async with model:
        result = await Agent(model).run("hi")
    assert result.output == STEADY
    [sent] = fake.requests
    assert sent.stream
    response = result.all_messages()[-1]
    assert response.usage.output_tokens == USAGE.output
    assert response.usage.input_tokens > 0
    assert response.finish_reason == "stop"
    # Leaving the model closes the HTTP client it owns, through the wrapper.
    assert model.client._client.is_closed


async def test_a_slow_but_steady_stream_is_never_cut(fake: ModelServer) -> None:
    # Each pause is well below the idle timeout; all of them together are well above it.
    fake.add(Reply(text=STEADY, chunk_delay=0.25))
    model = model_for(fake, "llamacpp", timeout=1.5)
    result = await run_once(model)
    assert result.output == STEADY
    assert len(fake.requests) == 1  # never retried from the start


async def test_silence_longer_than_the_idle_timeout_is_a_timeout(fake: ModelServer) -> None:
    fake.add(Reply(text=STEADY, chunk_delay=3))
    model = model_for(fake, "llamacpp", timeout=0.3)
    async with model:
        with pytest.raises(Exception) as info:
            await Agent(model).run("hi")
    assert (classify(info.value).kind, classify(info.value).reason) == ("transient", "timeout")


async def test_a_call_past_its_cap_is_stopped_and_not_retried(fake: ModelServer) -> None:
    fake.add(Reply(text=STEADY * 4, chunk_delay=0.2), Reply(text="unused"))
    model = model_for(fake, "llamacpp", timeout=5, call_timeout=0.8)
    with pytest.raises(ModelOutputError) as info:
        await run_once(model)
    assert (info.value.failure.kind, info.value.failure.reason) == ("bad_output", "too_long")
    assert "0.8s" in str(info.value)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("provider", ["anthropic", "openai-compatible"])
async def test_a_repeating_answer_is_stopped_and_not_retried(
    fake: ModelServer, provider: str
) -> None:
    fake.add(Reply(text=LOOPING), Reply(text="unused"))
    model = model_for(fake, provider)
    with pytest.raises(ModelOutputError) as info:
        await run_once(model)
    assert (info.value.failure.kind, info.value.failure.reason) == ("bad_output", "repeating")
    assert "Task 3: add the function" in str(info.value)
    assert isinstance(info.value.__cause__, OutputStopped)
    assert len(fake.requests) == 1


async def test_repeating_tool_call_arguments_are_stopped(fake: ModelServer) -> None:
    content = "def add(a, b):\n    return a + b\n\n" * 80
    fake.add(Reply(tool_calls=(ToolCall(name="write_file", input={"content": content}),)))
    model = model_for(fake, "openai-compatible")
    tool = ToolDefinition(
        name="write_file",
        parameters_json_schema={
            "type": "object",
            "properties": {"content": {"type": "string"}},
            "required": ["content"],
        },
    )
    request = ModelRequest(parts=[UserPromptPart("write it")])
    async with model:
        with pytest.raises(OutputStopped) as info:
            await model.request([request], None, ModelRequestParameters(function_tools=[tool]))
    assert info.value.reason == "repeating"


async def test_a_long_varied_answer_is_not_taken_for_a_repetition(fake: ModelServer) -> None:
    text = "".join(f"line {n}: the value of item {n * 7} is {n * n}\n" for n in range(400))
    fake.add(Reply(text=text))
    result = await run_once(model_for(fake, "openai-compatible"))
    assert result.output == text


def test_idle_timeouts_default_by_kind_of_server() -> None:
    keys = ProviderConfig(anthropic_api_key="a-key-000000", openai_api_key="o-key-000000")
    for text in (
        "ollama:m",
        "llamacpp:m",
        "openai-compatible:m@http://h:1/v1",
        "openai:q@http://h",
    ):
        assert idle_timeout(parse_model(text), keys) == LOCAL_IDLE_TIMEOUT
    for text in ("anthropic:claude-sonnet-4-6", "openai:gpt-5"):
        assert idle_timeout(parse_model(text), keys) == HOSTED_IDLE_TIMEOUT
    assert idle_timeout(parse_model("ollama:m"), ProviderConfig(timeout=42)) == 42
    model = build_model(parse_model("llamacpp:m"), ProviderConfig())
    assert model.client.timeout == LOCAL_IDLE_TIMEOUT
    assert model.client._client.timeout.read == LOCAL_IDLE_TIMEOUT
    assert model.call_timeout == 3600


def test_a_bad_call_timeout_is_a_config_error() -> None:
    from blitz.errors import ConfigError

    with pytest.raises(ConfigError, match="call timeout"):
        build_model(parse_model("ollama:m"), ProviderConfig(call_timeout=0))


@pytest.mark.parametrize(
    ("text", "kept"),
    [("llamacpp:m", 0), ("openai:q@http://127.0.0.1:8080/v1", 0), ("anthropic:m", 100)],
)
def test_servers_of_ones_own_get_a_fresh_connection_per_request(text: str, kept: int) -> None:
    # llama.cpp drops a kept-alive connection reused right after a streamed answer.
    config = ProviderConfig(anthropic_api_key="a-key-000000", openai_api_key="o-key-000000")
    model = build_model(parse_model(text), config)
    assert model.client._client._transport._pool._max_keepalive_connections == kept
