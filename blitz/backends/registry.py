"""Backends by name: each name maps to a ``"module:factory"`` string, imported only when that
backend is chosen, so no adapter (and no optional SDK, and no fake) loads until it is used, and
no adapter imports the registry back. A ``[backends.NAME]`` command in blitz.toml is a backend
too (:class:`~blitz.backends.command.CommandBackend`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import cast

from blitz.backends.base import AgentBackend
from blitz.backends.options import NO_MODEL, BackendOptions
from blitz.errors import ConfigError

__all__ = ["FACTORIES", "NO_MODEL", "BackendOptions", "check_name", "create_backend", "names"]

FACTORIES: dict[str, str] = {
    "scripted": "blitz.testing.scripted:create_backend",
    "embedded": "blitz.backends.embedded:create",
    "claude-code": "blitz.backends.claude_code:create",
    "codex": "blitz.backends.codex:create",
}
"""Built-in backends: name -> ``"module:factory"``, the factory taking :class:`BackendOptions`."""

SDKS = {"claude_agent_sdk": "claude-agent-sdk", "pydantic_ai": "pydantic-ai-slim[anthropic,openai]"}
"""The SDKs a backend may need -> the package that installs them."""


def names(commands: Mapping[str, object] | None = None) -> list[str]:
    """Every backend name: the built-in ones and the ``[backends.*]`` commands given."""
    return sorted({*FACTORIES, *(commands or {})})


def check_name(name: str, commands: Mapping[str, object] | None = None) -> None:
    """Raise a ConfigError naming the known backends if ``name`` is not one of them."""
    if name not in FACTORIES and name not in (commands or {}):
        raise ConfigError(f"unknown backend {name!r}; available: {', '.join(names(commands))}")


def load(name: str) -> Callable[[BackendOptions], AgentBackend]:
    """The factory of the built-in backend ``name``, its module imported now; a ConfigError
    saying what to install when an SDK it needs is missing."""
    module, _, attribute = FACTORIES[name].partition(":")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in SDKS:
            raise
        raise ConfigError(
            f"the {name} backend needs {missing}, which is not installed: "
            f"pip install '{SDKS[missing]}'"
        ) from exc
    return cast("Callable[[BackendOptions], AgentBackend]", getattr(loaded, attribute))


def create_backend(name: str, options: BackendOptions | None = None) -> AgentBackend:
    """The backend called ``name``: built in, or a ``[backends.NAME]`` command in blitz.toml;
    a ConfigError naming the known ones otherwise."""
    options = options or BackendOptions()
    check_name(name, options.commands)
    if name in options.commands and name not in FACTORIES:
        from blitz.backends.command import CommandBackend

        return CommandBackend(
            name,
            options.commands[name],
            env=options.env,
            sandbox=options.sandbox,
            proxy=options.proxy,
        )
    return load(name)(options)
