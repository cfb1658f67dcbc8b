"""Where attempts run. The engine hands each attempt to an :class:`~blitz.executors.base.Executor`
as one :class:`~blitz.executors.base.AttemptRequest` and gets one
:class:`~blitz.executors.base.AttemptReport` back; it never runs attempt code itself.

Executors are chosen by name (:data:`EXECUTORS`, ``"module:factory"`` strings), imported only
when chosen: ``local`` runs the attempt in this process, ``ray`` on the nodes of a Ray cluster
(:mod:`blitz.executors.ray`). An executor never changes the engine's
state; the only way back is its report (and the informational events the attempt emits).
"""

from __future__ import annotations

import functools
import importlib

from blitz.errors import ConfigError
from blitz.executors.base import Executor

EXECUTORS = {
    "local": "blitz.executors.local:LocalExecutor",
    "ray": "blitz.executors.ray.executor:RayExecutor",
}
"""Executor name -> ``"module:factory"`` (the factory takes the executor's options)."""


def load(name: str = "local", **options: object) -> Executor:
    """A new executor of the given name, made with ``options`` (the ray executor's address...)."""
    target = EXECUTORS.get(name)
    if target is None:
        raise ConfigError(f"unknown executor {name!r}; known: {', '.join(sorted(EXECUTORS))}")
    module, _, factory = target.partition(":")
    executor: Executor = getattr(importlib.import_module(module), factory)(**options)
    return executor


def name_of(executor: Executor) -> str:
    """The name an executor is registered under (``local``, ``ray``; a subclass goes by its
    base's), else its class's name in lower case: what its breaker is keyed by."""
    return _name_of(type(executor))


def runs_here(executor: Executor) -> bool:
    """Whether ``executor`` runs attempts on this machine (the local executor does; the ray
    executor runs them on worker nodes, whose agent CLIs and keys are their own)."""
    return name_of(executor) == "local"


@functools.cache
def _name_of(kind: type) -> str:
    registered = {target: name for name, target in EXECUTORS.items()}
    for cls in kind.__mro__:
        name = registered.get(f"{cls.__module__}:{cls.__qualname__}")
        if name is not None:
            return name
    return kind.__name__.lower()


__all__ = ["EXECUTORS", "Executor", "load", "name_of", "runs_here"]
