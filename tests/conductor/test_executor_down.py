"""An executor that cannot reach its cluster: the engine makes the task wait (no crash is counted
against it), the executor's breaker opens and holds every task back, and a half-open probe that
reaches the cluster again closes it, after which the goal finishes.

The executor is the local one behind a connection the test cuts and restores: while cut, it
reports an attempt exactly as a remote executor reports one it cannot place
(``Outcome.UNAVAILABLE`` with ``executor_down``). The engine, router, breakers, store, git and
gates are the real ones. (tests/executors/ray/test_executor_down_ray.py cuts a real cluster.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from engine_helpers import (
    MakeApp,
    assert_engine_invariants,
    branch_commits,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    kinds,
    make_repo,
    start_goal,
    task,
    write,
)

from blitz import executors
from blitz.breaker import BreakerBoard, BreakerPolicy, executor_key
from blitz.conductor import Engine
from blitz.domain import AttemptState, BreakerState, GoalState, TaskState
from blitz.executors.base import AttemptReport, AttemptRequest, Outcome
from blitz.executors.local import LocalExecutor
from blitz.router import Router

pytestmark = pytest.mark.usefixtures("isolated_git")

GATE = {"test": "test -f README.md", "timeout": 60}
KEY = executor_key("local")


class CutOff(LocalExecutor):
    """The local executor, unreachable for its first ``down_for`` attempts. It notes the state of
    its own breaker as each attempt reaches it."""

    def __init__(self, board: BreakerBoard, down_for: int) -> None:
        self.board = board
        self.left = down_for
        self.seen: list[BreakerState] = []

    async def run(self, request: AttemptRequest) -> AttemptReport:
        self.seen.append(self.board.get(KEY).state)
        if self.left <= 0:
            return await super().run(request)
        self.left -= 1
        error = "cannot reach the Ray cluster at 127.0.0.1:1: connection refused"
        final = request.attempt.evolve(
            state=AttemptState.CRASHED, error=error, finished_at=request.now()
        )
        return AttemptReport(
            outcome=Outcome.UNAVAILABLE, attempt=final, error=error, executor_down=True
        )


async def test_a_cluster_gone_makes_tasks_wait_behind_the_executors_breaker(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=GATE)
    names = ("a", "b", "c")
    app = apps({
        "tasks": [task(n) for n in names],
        "agent": {n: [[write(f"{n}.txt", f"{n}\n")]] for n in names},
    })  # fmt: skip
    board = app.breakers
    board.configure("executor", BreakerPolicy(threshold=2, cooldown=0.2))
    # Down for the three first attempts and the first probe: opened, a failed probe, reopened.
    executor = CutOff(board, down_for=4)
    assert executors.name_of(executor) == "local"
    engine = Engine(
        store=app.store,
        clock=app.clock,
        router=Router(board, global_limit=8),
        breakers=board,
        services=lambda p, g: dataclasses.replace(app.services(p, g), executor=executor),
    )
    started = await start_goal(app, engine, repo)

    goal = (await engine.run())[started.goal.id]

    assert goal.state is GoalState.SUCCEEDED, goal.error
    every = goal_events(app, goal.id)
    changes = [e for e in app.store.events(limit=100_000) if e.kind.startswith("breaker.")]
    # Only the executor's breaker moved: the work and the rest of the machinery were not at fault.
    assert {e.data["key"] for e in changes} == {KEY}
    assert kinds(changes) == [
        "breaker.opened",
        "breaker.half_open",
        "breaker.opened",
        "breaker.half_open",
        "breaker.closed",
    ]
    # No attempt reached the executor while its breaker was open; each half-open let one probe.
    assert BreakerState.OPEN not in executor.seen
    assert executor.seen.count(BreakerState.HALF_OPEN) == 2
    assert len(executor.seen) == 3 + 2 + 2  # three cut off, two probes, the two held back
    # The tasks waited, none crashed or failed, and each was committed once.
    waiting = [e for e in every if e.kind == "task.waiting"]
    assert {e.task_id for e in waiting} == set(names)
    assert all(e.message.startswith("waiting for the executor: cannot reach") for e in waiting)
    assert not [e for e in every if e.kind in ("task.crashed", "task.failed")]
    tasks = app.store.load_tasks(goal.id)
    assert {t.id: (t.state, t.crashes) for t in tasks} == {
        n: (TaskState.SUCCEEDED, 0) for n in names
    }
    assert sorted(t for c in branch_commits(repo, goal.branch) for t in c.tasks) == list(names)
    for key in ("global", f"project:{started.project.id}", "backend:scripted"):
        assert board.get(key).failures == 0 and board.get(key).state is BreakerState.CLOSED
    # The breaker's record is in the store, closed.
    (record,) = [r for r in app.store.load_breakers() if r.key == KEY]
    assert record.state is BreakerState.CLOSED
    assert_engine_invariants(app, repo, goal)
