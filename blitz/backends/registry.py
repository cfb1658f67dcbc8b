"""Backends by name. Each factory imports its adapter only when that backend is chosen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from blitz.backends.base import AgentBackend
from blitz.clock import Clock, SystemClock
from blitz.errors import ConfigError

if TYPE_CHECKING:
    from blitz.breaker import BreakerBoard
    from blitz.llm.models import ProviderConfig
    from blitz.llm.usage import PriceTable
    from blitz.testing.scripted import Scenario


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendOptions:
    """What a backend may need; each factory takes what it uses."""

    scenario: Scenario | None = None  # scripted
    model: str = ""  # provider:model, for model-driven backends (embedded)
    providers: ProviderConfig | None = None
    prices: PriceTable | None = None
    clock: Clock = field(default_factory=SystemClock)
    breakers: BreakerBoard | None = None
    max_turns: int = 60
    max_tokens: int = 2_000_000
    max_cost_usd: float | None = None
    stuck_repeats: int = 3


def _scripted(options: BackendOptions) -> AgentBackend:
    from blitz.testing.scripted import ScriptedBackend

    return ScriptedBackend(options.scenario)


def _embedded(options: BackendOptions) -> AgentBackend:
    from blitz.backends.embedded import EmbeddedBackend, EmbeddedLimits
    from blitz.llm.models import ProviderConfig, build_model, parse_model
    from blitz.llm.usage import PriceTable

    if not options.model:
        raise ConfigError(NO_MODEL)
    spec = parse_model(options.model)
    return EmbeddedBackend(
        model=build_model(spec, options.providers or ProviderConfig()),
        spec=spec,
        prices=options.prices or PriceTable(),
        clock=options.clock,
        breakers=options.breakers,
        limits=EmbeddedLimits(
            max_turns=options.max_turns,
            max_tokens=options.max_tokens,
            max_cost_usd=options.max_cost_usd,
            stuck_repeats=options.stuck_repeats,
        ),
    )


NO_MODEL = (
    "no model is configured. Set one as provider:model, for example\n"
    "  export BLITZ_MODEL=anthropic:claude-sonnet-4-6 ANTHROPIC_API_KEY=...\n"
    "  export BLITZ_MODEL=openai:gpt-5 OPENAI_API_KEY=...\n"
    "  export BLITZ_MODEL=ollama:qwen2.5-coder:7b        (a local model, no key)\n"
    "or pass --model, or set [models] in blitz.toml. `blitz demo` needs no model."
)

FACTORIES: dict[str, Callable[[BackendOptions], AgentBackend]] = {
    "scripted": _scripted,
    "embedded": _embedded,
}


def names() -> list[str]:
    return sorted(FACTORIES)


def check_name(name: str) -> None:
    """Raise a ConfigError naming the known backends if ``name`` is not one of them."""
    if name not in FACTORIES:
        raise ConfigError(f"unknown backend {name!r}; available: {', '.join(names())}")


def create_backend(name: str, options: BackendOptions | None = None) -> AgentBackend:
    """The backend called ``name``; a ConfigError naming the known ones otherwise."""
    check_name(name)
    return FACTORIES[name](options or BackendOptions())
