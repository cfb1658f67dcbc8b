"""What a backend is built from: :class:`BackendOptions`, handed to every backend factory, and
the blitz.toml sections of the built-in backends (re-exported here so a backend needs nothing
from the settings tree but this module)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blitz.clock import Clock, SystemClock
from blitz.config import AgentConfig, ClaudeCodeConfig, CodexConfig, CommandBackendConfig
from blitz.sandbox import UNCONFINED, Policy

if TYPE_CHECKING:
    from blitz.breaker import BreakerBoard
    from blitz.llm.models import ProviderConfig
    from blitz.llm.usage import PriceTable
    from blitz.proxy import ModelProxy
    from blitz.testing.scripted import Scenario

__all__ = ["NO_MODEL", "BackendOptions", "ClaudeCodeConfig", "CodexConfig", "CommandBackendConfig"]

NO_MODEL = (
    "no model is configured. Set one as provider:model, for example\n"
    "  export BLITZ_MODEL=anthropic:claude-sonnet-4-6 ANTHROPIC_API_KEY=...\n"
    "  export BLITZ_MODEL=openai:gpt-5 OPENAI_API_KEY=...\n"
    "  export BLITZ_MODEL=ollama:qwen2.5-coder:7b        (a local model, no key)\n"
    "or pass --model, or set [models] in blitz.toml. `blitz demo` needs no model."
)


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
    max_output_tokens: int = 8192  # per model answer of the embedded agent
    gates_on_finish: bool = True  # the embedded agent runs the gates on its finish
    draft: bool = False  # the embedded agent starts with a draft (code asked with no tools)
    temperature: float | None = None  # the embedded agent's (None: the model's default)
    claude_code: ClaudeCodeConfig | None = None  # blitz.toml [claude_code]
    codex: CodexConfig | None = None  # blitz.toml [codex]
    commands: Mapping[str, CommandBackendConfig] = field(default_factory=dict)  # [backends.*]
    env: Mapping[str, str] = field(default_factory=dict)  # provider keys/URLs for CLI agents
    tools_dir: Path | None = None  # where blitz installs agent CLIs (npm packages)
    sandbox: Policy = UNCONFINED  # how agent processes are confined ([sandbox])
    proxy: ModelProxy | None = None  # blitz's model proxy, through which agent CLIs reach models


def agent_options(agent: AgentConfig | None) -> dict[str, Any]:
    """The :class:`BackendOptions` fields blitz.toml's ``[agent]`` sets (its defaults when
    there is none): one reading of it for the daemon and a worker node alike."""
    agent = agent or AgentConfig()
    return {
        "max_turns": agent.max_turns,
        "max_tokens": agent.max_tokens,
        "max_cost_usd": agent.max_cost_usd or None,
        "stuck_repeats": agent.stuck_repeats,
        "max_output_tokens": agent.max_output_tokens,
        "gates_on_finish": agent.gates_on_finish,
        "draft": agent.draft,
        "temperature": agent.temperature,
    }
