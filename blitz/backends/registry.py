"""Backends by name. Optional SDKs are imported only when their backend is chosen."""

from __future__ import annotations

from collections.abc import Callable

from blitz.backends.base import AgentBackend
from blitz.errors import ConfigError


def _scripted(options: dict[str, object]) -> AgentBackend:
    from blitz.testing.scripted import Scenario, ScriptedBackend

    scenario = options.get("scenario")
    return ScriptedBackend(scenario if isinstance(scenario, Scenario) else None)


FACTORIES: dict[str, Callable[[dict[str, object]], AgentBackend]] = {
    "scripted": _scripted,
}


def names() -> list[str]:
    return sorted(FACTORIES)


def create_backend(name: str, **options: object) -> AgentBackend:
    """The backend called ``name``; a ConfigError naming the known ones otherwise."""
    try:
        factory = FACTORIES[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; available: {', '.join(names())}") from None
    return factory(options)
