"""The executor seam: the engine runs every attempt (plain and best-of-N) through the executor
its services name, and the local executor runs them in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from blitz import executors
from blitz.breaker import BreakerBoard
from blitz.clock import SystemClock
from blitz.conductor import Engine, Services
from blitz.domain import Goal, GoalState, Plan, Project, TaskSpec
from blitz.errors import ConfigError
from blitz.executors.base import AttemptReport, AttemptRequest
from blitz.executors.local import LocalExecutor
from blitz.planner import FilePlanner
from blitz.router import Router
from blitz.store.sql import SqlStore
from blitz.testing.flaky import FlakyBackend
from blitz.testing.scripted import ScriptedPlanner


class CountingExecutor(LocalExecutor):
    """The local executor, keeping every request it was given."""

    def __init__(self) -> None:
        self.requests: list[AttemptRequest] = []

    async def run(self, request: AttemptRequest) -> AttemptReport:
        self.requests.append(request)
        return await super().run(request)


async def test_the_engine_runs_every_attempt_through_the_executor_of_its_services(
    tmp_path: Path,
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'blitz.db'}")
    plan = Plan(
        summary="two tasks",
        tasks=(
            TaskSpec(id="a", title="a", allow_empty=True),
            TaskSpec(id="b", title="b", depends_on=("a",), allow_empty=True, attempts=3),
        ),
    )
    project = Project(id="p-1", name="seam", path=str(tmp_path))
    goal = Goal(id="g-1", project_id=project.id, title="seam")
    store.write(project, goal)
    executor = CountingExecutor()
    clock = SystemClock()
    board = BreakerBoard(clock)
    engine = Engine(
        store=store,
        clock=clock,
        router=Router(board),
        breakers=board,
        services=lambda _p, _g: Services(
            planner=FilePlanner(plan, ScriptedPlanner()),
            backend=FlakyBackend(p=1.0, duration=(0.0, 0.0)),
            workspace=None,
            validator=None,
            executor=executor,
        ),
    )
    engine.start(project, goal, plan=plan)
    try:
        finished = await asyncio.wait_for(engine.run(), 30)
        assert finished[goal.id].state is GoalState.SUCCEEDED
        tried = store.load_attempts(goal.id)
        assert sorted(r.attempt.id for r in executor.requests) == sorted(a.id for a in tried)
        by_task = [(r.task.id, r.selection is not None) for r in executor.requests]
        assert sorted(by_task) == [("a", False), ("b", True), ("b", True), ("b", True)]
    finally:
        await store.aclose()


def test_executors_are_chosen_by_name() -> None:
    assert isinstance(executors.load("local"), LocalExecutor)
    with pytest.raises(ConfigError, match="unknown executor"):
        executors.load("carrier-pigeon")
