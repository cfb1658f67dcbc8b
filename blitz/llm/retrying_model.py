"""A model whose every request goes through :func:`blitz.llm.retries.call_with_retries`.

pydantic-ai's agent graph calls ``request()`` once per model turn; wrapping the model (rather than
the agent run) retries one turn, not the run from its start: transient failures are retried with
backoff on the injected clock, and every outcome reaches the provider's circuit breaker.
"""

from __future__ import annotations

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from blitz.breaker import BreakerBoard
from blitz.clock import Clock
from blitz.llm.retries import call_with_retries


class RetryingModel(WrapperModel):
    """A model whose requests go through :func:`call_with_retries`: transient failures are retried
    with backoff on the clock, and every outcome reaches the provider's circuit breaker."""

    def __init__(
        self,
        wrapped: Model,
        *,
        clock: Clock,
        breakers: BreakerBoard | None,
        provider: str,
        attempts: int,
    ) -> None:
        super().__init__(wrapped)
        self._clock = clock
        self._breakers = breakers
        self._provider_name = provider
        self._attempts = attempts

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        return await call_with_retries(
            lambda: self.wrapped.request(messages, model_settings, model_request_parameters),
            clock=self._clock,
            breakers=self._breakers,
            provider=self._provider_name,
            max_attempts=self._attempts,
        )
