"""Every model call streams, so a timeout measures silence and a runaway answer is stopped.

:class:`StreamingModel` wraps the model :func:`blitz.llm.models.build_model` builds. Its
:meth:`~StreamingModel.request` (what ``agent.run`` and ``agent.iter`` call) asks the wrapped
model for a stream and consumes it, returning the same :class:`~pydantic_ai.messages.ModelResponse`
a plain request would (usage and finish reason included). Streaming changes what the timeouts
mean:

* the HTTP client's read timeout (:attr:`ProviderConfig.timeout`) becomes an *idle* timeout: the
  time with no bytes at all. A slow but steady model is never cut; llama.cpp's server sends an SSE
  ping every 30 s while it evaluates a long prompt, which keeps the call alive too;
* the whole call has a separate, generous cap (``call_timeout``): past it the answer is
  abandoned with :class:`~blitz.llm.errors.OutputStopped` (reason ``too_long``);
* an answer that repeats itself (:mod:`blitz.llm.repetition`, on text, thinking and tool-call
  argument deltas) is abandoned as soon as it is noticed, with reason ``repeating``.

:func:`blitz.llm.errors.classify` makes both ``bad_output``: no retry from the start, the caller
re-asks with a correction; a stopped answer carries what had streamed (``partial``), so a call
written as text before the loop can still be made (:mod:`blitz.llm.text_calls`), with its usage
(the server's, else estimated from characters) so a stopped answer is not a free one.
:meth:`~StreamingModel.request_stream` passes through unchanged.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    ModelResponseStreamEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ThinkingPartDelta,
    ToolCallPart,
    ToolCallPartDelta,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage

from blitz.llm.errors import OutputStopped
from blitz.llm.repetition import RepeatWatch

DEFAULT_CALL_TIMEOUT = 3600.0
"""Seconds a whole model call may take, however steadily it streams."""


class StreamingModel(WrapperModel):
    """A model whose every request streams, with a cap on the whole call (``call_timeout``
    seconds) and a stop for answers that repeat themselves."""

    def __init__(self, wrapped: Model, *, call_timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        if not call_timeout > 0:
            raise ValueError(f"call_timeout must be positive, not {call_timeout}")
        super().__init__(wrapped)
        self.call_timeout = call_timeout

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        watches: dict[int, RepeatWatch] = {}
        cap = asyncio.timeout(self.call_timeout)
        streamed: list[Any] = []  # the stream, once open: what it holds when stopped
        try:
            async with (
                cap,
                self.wrapped.request_stream(
                    messages, model_settings, model_request_parameters
                ) as stream,
            ):
                streamed.append(stream)
                async for event in stream:
                    try:
                        _watch(event, watches)
                    except OutputStopped as stopped:
                        stopped.partial = with_usage(stream.get(), messages)
                        raise
                return stream.get()
        except TimeoutError as exc:
            if cap.expired():  # the cap, not the client's idle timeout
                late = OutputStopped(
                    "too_long",
                    f"the answer took longer than the {self.call_timeout:g}s a model call may "
                    "take; it was stopped",
                )
                if streamed:
                    late.partial = with_usage(streamed[0].get(), messages)
                raise late from exc
            raise


CHARS_PER_TOKEN = 4
"""Characters per token, roughly, for the usage of an answer stopped before its server said."""


def with_usage(partial: ModelResponse, messages: list[ModelMessage]) -> ModelResponse:
    """``partial``, a stopped answer, with its usage: what the server reported, else an estimate
    from the characters sent and streamed (OpenAI-style servers report usage only at the end of
    a stream, and a stopped answer still cost its tokens, for budgets and turn limits alike)."""
    usage = partial.usage
    if usage.output_tokens and usage.input_tokens:
        return partial
    output = sum(len(_part_text(part)) for part in partial.parts)
    sent = sum(len(str(part)) for message in messages for part in message.parts)
    estimated = RequestUsage(
        input_tokens=usage.input_tokens or -(-sent // CHARS_PER_TOKEN),
        output_tokens=usage.output_tokens or -(-output // CHARS_PER_TOKEN),
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    return replace(partial, usage=estimated)


def _part_text(part: Any) -> str:
    if isinstance(part, TextPart | ThinkingPart):
        return part.content
    if isinstance(part, ToolCallPart):
        return part.args_as_json_str()
    return ""


def _watch(event: ModelResponseStreamEvent, watches: dict[int, RepeatWatch]) -> None:
    """Feed the text of ``event`` to its part's watch; raise once the part repeats itself."""
    text = _streamed_text(event)
    if not text:
        return
    index = event.index if isinstance(event, PartStartEvent | PartDeltaEvent) else -1
    watch = watches.setdefault(index, RepeatWatch())
    found = watch.feed(text)
    if found is not None:
        raise OutputStopped(
            "repeating",
            f"the answer repeated itself ({found.describe()}); it was stopped",
        )


def _streamed_text(event: ModelResponseStreamEvent) -> str:
    if isinstance(event, PartStartEvent):
        part: Any = event.part
        if isinstance(part, TextPart | ThinkingPart):
            return part.content
        if isinstance(part, ToolCallPart):
            return part.args if isinstance(part.args, str) else ""
        return ""
    if isinstance(event, PartDeltaEvent):
        delta: Any = event.delta
        if isinstance(delta, TextPartDelta):
            return delta.content_delta
        if isinstance(delta, ThinkingPartDelta):
            return delta.content_delta or ""
        if isinstance(delta, ToolCallPartDelta):
            return delta.args_delta if isinstance(delta.args_delta, str) else ""
    return ""
