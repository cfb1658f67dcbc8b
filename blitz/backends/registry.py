"""Backends by name. Each factory imports its adapter only when that backend is chosen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from blitz.backends.base import AgentBackend
from blitz.clock import Clock, SystemClock
from blitz.errors import ConfigError

if TYPE_CHECKING:
    from blitz.breaker import BreakerBoard
    from blitz.config import ClaudeCodeConfig, CodexConfig, CommandBackendConfig
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
    claude_code: ClaudeCodeConfig | None = None  # blitz.toml [claude_code]
    codex: CodexConfig | None = None  # blitz.toml [codex]
    commands: Mapping[str, CommandBackendConfig] = field(default_factory=dict)  # [backends.*]
    env: Mapping[str, str] = field(default_factory=dict)  # provider keys/URLs for CLI agents
    tools_dir: Path | None = None  # where blitz installs agent CLIs (npm packages)


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


def _claude_code(options: BackendOptions) -> AgentBackend:
    from blitz.backends.claude_code import create

    return create(options)


def _codex(options: BackendOptions) -> AgentBackend:
    from blitz.backends.codex import create

    return create(options)


FACTORIES: dict[str, Callable[[BackendOptions], AgentBackend]] = {
    "scripted": _scripted,
    "embedded": _embedded,
    "claude-code": _claude_code,
    "codex": _codex,
}


def names(commands: Mapping[str, object] | None = None) -> list[str]:
    """Every backend name: the built-in ones and the ``[backends.*]`` commands given."""
    return sorted({*FACTORIES, *(commands or {})})


def check_name(name: str, commands: Mapping[str, object] | None = None) -> None:
    """Raise a ConfigError naming the known backends if ``name`` is not one of them."""
    if name not in FACTORIES and name not in (commands or {}):
        raise ConfigError(f"unknown backend {name!r}; available: {', '.join(names(commands))}")


def create_backend(name: str, options: BackendOptions | None = None) -> AgentBackend:
    """The backend called ``name``: built in, or a ``[backends.NAME]`` command in blitz.toml;
    a ConfigError naming the known ones otherwise."""
    options = options or BackendOptions()
    check_name(name, options.commands)
    if name in options.commands and name not in FACTORIES:
        from blitz.backends.command import CommandBackend

        return CommandBackend(name, options.commands[name], env=options.env)
    return FACTORIES[name](options)
