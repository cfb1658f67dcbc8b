"""What the Codex backend's tests share: the key and model they give codex, the price they charge,
and the backend as the registry builds it, pointed at the scripted model server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blitz.backends.base import AgentBackend
from blitz.backends.registry import BackendOptions, create_backend
from blitz.breaker import BreakerBoard
from blitz.config import CodexConfig
from blitz.llm.usage import Price, PriceTable
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

KEY = "sk-codex-test-key-0123456789abcdef"
MODEL = "gpt-5.5"  # a model codex 0.169 has metadata for (others get a warning item)
PRICE = Price(input=2.0, output=10.0, cached_input=0.2, cache_write=2.0)


def backend(
    server: ModelServer | None = None,
    *,
    tools: Path | None = None,
    key: str = KEY,
    breakers: BreakerBoard | None = None,
    prices: PriceTable | None = None,
    **config: Any,
) -> AgentBackend:
    """The backend as the registry builds it, pointed at ``server``."""
    env = {"OPENAI_API_KEY": key} if key else {}
    if server is not None:
        env["OPENAI_BASE_URL"] = server.openai_base_url
    config.setdefault("model", MODEL)
    options = BackendOptions(
        codex=CodexConfig(**config),
        env=env,
        tools_dir=tools,
        breakers=breakers,
        prices=prices,
        clock=ManualClock(),
    )
    return create_backend("codex", options)
