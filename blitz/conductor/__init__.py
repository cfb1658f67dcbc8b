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

from blitz.breaker import GLOBAL, backend_key, project_key
from blitz.conductor.engine import Engine
from blitz.conductor.goal import BLOCKED, OVER_BUDGET, GoalRun
from blitz.conductor.services import GoalReport, Limits, Published, Services
from blitz.runner import runner_id

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
