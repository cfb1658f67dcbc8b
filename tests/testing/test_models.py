"""The FunctionModel helpers drive a real pydantic-ai agent loop."""

from __future__ import annotations

import pytest
from pydantic_ai import Agent

from blitz.testing.models import call, say, scripted_model


async def test_a_scripted_model_calls_tools_then_answers() -> None:
    seen = scripted_model([call("double", x=21), say("the answer is 42")])
    agent = Agent(seen.model)
    results: list[int] = []

    @agent.tool_plain
    def double(x: int) -> int:
        results.append(x * 2)
        return x * 2

    run = await agent.run("double 21")
    assert run.output == "the answer is 42"
    assert results == [42]
    assert len(seen.requests) == 2 and "double" in seen.tools[0]
    assert run.usage.input_tokens == 200


async def test_asking_more_than_scripted_fails_loudly() -> None:
    seen = scripted_model([call("nothing_here")])
    agent = Agent(seen.model)
    with pytest.raises(AssertionError, match="scripted"):
        await agent.run("go")
