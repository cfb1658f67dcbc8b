"""The conductor: drives goals from plan to pull request.

- :mod:`.engine`: the loop, the jobs' reports, the public API (start, cancel, approve, reject,
  retry, skip, pause, resume, drain, stop). Only this file imports it.
- :mod:`.jobs`: what the loop runs (planning, an attempt, a recovery plan, publishing).
- :mod:`.goal`: one goal's records and state machine; it returns what the engine does next.
- :mod:`.journal`: the one way to write: a record and its event together.
- :mod:`.dispatch`: ready tasks to the router; what the router lets start to the executor.
- :mod:`.planning`, :mod:`.resume`, :mod:`.publishing`, :mod:`.spending`: before the first
  task; after a restart; after the last; budgets and meters.
- :mod:`.steering`, :mod:`.best_of_n`: the rules of what a person may ask, and N candidates of
  one task; neither knows the engine.
- :mod:`.services`: what the engine is given per goal (planner, backend, executor...).
- :mod:`.attempt`: what an executor (:mod:`blitz.executors`) runs; :mod:`.selection`: pure
  ranking of best-of-N candidates.

Nothing here imports an SDK, SQL or ``subprocess``, or reads the process table.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blitz.breaker import GLOBAL, backend_key, project_key
    from blitz.conductor.engine import Engine
    from blitz.conductor.goal import GoalRun
    from blitz.conductor.outcomes import BLOCKED, OVER_BUDGET
    from blitz.conductor.services import GoalReport, Limits, Published, Services
    from blitz.runner import runner_id

# Loaded when first asked for, not with the package: a process that needs one module of it (a
# Ray worker runs :mod:`.attempt` only) does not load the engine and everything it imports.
_WHERE = {
    "GLOBAL": "blitz.breaker",
    "backend_key": "blitz.breaker",
    "project_key": "blitz.breaker",
    "Engine": "blitz.conductor.engine",
    "BLOCKED": "blitz.conductor.outcomes",
    "OVER_BUDGET": "blitz.conductor.outcomes",
    "GoalRun": "blitz.conductor.goal",
    "GoalReport": "blitz.conductor.services",
    "Limits": "blitz.conductor.services",
    "Published": "blitz.conductor.services",
    "Services": "blitz.conductor.services",
    "runner_id": "blitz.runner",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


__all__ = [
    "BLOCKED",
    "GLOBAL",
    "OVER_BUDGET",
    "Engine",
    "GoalReport",
    "GoalRun",
    "Limits",
    "Published",
    "Services",
    "backend_key",
    "project_key",
    "runner_id",
]
