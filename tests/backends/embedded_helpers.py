"""What the embedded agent's tests share: the scripted model server, a backend pointed at it
(Anthropic or an OpenAI-compatible server) with a clock whose sleeps return at once, and the
shapes of the replies they script."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from blitz.backends.embedded import EmbeddedBackend, EmbeddedLimits
from blitz.breaker import BreakerBoard
from blitz.llm import PriceTable, ProviderConfig, build_model, parse_model
from blitz.llm.errors import ProviderConfigError, ProviderFailure
from blitz.llm.usage import DEFAULT_PRICES, Price
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

KEY = "sk-ant-embedded-test-key-0123456789"
ANTHROPIC = "anthropic:claude-sonnet-4-6"
COMPATIBLE = "openai-compatible:coder"
MODELS = [ANTHROPIC, COMPATIBLE]

# Sonnet's list price, given to the compatible model too so both runs cost the same.
SONNET = Price(input=3, output=15, cached_input=0.3, cache_write=3.75)
PRICES = PriceTable({**DEFAULT_PRICES, "openai-compatible:coder": SONNET})


class InstantClock(ManualClock):
    """A manual clock whose sleeps return at once, having moved time on; records the waits."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def backend(
    server: ModelServer,
    model: str = ANTHROPIC,
    *,
    key: str = KEY,
    clock: InstantClock | None = None,
    breakers: BreakerBoard | None = None,
    wrap: Callable[[Model], Model] | None = None,
    **limits: Any,
) -> EmbeddedBackend:
    if model == COMPATIBLE:
        model = f"{COMPATIBLE}@{server.openai_base_url}"
    spec = parse_model(model)
    config = ProviderConfig(
        anthropic_api_key=key, anthropic_base_url=server.url, compatible_api_key=key
    )
    built = build_model(spec, config)
    return EmbeddedBackend(
        model=wrap(built) if wrap is not None else built,
        spec=spec,
        prices=PRICES,
        clock=clock or InstantClock(),
        breakers=breakers,
        limits=EmbeddedLimits(**limits),
    )


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "input": args}


def finish(summary: str = "Added hello().", **condition: Any) -> dict[str, Any]:
    return {**condition, "reply": {"tool_calls": [call("finish", summary=summary)]}}


def tool_results(server: ModelServer) -> str:
    return "\n".join(request.tool_results for request in server.requests)


class RefusingSchemas(WrapperModel):
    """The model, except that a request defining tools is refused as llama.cpp refuses a schema
    its grammar converter cannot type, classified ``request_shape`` (helper B's classification
    of that 400; until it lands, constructed here)."""

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        if model_request_parameters.function_tools:
            failure = ProviderFailure(
                kind="config",
                status=400,
                retry_after=None,
                reason="request_shape",
                message="Unable to generate parser for this template. JSON schema error at #/a",
            )
            raise ProviderConfigError(failure)
        return await self.wrapped.request(messages, model_settings, model_request_parameters)
