"""Spending: model usage counted against a goal's and a project's budgets, and the meters that
read what a running attempt has spent so far."""

from __future__ import annotations

from dataclasses import dataclass

from blitz.conductor.goal import GoalRun
from blitz.domain import Attempt, AttemptState, Usage
from blitz.events import EventKind
from blitz.executors.base import Meter

NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class Charged:
    """What a charge crossed: the goal's budget (no new work of the goal starts) and/or the
    project's (the project pauses, with this reason)."""

    goal_stopped: bool = False
    pause: str = ""


NOTHING = Charged()


class Spending:
    """What each project has spent: from the store when its first goal is taken on, then
    counted here as this process spends (other processes' live spending is not seen)."""

    __slots__ = ("_meters", "_projects")

    def __init__(self) -> None:
        self._projects: dict[str, float] = {}
        self._meters: dict[str, Meter] = {}  # by attempt id, while it runs

    def known(self, project_id: str) -> bool:
        return project_id in self._projects

    def start_project(self, project_id: str, spent: float) -> None:
        self._projects[project_id] = spent

    def meter(self, attempt_id: str) -> Meter:
        """The meter of a running attempt."""
        return self._meters.setdefault(attempt_id, Meter())

    def metered(self, attempt: Attempt) -> Usage:
        """What an attempt spent before it stopped; its meter is dropped."""
        meter = self._meters.pop(attempt.id, None)
        return meter.usage if meter is not None else Usage()

    def close(
        self, made: list[Attempt], *, state: AttemptState, error: str, at: float
    ) -> list[Attempt]:
        """Attempts that ended without a report (cancelled, or crashed in blitz), with what
        each had spent; their meters are dropped."""
        return [
            a.evolve(state=state, error=error, finished_at=at, usage=self.metered(a)) for a in made
        ]

    def forget(self, attempt_id: str) -> None:
        self._meters.pop(attempt_id, None)

    def charge(self, run: GoalRun, usage: Usage, *, planning: bool, paused: bool) -> Charged:
        """Count model usage against the goal and its budgets. Planning and recovery usage is
        kept on the goal record; attempts keep their own. ``paused``: the project already is."""
        if usage == NO_USAGE:
            return NOTHING
        run.usage += usage
        if planning:
            run.goal = run.goal.evolve(usage=run.goal.usage + usage)
            run.journal.write(run.goal)
        services = run.services
        goal_stopped = False
        goal_limit = services.goal_budget_usd
        if goal_limit is not None and run.usage.cost_usd >= goal_limit and not run.budget_stop:
            run.budget_stop = (
                f"the goal's budget of ${goal_limit:.2f} is spent (${run.usage.cost_usd:.2f})"
            )
            run.emit(
                EventKind.BUDGET_EXCEEDED,
                run.budget_stop + "; no new work starts, running attempts finish",
            )
            goal_stopped = True
        project_id = run.project.id
        spent = self._projects[project_id] = self._projects.get(project_id, 0.0) + usage.cost_usd
        project_limit = services.project_budget_usd
        pause = ""
        if project_limit is not None and not paused and spent >= project_limit:
            pause = (
                f"the project's budget of ${project_limit:.2f} is spent (${spent:.2f}); "
                "raise [budget] project_usd in blitz.toml to go on"
            )
            run.emit(EventKind.BUDGET_EXCEEDED, pause)
        if goal_stopped or pause:
            return Charged(goal_stopped, pause)
        return NOTHING
