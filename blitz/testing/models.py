"""pydantic-ai ``FunctionModel`` helpers for fast unit tests of model-driven code.

:func:`scripted_model` answers each model request with the next scripted step: text, or tool
calls. It runs in-process, no HTTP; for the real SDK path use :mod:`blitz.testing.model_server`.

    model = scripted_model([
        call("write_file", path="a.txt", content="hi"),
        call("finish", summary="wrote a.txt"),
    ])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One scripted model response: some text and/or tool calls."""

    text: str = ""
    calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    input_tokens: int = 100
    output_tokens: int = 20


def say(text: str) -> Step:
    return Step(text=text)


def call(tool: str, /, **args: Any) -> Step:
    return Step(calls=((tool, args),))


def calls(*steps: Step) -> Step:
    """Several tool calls in one response."""
    return Step(calls=tuple(c for s in steps for c in s.calls))


@dataclass
class ScriptedModel:
    """The FunctionModel and what it saw: ``requests`` holds the messages of every request."""

    model: FunctionModel
    requests: list[list[ModelMessage]] = field(default_factory=list)
    tools: list[list[str]] = field(default_factory=list)  # tool names offered per request


def scripted_model(steps: Sequence[Step], *, repeat_last: bool = False) -> ScriptedModel:
    """A model answering request N with ``steps[N]``; past the end it raises (a test that asks
    more than it scripted should fail loudly) unless ``repeat_last``."""
    seen = ScriptedModel(model=FunctionModel(lambda m, i: ModelResponse(parts=[])))
    position = [0]

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.requests.append(list(messages))
        offered = [t.name for t in (*info.function_tools, *info.output_tools)]
        seen.tools.append(offered)
        index = position[0]
        position[0] += 1
        if index >= len(steps):
            if not repeat_last or not steps:
                raise AssertionError(
                    f"the model was asked {index + 1} times; {len(steps)} scripted"
                )
            index = len(steps) - 1
        step = steps[index]
        parts: list[Any] = [TextPart(step.text)] if step.text else []
        parts += [ToolCallPart(name, args) for name, args in step.calls]
        usage = RequestUsage(input_tokens=step.input_tokens, output_tokens=step.output_tokens)
        return ModelResponse(parts=parts, usage=usage)

    seen.model = FunctionModel(answer, model_name="scripted")
    return seen
