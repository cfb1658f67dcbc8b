"""A model wrapper for models that write their tool calls as text.

:class:`TextCallingModel` wraps the model of one agent run. A response with no ``ToolCallPart``
whose text holds calls to the tools the request offered (its function tools and output tools,
found by :func:`~blitz.llm.text_tools.find_tool_calls`) comes back with those calls as
``ToolCallPart``\\ s, each with a fresh id, and the text outside them as a ``TextPart`` when it is
not blank. pydantic-ai then validates and runs them like any call made through the interface: a
call whose arguments break the tool's schema gets pydantic-ai's retry prompt.

Calls that cannot be made at all (unreadable JSON, a tool that is not offered) are left in the text
and listed in :attr:`TextCallingModel.failed`, for the agent to re-ask with their errors.

The conversation goes back to the model in its own words: an answer whose calls were read from
its text is sent as that text, and their results as a plain user message (a retry as its
message, not wrapped in JSON). Shown its text calls as interface calls and their results as
``tool`` messages, Qwen2.5-Coder-1.5B ended its turn at once, again and again.

An empty answer (no call, no text: a small model often ends its turn at once after a tool's
result) is refused with a :class:`~blitz.llm.errors.ModelOutputError` of reason ``empty`` when
the wrapper is made with ``allow_empty=False``, for the agent to re-ask with a correction rather
than pydantic-ai's generic "Please return text" retry; its usage travels with it.

An answer stopped for repeating itself (:class:`~blitz.llm.errors.OutputStopped`) whose text
already held complete calls (a small model often writes its call, then explains it in a loop)
comes back with those calls, as if it had ended there.

**Text tool mode** (from the start with ``text_mode=True``; as a fallback unless made with
``text_mode_fallback=False``). A server that refuses the request's shape (a tool schema its grammar
converter cannot type, a model without tool support: :func:`refuses_request_shape`) gets the same
request again without tool definitions, with
:func:`~blitz.llm.text_tools.tool_calling_instructions` added to the instructions and the
conversation's earlier interface calls and results written as text (``<tool_call>`` /
``<tool_response>``, the way Qwen's chat template renders them). The mode is sticky for the rest
of the run; when that request is refused too, the first refusal stands.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic_ai.messages import (
    InstructionPart,
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    ModelResponsePart,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from blitz.llm.errors import ModelOutputError, OutputStopped, ProviderConfigError, ProviderFailure
from blitz.llm.text_tools import TextToolCall, find_tool_calls, tool_calling_instructions

_EMPTY_WRAPPERS = re.compile(r"</?tool_call>|```[\w+.-]*\s*```", re.I)

SHAPE_STATUSES = (400, 422)
"""Statuses of a refused request (older classifications: a refusal that mentions tools)."""


def refuses_request_shape(exc: BaseException) -> bool:
    """Whether ``exc`` is a server refusing the request's shape (its tools or schemas), which a
    request without tool definitions may get past."""
    if not isinstance(exc, ProviderConfigError):
        return False
    failure = exc.failure
    if failure.reason == "request_shape":
        return True
    return failure.status in SHAPE_STATUSES and "tool" in failure.message.lower()


def offered_tools(params: ModelRequestParameters) -> dict[str, dict[str, Any]]:
    """The tools a request offers, by name, with the JSON schema of their parameters."""
    return {
        tool.name: dict(tool.parameters_json_schema)
        for tool in (*params.function_tools, *params.output_tools)
    }


class TextCallingModel(WrapperModel):
    """The model of one agent run, reading tool calls written as text; see the module docstring.

    ``offered`` is what the last request offered, ``failed`` the errors of the call attempts in
    the last response when none of them could be made, ``text_mode`` whether requests go out
    without tool definitions.
    """

    def __init__(
        self,
        wrapped: Model,
        *,
        text_mode_fallback: bool = True,
        text_mode: bool = False,
        allow_empty: bool = True,
    ) -> None:
        super().__init__(wrapped)
        self.allow_empty = allow_empty
        self.offered: dict[str, dict[str, Any]] = {}
        self.failed: list[str] = []
        self.text_mode = text_mode
        self._fallback = text_mode_fallback
        self._descriptions: dict[str, str] = {}
        self._written: dict[str, str] = {}  # a call read from text: the text it was read from

    @property
    def writes_calls_as_text(self) -> bool:
        """Whether the model's calls are read from its text (it wrote one so, or requests go out
        without tool definitions): a small model, most likely."""
        return self.text_mode or bool(self._written)

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        params = model_request_parameters
        self.offered = offered_tools(params)
        self._descriptions = {
            tool.name: tool.description or ""
            for tool in (*params.function_tools, *params.output_tools)
        }
        try:
            response = await self._request(
                _in_own_words(messages, self._written), model_settings, params
            )
        except (OutputStopped, ModelOutputError) as exc:
            salvaged = self._salvaged(exc)
            if salvaged is None:
                raise
            return salvaged
        response = self._with_calls(response)
        if not self.allow_empty and _empty(response):
            empty = OutputStopped("empty", "its answer was empty")
            empty.partial = response
            raise ModelOutputError(
                ProviderFailure(
                    kind="bad_output",
                    status=None,
                    retry_after=None,
                    reason="empty",
                    message="the model's output was unusable: its answer was empty",
                )
            ) from empty
        return response

    async def _request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        params: ModelRequestParameters,
    ) -> ModelResponse:
        if self.text_mode:
            return await self._request_as_text(messages, model_settings, params)
        try:
            return await self.wrapped.request(messages, model_settings, params)
        except ProviderConfigError as refusal:
            if not (self._fallback and self.offered and refuses_request_shape(refusal)):
                raise
            self.text_mode = True
            try:
                return await self._request_as_text(messages, model_settings, params)
            except ProviderConfigError:
                raise refusal from None

    def _salvaged(self, exc: BaseException) -> ModelResponse | None:
        """The calls written as text before an answer was stopped for repeating itself (a small
        model often writes its call, then explains it in a loop), or None."""
        stopped = exc if isinstance(exc, OutputStopped) else exc.__cause__
        if not isinstance(stopped, OutputStopped) or stopped.partial is None:
            return None
        if any(isinstance(part, ToolCallPart) for part in stopped.partial.parts):
            return None  # a call made through the interface was cut mid-way: nothing to keep
        response = self._with_calls(stopped.partial)
        if not any(isinstance(part, ToolCallPart) for part in response.parts):
            return None
        return response

    async def _request_as_text(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        params: ModelRequestParameters,
    ) -> ModelResponse:
        """The request without tool definitions, the tools described in the instructions."""
        how = tool_calling_instructions(self.offered, self._descriptions)
        bare = replace(
            params,
            function_tools=[],
            output_tools=[],
            output_mode="text",
            allow_text_output=True,
            tool_visibility=None,
            instruction_parts=_with_instructions(params.instruction_parts, how),
        )
        return await self.wrapped.request(_as_text(messages), model_settings, bare)

    def _with_calls(self, response: ModelResponse) -> ModelResponse:
        """``response`` with the calls its text holds as ``ToolCallPart``\\ s."""
        self.failed = []
        if any(isinstance(part, ToolCallPart) for part in response.parts) or not self.offered:
            return response
        texts = [part.content for part in response.parts if isinstance(part, TextPart)]
        text = "\n\n".join(texts)
        found = find_tool_calls(text, self.offered)
        usable = [call for call in found if call.readable]
        if not usable:
            self.failed = [call.error for call in found if call.error]
            return response
        others = [part for part in response.parts if not isinstance(part, TextPart)]
        parts: list[ModelResponsePart] = [*others]
        prose = _outside(text, usable)
        if prose.strip():
            parts.append(TextPart(prose.strip()))
        calls = [
            ToolCallPart(call.name or "", call.arguments, tool_call_id=_fresh_id())
            for call in usable
        ]
        parts.extend(calls)
        self._written.update((call.tool_call_id, text) for call in calls)
        return replace(response, parts=parts)


def _empty(response: ModelResponse) -> bool:
    """Whether ``response`` holds no call and no text but blank space and code fences
    (Qwen2.5-Coder-1.5B answers a bare "```" where it means nothing)."""
    return not any(
        isinstance(part, ToolCallPart)
        or (isinstance(part, TextPart) and part.content.replace("```", "").strip())
        for part in response.parts
    )


def _with_instructions(parts: list[InstructionPart] | None, how: str) -> list[InstructionPart]:
    """``parts`` with ``how`` added to the last one: one system message, which every chat template
    accepts (some refuse a system message that is not the first)."""
    if not parts:
        return [InstructionPart(content=how)]
    last = parts[-1]
    return [*parts[:-1], replace(last, content=f"{last.content}\n\n{how}")]


def _outside(text: str, calls: Sequence[TextToolCall]) -> str:
    """``text`` without the spans of ``calls``, and without the tags and fences left empty."""
    kept, position = [], 0
    for call in calls:
        start, end = call.span
        kept.append(text[position:start])
        position = max(position, end)
    kept.append(text[position:])
    return _EMPTY_WRAPPERS.sub("", "".join(kept))


def _fresh_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _as_text(messages: Sequence[ModelMessage]) -> list[ModelMessage]:
    """The conversation with its tool calls and results written as text, for a request that
    defines no tools (a server may refuse calls to tools it was not told of)."""
    written: list[ModelMessage] = []
    for message in messages:
        if isinstance(message, ModelResponse):
            parts: list[ModelResponsePart] = [
                TextPart(_tag("tool_call", _call_json(part)))
                if isinstance(part, ToolCallPart)
                else part
                for part in message.parts
            ]
            written.append(replace(message, parts=_merged_text(parts)))
        elif isinstance(message, ModelRequest):
            request_parts: list[ModelRequestPart] = [
                UserPromptPart(_tag("tool_response", part.model_response_str()))
                if isinstance(part, ToolReturnPart)
                else part
                for part in message.parts
            ]
            written.append(replace(message, parts=request_parts))
        else:
            written.append(message)
    return written


def _in_own_words(messages: list[ModelMessage], written: dict[str, str]) -> list[ModelMessage]:
    """The conversation with the calls read from the model's text shown as it wrote them, and
    their results as the user's words: a model that writes its calls as text, shown them as
    calls made through the interface (``tool_calls`` and ``tool`` messages), answers nothing
    (Qwen2.5-Coder-1.5B ended its turn at once after six of six such results, and answered each
    when shown its own fenced calls and the results as plain messages)."""
    if not written:
        return messages
    shown: list[ModelMessage] = []
    for message in messages:
        if isinstance(message, ModelResponse):
            ids = [p.tool_call_id for p in message.parts if isinstance(p, ToolCallPart)]
            if ids and all(i in written for i in ids):
                message = replace(message, parts=[TextPart(written[ids[0]])])
        elif isinstance(message, ModelRequest):
            results = [_said(p) for p in message.parts if _answers(p, written)]
            if results:
                others = [p for p in message.parts if not _answers(p, written)]
                parts: list[ModelRequestPart] = [UserPromptPart("\n\n".join(results)), *others]
                message = replace(message, parts=parts)
        shown.append(message)
    return shown


def _answers(part: ModelRequestPart, written: dict[str, str]) -> bool:
    """Whether ``part`` is the result of a call read from text."""
    return isinstance(part, ToolReturnPart | RetryPromptPart) and part.tool_call_id in written


def _said(part: ModelRequestPart) -> str:
    """A call's result as plain words (a retry's message, not wrapped in JSON)."""
    if isinstance(part, ToolReturnPart):
        if part.outcome == "retried" and isinstance(part.content, str):
            return part.content
        return part.model_response_str()
    if isinstance(part, RetryPromptPart):
        return part.model_response()
    return ""


def _call_json(part: ToolCallPart) -> str:
    return json.dumps({"name": part.tool_name, "arguments": part.args_as_dict()})


def _tag(name: str, content: str) -> str:
    return f"<{name}>\n{content}\n</{name}>"


def _merged_text(parts: list[ModelResponsePart]) -> list[ModelResponsePart]:
    """Adjacent text parts as one, the way a model writes them."""
    merged: list[ModelResponsePart] = []
    for part in parts:
        last = merged[-1] if merged else None
        if isinstance(part, TextPart) and isinstance(last, TextPart):
            merged[-1] = TextPart(f"{last.content}\n{part.content}")
        else:
            merged.append(part)
    return merged
