from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest
from pydantic_ai import Agent
from pydantic_ai.usage import RunUsage

from blitz.domain import Usage
from blitz.errors import ConfigError
from blitz.llm.models import parse_model
from blitz.llm.usage import DEFAULT_PRICES, UNKNOWN, Budget, Price, PriceTable, usage_of
from blitz.testing.model_server import ModelServer

from . import USAGE, model_for

SONNET = parse_model("anthropic:claude-sonnet-4-6")


def test_cost_splits_input_into_uncached_cache_reads_and_cache_writes() -> None:
    price = Price(input=3, output=15, cached_input=0.3, cache_write=3.75)
    usage = RunUsage(
        input_tokens=1000, cache_read_tokens=600, cache_write_tokens=100, output_tokens=200
    )
    expected = (300 * 3 + 600 * 0.3 + 100 * 3.75 + 200 * 15) / 1_000_000
    assert price.cost(usage) == pytest.approx(expected)


async def test_usage_of_an_anthropic_run_counts_cached_tokens_and_prices_them(
    fake: ModelServer,
) -> None:
    model = model_for(fake, "anthropic")
    async with model:
        result = await Agent(model).run("hi")
    usage = usage_of(result.usage, SONNET, PriceTable())
    # The fake reports 30 uncached + 60 cache reads + 10 cache writes; pydantic-ai sums them.
    assert usage.input_tokens == USAGE.input + USAGE.cached + USAGE.cache_write == 100
    assert usage.cached_tokens == USAGE.cached == 60
    assert usage.output_tokens == 20
    assert usage.cost_usd == pytest.approx((30 * 3 + 60 * 0.3 + 10 * 3.75 + 20 * 15) / 1e6)


async def test_usage_of_an_openai_run_prices_cached_input(fake: ModelServer) -> None:
    model = model_for(fake, "openai")
    async with model:
        result = await Agent(model).run("hi")
    usage = usage_of(result.usage, parse_model("openai:gpt-5"), PriceTable())
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens) == (100, 60, 20)
    assert usage.cost_usd == pytest.approx((40 * 1.25 + 60 * 0.125 + 20 * 10) / 1e6)


async def test_a_local_model_is_free_and_known(fake: ModelServer) -> None:
    model = model_for(fake, "ollama")
    async with model:
        result = await Agent(model).run("hi")
    spec = parse_model("ollama:qwen2.5-coder:7b")
    assert PriceTable().price(spec).known
    assert usage_of(result.usage, spec, PriceTable()) == Usage(
        input_tokens=100, output_tokens=20, cached_tokens=60, cost_usd=0.0
    )


def test_an_unknown_model_costs_nothing_and_says_so() -> None:
    spec = parse_model("openai-compatible:mystery@http://127.0.0.1:1/v1")
    table = PriceTable()
    assert table.price(spec) is UNKNOWN and not UNKNOWN.known
    usage = usage_of(RunUsage(input_tokens=10, output_tokens=5), spec, table)
    assert usage == Usage(input_tokens=10, output_tokens=5, cost_usd=0.0)


def test_an_unknown_model_takes_pydantic_ais_estimate_when_there_is_one() -> None:
    spec = parse_model("anthropic:claude-future-9")
    run = RunUsage(input_tokens=10, output_tokens=5, cost=Decimal("0.25"))
    assert usage_of(run, spec, PriceTable()).cost_usd == 0.25
    # The table wins over the estimate for a model it knows.
    assert usage_of(
        RunUsage(input_tokens=0, output_tokens=0, cost=Decimal("9")), SONNET, PriceTable()
    ).cost_usd == pytest.approx(0.0)


def test_a_dated_snapshot_prices_like_its_alias() -> None:
    table = PriceTable()
    sonnet = DEFAULT_PRICES["anthropic:claude-sonnet-4-5"]
    assert table.price(parse_model("anthropic:claude-sonnet-4-5-20250929")) == sonnet
    assert table.price(parse_model("openai:gpt-5-2025-08-07")) == DEFAULT_PRICES["openai:gpt-5"]
    # A longer name is another model, not a snapshot.
    assert not table.price(parse_model("openai:gpt-5-nano")).known


def test_settings_override_and_add_prices() -> None:
    data = tomllib.loads(
        """
        ["anthropic:claude-sonnet-4-6"]
        input = 1.0
        output = 2.0
        cached_input = 0.1
        cache_write = 1.5

        ["openai-compatible:*"]
        input = 0.5
        output = 1.0
        """
    )
    table = PriceTable.from_settings(data)
    assert table.price(SONNET) == Price(input=1, output=2, cached_input=0.1, cache_write=1.5)
    # Missing cache prices default to the input price.
    local = table.price(parse_model("openai-compatible:any@http://127.0.0.1:1/v1"))
    assert local == Price(input=0.5, output=1, cached_input=0.5, cache_write=0.5)
    # Untouched defaults stay.
    assert table.price(parse_model("openai:gpt-5")) == DEFAULT_PRICES["openai:gpt-5"]


def test_bad_price_settings_list_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        PriceTable.from_settings(
            {
                "no-provider": {"input": 1, "output": 1},
                "openai:gpt-5": {"input": -1, "output": 1},
                "openai:gpt-5-mini": {"input": 1, "output": 1, "typo": 2},
                "anthropic:x": {"input": 1},
            }
        )
    message = str(info.value)
    for key in ("'no-provider'", "'openai:gpt-5'", "'openai:gpt-5-mini'", "'anthropic:x'"):
        assert key in message
    assert "typo" in message and "output" in message


def test_an_unlimited_budget_is_never_exceeded() -> None:
    budget = Budget(None)
    budget.charge(Usage(cost_usd=1e6))
    assert not budget.exceeded
    assert budget.remaining is None
    assert budget.spent == 1e6


def test_a_budget_is_exceeded_once_spending_reaches_the_limit() -> None:
    budget = Budget(1.0)
    budget.charge(Usage(cost_usd=0.4))
    assert not budget.exceeded
    assert budget.remaining == pytest.approx(0.6)
    budget.charge(Usage(cost_usd=0.6))
    assert budget.exceeded
    assert budget.remaining == 0.0
    budget.charge(Usage(cost_usd=0.5))
    assert budget.remaining == 0.0
    assert budget.spent == pytest.approx(1.5)


def test_a_zero_budget_allows_nothing_and_a_negative_one_is_refused() -> None:
    assert Budget(0).exceeded
    with pytest.raises(ConfigError):
        Budget(-1)
