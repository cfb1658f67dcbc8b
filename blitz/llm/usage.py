"""Tokens and money: what a model call cost, and a budget that stops spending.

Prices are USD per million tokens, looked up by ``provider:model``. The defaults below are data,
not logic (base-tier list prices from the genai-prices snapshot pydantic-ai ships); a settings
file overrides or adds entries. Self-hosted servers (``ollama``, ``llamacpp``, ``vllm``,
``lmstudio``) cost nothing per token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_ai.usage import RequestUsage, RunUsage

from blitz.domain import Usage
from blitz.errors import ConfigError
from blitz.llm.models import LOCAL_SERVERS, ModelSpec

PER = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """USD per million tokens. ``cached_input`` is a cache read; ``cache_write`` a cache write
    (OpenAI charges plain input for it). ``known`` is False for a model no table entry prices."""

    input: float
    output: float
    cached_input: float
    cache_write: float
    known: bool = True

    def cost(self, usage: RunUsage | RequestUsage) -> float:
        """USD for ``usage``, whose ``input_tokens`` include the cache reads and writes."""
        uncached = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
        return (
            uncached * self.input
            + usage.cache_read_tokens * self.cached_input
            + usage.cache_write_tokens * self.cache_write
            + usage.output_tokens * self.output
        ) / PER


def _price(input: float, output: float, cached_input: float, cache_write: float) -> Price:
    return Price(input=input, output=output, cached_input=cached_input, cache_write=cache_write)


UNKNOWN = Price(input=0, output=0, cached_input=0, cache_write=0, known=False)
FREE = _price(0, 0, 0, 0)

DEFAULT_PRICES: Mapping[str, Price] = {
    "anthropic:claude-opus-5-5": _price(4, 20, 0.2, 5),
    "anthropic:claude-sonnet-5-5": _price(2, 10, 0.1, 2.5),
    "anthropic:claude-haiku-5-5": _price(0.1, 0.5, 0.01, 0.125),
    "anthropic:claude-opus-4-8": _price(5, 25, 0.5, 6.25),
    "anthropic:claude-sonnet-4-6": _price(3, 15, 0.3, 3.75),
    "anthropic:claude-sonnet-4-5": _price(3, 15, 0.3, 3.75),
    "anthropic:claude-haiku-4-5": _price(1, 5, 0.1, 1.25),
    "openai:gpt-6.1-sol": _price(2, 10, 0.1, 2.5),
    "openai:gpt-6.1-terra": _price(1, 5, 0.05, 1.25),
    "openai:gpt-5.6-terra": _price(2, 12, 0.2, 2.5),
    "openai:gpt-5.6-luna": _price(0.2, 1.2, 0.02, 0.25),
    "openai:gpt-5": _price(1.25, 10, 0.125, 1.25),
    "openai:gpt-5-mini": _price(0.25, 2, 0.025, 0.25),
    **{f"{server}:*": FREE for server in LOCAL_SERVERS},
}
"""Default prices; ``provider:*`` prices every model of a provider."""

# A dated snapshot prices like its alias: claude-haiku-4-5-20251001, gpt-5-2025-08-07.
_SNAPSHOT = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")


class _PriceEntry(BaseModel):
    """One ``[prices."provider:model"]`` table of the settings file."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class PriceTable:
    """Prices by ``provider:model``; a model it does not know is priced :data:`UNKNOWN`."""

    def __init__(self, prices: Mapping[str, Price] = DEFAULT_PRICES) -> None:
        self._prices = dict(prices)

    @classmethod
    def from_settings(
        cls, data: Mapping[str, Any], *, base: Mapping[str, Price] = DEFAULT_PRICES
    ) -> PriceTable:
        """``base`` overridden by a TOML-style mapping of ``"provider:model"`` (or
        ``"provider:*"``) to ``{input, output, cached_input?, cache_write?}``; a missing cache
        price is the input price."""
        prices = dict(base)
        problems = []
        for key, raw in data.items():
            if ":" not in key:
                problems.append(f"{key!r}: name a model as provider:model or provider:*")
                continue
            try:
                entry = _PriceEntry.model_validate(raw)
            except ValidationError as exc:
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                    for e in exc.errors()
                )
                problems.append(f"{key!r}: {detail}")
                continue
            prices[key] = _price(
                entry.input,
                entry.output,
                entry.input if entry.cached_input is None else entry.cached_input,
                entry.input if entry.cache_write is None else entry.cache_write,
            )
        if problems:
            raise ConfigError("invalid prices:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(prices)

    def price(self, spec: ModelSpec) -> Price:
        """The price of ``spec``: its exact entry, its undated alias's, its provider's ``*``."""
        prices = self._prices
        for key in (
            f"{spec.provider}:{spec.name}",
            f"{spec.provider}:{_SNAPSHOT.sub('', spec.name)}",
            f"{spec.provider}:*",
        ):
            if key in prices:
                return prices[key]
        return UNKNOWN


def usage_of(run_usage: RunUsage | RequestUsage, spec: ModelSpec, prices: PriceTable) -> Usage:
    """blitz's :class:`~blitz.domain.Usage` for a run: ``input_tokens`` counts every input token
    (cached ones too), ``cached_tokens`` the cache reads among them. The cost comes from the
    table; for a model it does not know, from pydantic-ai's own estimate if it has one, else 0
    (``prices.price(spec).known`` then says so)."""
    price = prices.price(spec)
    if price.known:
        cost = price.cost(run_usage)
    elif run_usage.cost is not None:
        cost = float(run_usage.cost)
    else:
        cost = 0.0
    return Usage(
        input_tokens=run_usage.input_tokens,
        output_tokens=run_usage.output_tokens,
        cached_tokens=run_usage.cache_read_tokens,
        cost_usd=cost,
    )


class Budget:
    """A spending limit in USD (None: unlimited). :meth:`charge` each call's usage; once
    :attr:`exceeded`, start no further calls."""

    def __init__(self, limit_usd: float | None) -> None:
        if limit_usd is not None and not limit_usd >= 0:
            raise ConfigError(f"a budget must be a non-negative amount of USD, not {limit_usd}")
        self.limit_usd = limit_usd
        self.spent = 0.0

    def charge(self, usage: Usage) -> None:
        self.spent += max(0.0, usage.cost_usd)

    @property
    def exceeded(self) -> bool:
        """True once the spend has reached the limit."""
        return self.limit_usd is not None and self.spent >= self.limit_usd

    @property
    def remaining(self) -> float | None:
        """USD left before the limit (never negative); None when unlimited."""
        if self.limit_usd is None:
            return None
        return max(0.0, self.limit_usd - self.spent)

    def __repr__(self) -> str:
        return f"Budget(limit_usd={self.limit_usd}, spent={self.spent:.4f})"
