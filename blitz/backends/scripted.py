"""The ``scripted`` backend: the fake from :mod:`blitz.testing.scripted`, which plays a
scenario (for ``blitz demo`` and tests). The registry imports this module only when the name
``scripted`` is chosen, so production code never loads the fakes otherwise."""

from __future__ import annotations

from blitz.backends.base import AgentBackend
from blitz.backends.options import BackendOptions
from blitz.testing.scripted import ScriptedBackend


def create(options: BackendOptions) -> AgentBackend:
    return ScriptedBackend(options.scenario)
