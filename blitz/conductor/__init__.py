"""The conductor: drives goals from plan to pull request.

- :mod:`.engine`: the loop, its jobs and their reports, the public API (start, cancel, approve,
  retry, skip, pause, drain).
- :mod:`.goal`: one goal's records and state machine; it returns what the engine does next.
- :mod:`.journal`: the one way to write: a record and its event together.
- :mod:`.planning`, :mod:`.resume`, :mod:`.spending`: before the first task; after a restart;
  budgets and meters.
- :mod:`.steering`, :mod:`.best_of_n`: what a person may ask, and N candidates of one task;
  neither knows the engine.
- :mod:`.attempt`: what an executor runs (:mod:`blitz.executors`); :mod:`.selection`: pure
  ranking of best-of-N candidates.

Nothing here imports an SDK, SQL or ``subprocess``; only this file imports the engine.
"""

from blitz.breaker import GLOBAL, backend_key, project_key
from blitz.conductor.engine import Engine
from blitz.conductor.goal import BLOCKED, OVER_BUDGET, GoalRun
from blitz.conductor.services import GoalReport, Limits, Published, Services
from blitz.runner import runner_alive, runner_id

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
    "runner_alive",
    "runner_id",
]
