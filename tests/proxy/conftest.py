"""Fixtures of the model proxy tests: the scripted model server as the real upstream (it demands
the real key), and a running proxy in front of it that records the breaker outcomes it reports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from blitz.domain import Usage
from blitz.llm.usage import PriceTable
from blitz.proxy import ModelProxy, Upstream
from blitz.testing.model_server import ModelServer

REAL_KEY = "sk-ant-api03-REAL-upstream-key-0123456789abcdef"
"""The key only the proxy and the upstream know."""


class Recorded:
    """What the proxy reported: breaker outcomes, and usage per session label."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, bool]] = []
        self.usage: list[Usage] = []

    def outcome(self, provider: str, ok: bool) -> None:
        self.outcomes.append((provider, ok))


@pytest.fixture
def upstream() -> Iterator[ModelServer]:
    with ModelServer(api_key=REAL_KEY) as server:
        yield server


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
async def proxy(upstream: ModelServer, recorded: Recorded) -> AsyncIterator[ModelProxy]:
    upstreams = {
        "anthropic": Upstream("anthropic", upstream.anthropic_base_url, REAL_KEY),
        "openai": Upstream("openai", upstream.openai_base_url, REAL_KEY),
    }
    running = ModelProxy(upstreams, prices=PriceTable(), on_outcome=recorded.outcome)
    await running.start()
    yield running
    await running.stop()
