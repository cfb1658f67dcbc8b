"""The jobs the engine's loop runs: each waits on the outside world and ends in a report that
the loop applies (see :meth:`blitz.conductor.engine.Engine`)."""

from __future__ import annotations

from dataclasses import dataclass

from blitz.conductor.goal import GoalRun
from blitz.domain import Attempt
from blitz.router import WorkItem


@dataclass(slots=True)
class PlanJob:
    """Goal branch, plan and baseline (reports a :class:`~.planning.Prepared`)."""

    run: GoalRun


@dataclass(slots=True)
class AttemptJob:
    """One attempt, or best-of-N candidates (an AttemptReport or an Exploration)."""

    run: GoalRun
    item: WorkItem
    made: list[Attempt]


@dataclass(slots=True)
class RecoveryJob:
    """The planner's recovery plan for a failed attempt (a ``Recovered``)."""

    run: GoalRun
    task_id: str
    attempt_id: str


@dataclass(slots=True)
class PublishJob:
    """The goal branch pushed and its pull request opened (a ``Published``)."""

    run: GoalRun


Job = PlanJob | AttemptJob | RecoveryJob | PublishJob
