"""Labels end to end on the suite's real cluster (tests/ray_cluster.py), through the engine's
own dispatch: a plan task's ``labels:`` and the project's ``[executor] labels`` decide which
worker may run it; with none fitting, the task waits, ``blitz status`` says why, and it runs on
the worker that joins with those labels."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz
from engine_helpers import goal_events, make_repo, task, write
from ray_cluster import RayCluster
from ray_helpers import placed_on, ray_engine

from blitz.domain import GoalState

pytestmark = pytest.mark.timeout(600)


async def test_plan_and_project_labels_route_a_task_and_its_wait_is_shown_until_a_worker_fits(
    ray_cluster: RayCluster, ray_executor: Any, apps: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, sections={"executor": {"labels": ["gpu"]}})
    scenario = {
        "summary": "labelled",
        "tasks": [task("big", labels=["big-repo"])],
        "agent": {"big": [[write("big.txt", "big\n")]]},
    }
    app = apps(scenario)
    executor = ray_executor()
    engine = ray_engine(app, executor)  # the app's services (its labels), this executor
    project = await app.register(repo)
    goal = await app.new_goal(project, "labelled")
    engine.start(project, goal)
    running = asyncio.ensure_future(engine.run())

    def waiting() -> list[Any]:
        return [e for e in goal_events(app, goal.id) if e.kind == "attempt.waiting"]

    while not waiting():
        assert not running.done(), running.result()
        await asyncio.sleep(0.1)
    reason = "no worker with the backend 'scripted' has the labels big-repo, gpu"
    assert waiting()[-1].data["reason"] == reason
    await app.store.flush()
    shown = await asyncio.to_thread(blitz, app.settings.home, "status", goal.id, "--json")
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)["tasks"]
    assert (row["labels"], row["waiting_for_worker"]) == (["big-repo"], reason)

    # On the loop's thread: Ray's node sets a SIGTERM handler (main thread only); the engine
    # just waits meanwhile.
    joined = ray_cluster.add_worker("gpu", slots=1, labels=("gpu", "big-repo"))
    finished = (await asyncio.wait_for(running, 300))[goal.id]
    assert finished.state is GoalState.SUCCEEDED, finished
    assert set(placed_on(goal_events(app, goal.id)).values()) == {joined.node_id}
