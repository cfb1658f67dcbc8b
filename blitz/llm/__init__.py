"""Model calls: model names to pydantic-ai models, usage and cost, and provider failures.

* :mod:`.models` - ``provider:model`` names (Anthropic, OpenAI, OpenAI-compatible servers such as
  Ollama, vLLM, llama.cpp, LM Studio) to pydantic-ai models, configured only through a
  :class:`ProviderConfig`.
* :mod:`.streaming` - every call streams: the read timeout measures silence, a whole call has a
  cap, and :mod:`.repetition` stops an answer that repeats itself.
* :mod:`.usage` - prices, the cost of a run as a :class:`blitz.domain.Usage`, and a budget.
* :mod:`.errors` - what a failure means (transient, config, bad output, other);
  :mod:`.retries` the single retry loop with the provider's circuit breaker, following the one
  retry and waiting policy of :mod:`blitz.waiting`.
* :mod:`.text_tools` - tool calls a model wrote as text (``<tool_call>`` tags, fenced or bare
  JSON), found and checked against the tool's JSON schema, and the correction for a model that
  wrote none; :mod:`.text_calls` the model wrapper that turns them into tool calls (and asks a
  server that refuses tool definitions without them); :mod:`.retrying_model` a model whose every
  request goes through :func:`call_with_retries`.

Invariant: SDK clients never retry (``max_retries=0``); :func:`call_with_retries` is the only
place a model call is repeated, so ``max_attempts`` bounds the HTTP requests of a logical call.
"""

from blitz.llm.breakers import ProviderUnavailable, breaker_key
from blitz.llm.errors import (
    ModelOutputError,
    ProviderConfigError,
    ProviderDown,
    ProviderError,
    ProviderFailure,
    classify,
)
from blitz.llm.models import ModelSpec, ProviderConfig, build_model, model_settings, parse_model
from blitz.llm.retries import RetryStats, call_with_retries
from blitz.llm.usage import Budget, Price, PriceTable, usage_of

__all__ = [
    "Budget",
    "ModelOutputError",
    "ModelSpec",
    "Price",
    "PriceTable",
    "ProviderConfig",
    "ProviderConfigError",
    "ProviderDown",
    "ProviderError",
    "ProviderFailure",
    "ProviderUnavailable",
    "RetryStats",
    "breaker_key",
    "build_model",
    "call_with_retries",
    "classify",
    "model_settings",
    "parse_model",
    "usage_of",
]
