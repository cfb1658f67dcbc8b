"""Running a goal again: a new goal with an ended goal's project, title and settings, started
from its base branch as it is now, with the plan the ended goal ran (what recovery added left
out) or planned afresh. It goes through the one door for new goals (:func:`blitz.actions.new_goal`),
so every check of a new goal applies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import actions
from blitz.domain import GOAL_DONE, Goal, Plan, Task, TaskSpec
from blitz.errors import PlanError
from blitz.planner import check_plan

if TYPE_CHECKING:
    from blitz.app import App
    from blitz.conductor import Engine
    from blitz.store.base import Store

PLANNED = "plan"
"""The origin of a task of the plan (recovery's are ``recovery:<task id>``)."""


async def rerun(
    app: App,
    engine: Engine,
    key: str,
    *,
    replan: bool = False,
    allow_dirty: bool = False,
    no_planner_hint: str = "",
) -> actions.Submitted:
    """Submit goal ``key`` again as a new goal: with the plan it ran, or planned by the project's
    planner when ``replan`` (or when it ended before it had a plan). A Conflict unless it ended."""
    store = app.store
    goal = ended_goal(store, key)
    project = store.get_project(goal.project_id)
    if project is None:
        raise actions.NotFound(f"the project of goal {goal.id} was removed")
    plan = None if replan else plan_of(goal, store.load_tasks(goal.id))
    request = actions.GoalRequest(
        title=goal.title,
        backend=goal.backend,
        max_parallel=goal.max_parallel,
        allow_dirty=allow_dirty,
        explore=goal.explore,
        explore_mode=goal.explore_mode if goal.explore else "",
        portfolio=goal.portfolio,
        plan=None if plan is None else _Checked(plan),
    )
    return await actions.new_goal(
        app, engine, Path(project.path), request, no_planner_hint=no_planner_hint
    )


def ended_goal(store: Store, key: str) -> Goal:
    """Goal ``key``, which must have ended to run again (a Conflict otherwise)."""
    goal = actions.goal_of(store, key)
    if goal.state not in GOAL_DONE:
        raise actions.Conflict(
            f"goal {goal.id} is {goal.state.value.replace('_', ' ')}: only an ended goal runs "
            "again (cancel it first)"
        )
    return goal


class _Checked:
    """A plan already made, checked again against the project's cap on tasks."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __call__(self, *, max_tasks: int) -> Plan:
        try:
            check_plan(self.plan.tasks, max_tasks=max_tasks)
        except PlanError as exc:
            raise PlanError([*exc.problems, "plan the goal again instead"]) from exc
        return self.plan


def plan_of(goal: Goal, tasks: Sequence[Task]) -> Plan | None:
    """The plan ``goal`` ran: its planned tasks in plan order, each depending on the planned
    tasks it depended on. A dependency on a task recovery added stands for what that task
    recovered (when another planned task) and what it depended on in turn. None when the goal
    has no planned task (it ended before its plan)."""
    planned = [t for t in tasks if t.origin == PLANNED]
    if not planned:
        return None
    planned.sort(key=lambda t: t.position)
    by_id = {t.id: t for t in tasks}
    ids = {t.id for t in planned}
    specs = tuple(
        TaskSpec(
            id=t.id,
            title=t.title,
            instructions=t.instructions,
            depends_on=_planned_dependencies(t, by_id, ids),
            priority=t.priority,
            checks=t.checks,
            files=t.files,
            allow_empty=t.allow_empty,
            backend=t.backend,
            model=t.model,
            attempts=t.explore,
            labels=t.labels,
        )
        for t in planned
    )
    return Plan(summary=goal.summary, tasks=specs)


def _planned_dependencies(
    task: Task, by_id: Mapping[str, Task], planned: set[str]
) -> tuple[str, ...]:
    found: dict[str, None] = {}  # ordered, without repeats
    seen: set[str] = set()
    waiting = list(task.depends_on)
    while waiting:
        dep = waiting.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        if dep in planned:
            found[dep] = None
            continue
        added = by_id.get(dep)
        if added is None:
            continue
        recovered = added.origin.removeprefix("recovery:")
        if recovered != added.origin and recovered in planned:
            found[recovered] = None
        waiting.extend(added.depends_on)
    found.pop(task.id, None)
    return tuple(found)
