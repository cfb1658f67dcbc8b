"""Trying a model once, tiny, to say what it supports and how fast it answers (``blitz doctor``).

:func:`probe_model` makes at most three small requests through the same pydantic-ai model blitz
builds for a run (:func:`blitz.llm.models.build_model`), each bounded by ``max_tokens`` and a
timeout:

1. a streamed answer to a short prompt: does the model answer at all, the time to its first
   token and its output tokens per second after that;
2. the offer of one tool with ``tool_choice`` auto and a question only the tool answers: does it
   call the tool natively (a ``tool_calls`` entry), write the call as text (which blitz's
   embedded agent reads too), or neither;
3. ``response_format`` with a JSON schema (native structured output): does the server accept it
   (a 400 here is a grammar converter refusing the schema, or no support at all).

The figures are indications from one try, not a benchmark.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.output import OutputObjectDefinition
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from blitz.llm.errors import classify
from blitz.llm.models import ModelSpec, ProviderConfig, build_model, model_settings
from blitz.llm.text_tools import find_tool_calls

TIMEOUT = 120.0
"""Seconds one probe request may take (a CPU model evaluates the prompt first)."""

MAX_TOKENS = 48
"""Output tokens a probe request may produce."""

TOOL = ToolDefinition(
    name="get_weather",
    description="The current weather in a city.",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "the city's name"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)

ANSWER = OutputObjectDefinition(
    name="answer",
    description="The answer to the question.",
    json_schema={
        "type": "object",
        "properties": {"answer": {"type": "string"}, "sure": {"type": "boolean"}},
        "required": ["answer", "sure"],
        "additionalProperties": False,
    },
)

SPEED_PROMPT = "Count from 1 to 30, separated by spaces. Write nothing else."
TOOL_PROMPT = "What is the weather in Paris right now? Use the get_weather tool."
SCHEMA_PROMPT = "What is the capital of France?"

ToolCalling = Literal["native", "text", "none"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One line of what a probe found: ``status`` is ok, warn or fail."""

    name: str
    status: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelProbe:
    """What one try of a model showed. ``None`` is "not found out" (an earlier step failed, or
    this step failed for a reason that says nothing about the model, such as a timeout)."""

    model: str
    answers: bool
    error: str = ""  # why it did not answer
    tool_calls: ToolCalling | None = None
    tool_detail: str = ""
    json_schema: bool | None = None
    json_schema_detail: str = ""
    first_token_seconds: float | None = None
    tokens_per_second: float | None = None
    output_tokens: int = 0

    def findings(self) -> list[Finding]:
        """One finding per thing probed, worded for ``blitz doctor``."""
        name = f"model {self.model}"
        if not self.answers:
            return [Finding(name=name, status="fail", detail=f"does not answer: {self.error}")]
        speed = "time to first token "
        speed += f"{self.first_token_seconds:.1f} s" if self.first_token_seconds else "unknown"
        if self.tokens_per_second:
            speed += f", {self.tokens_per_second:.1f} tokens/s"
        found = [Finding(name=name, status="ok", detail=f"answers; {speed}")]
        tools = {
            "native": ("ok", "calls tools natively (tool_calls)"),
            "text": (
                "warn",
                "writes tool calls as text, not as tool_calls: the embedded agent reads them, "
                "less reliably",
            ),
            "none": ("warn", "made no tool call when asked to: it may not manage agent work"),
            None: ("warn", "tool calls not found out"),
        }
        status, detail = tools[self.tool_calls]
        if self.tool_detail:
            detail += f" ({self.tool_detail})"
        found.append(Finding(name=f"{name} tools", status=status, detail=detail))
        if self.json_schema is None:
            schema = ("warn", "JSON-schema output not found out")
        elif self.json_schema:
            schema = ("ok", "accepts response_format json_schema")
        else:
            schema = ("warn", "refuses response_format json_schema (blitz asks for JSON instead)")
        detail = schema[1] + (f": {self.json_schema_detail}" if self.json_schema_detail else "")
        found.append(Finding(name=f"{name} json schema", status=schema[0], detail=detail))
        return found


async def probe_model(
    spec: ModelSpec,
    config: ProviderConfig,
    *,
    timeout: float = TIMEOUT,
    max_tokens: int = MAX_TOKENS,
) -> ModelProbe:
    """Try ``spec``'s model (built with ``config``) and say what it supports; never raises for
    what the model or its server does (a ConfigError for a model that cannot be built)."""
    model = build_model(spec, config)
    settings = ModelSettings(**model_settings(spec), max_tokens=max_tokens)
    label = str(spec)

    async def bounded(step: Callable[[], Coroutine[Any, Any, T]]) -> T:
        async with asyncio.timeout(timeout):
            return await step()

    async with model:
        try:
            first, speed, tokens = await bounded(lambda: _speed(model, settings))
        except Exception as exc:
            return ModelProbe(model=label, answers=False, error=_why(exc, spec, timeout))
        try:
            tool_calls, tool_detail = await bounded(lambda: _tool_call(model, settings))
        except Exception as exc:
            tool_calls, tool_detail = None, _why(exc, spec, timeout)
        json_schema: bool | None = True
        schema_detail = ""
        try:
            await bounded(lambda: _native_output(model, settings))
        except Exception as exc:
            refused = classify(exc, provider=spec.provider).status in (400, 422)
            json_schema = False if refused else None
            schema_detail = _why(exc, spec, timeout)
    return ModelProbe(
        model=label,
        answers=True,
        tool_calls=tool_calls,
        tool_detail=tool_detail,
        json_schema=json_schema,
        json_schema_detail=schema_detail,
        first_token_seconds=first,
        tokens_per_second=speed,
        output_tokens=tokens,
    )


def _ask(prompt: str) -> list[ModelMessage]:
    return [ModelRequest(parts=[UserPromptPart(content=prompt)])]


async def _speed(model: Model, settings: ModelSettings) -> tuple[float | None, float | None, int]:
    """Stream an answer: seconds to the first token, tokens per second after it, tokens."""
    params = ModelRequestParameters(allow_text_output=True)
    start = time.monotonic()
    first: float | None = None
    async with model.request_stream(_ask(SPEED_PROMPT), settings, params) as stream:
        async for event in stream:
            if first is None and _is_output(event):
                first = time.monotonic()
        response = stream.get()
    end = time.monotonic()
    if not response.text:
        raise ValueError("the model's answer was empty")
    tokens = response.usage.output_tokens
    speed = None
    if first is not None and tokens > 1 and end > first:
        speed = (tokens - 1) / (end - first)
    return (first - start if first is not None else None), speed, tokens


def _is_output(event: object) -> bool:
    """Whether a stream event carries output (text, a tool call, thinking): the first token."""
    if isinstance(event, PartStartEvent):
        return not isinstance(event.part, TextPart) or bool(event.part.content)
    if isinstance(event, PartDeltaEvent):
        return not isinstance(event.delta, TextPartDelta) or bool(event.delta.content_delta)
    return False


async def _tool_call(model: Model, settings: ModelSettings) -> tuple[ToolCalling, str]:
    """Offer one tool (tool_choice auto) and see how the model calls it."""
    params = ModelRequestParameters(function_tools=[TOOL], allow_text_output=True)
    response = await model.request(_ask(TOOL_PROMPT), settings, params)
    if any(isinstance(part, ToolCallPart) for part in response.parts):
        return "native", ""
    text = _text(response)
    calls = find_tool_calls(text, {TOOL.name: TOOL.parameters_json_schema})
    if any(call.name == TOOL.name for call in calls):
        return "text", f"wrote {_excerpt(text)}"
    return "none", f"answered {_excerpt(text)}" if text else "answered nothing"


async def _native_output(model: Model, settings: ModelSettings) -> None:
    """Ask for output fitting a JSON schema (response_format json_schema); raises if refused."""
    params = ModelRequestParameters(output_mode="native", output_object=ANSWER)
    await model.request(_ask(SCHEMA_PROMPT), settings, params)


def _text(response: ModelResponse) -> str:
    return "".join(part.content for part in response.parts if isinstance(part, TextPart))


def _excerpt(text: str, chars: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= chars else flat[: chars - 3] + "...")


def _why(exc: BaseException, spec: ModelSpec, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    return classify(exc, provider=spec.provider).message or type(exc).__name__
