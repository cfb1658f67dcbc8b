"""Worker nodes warmed before their first attempt (blitz.executors.ray.warming), on the real local
cluster (tests/ray_cluster.py): each node starts one Ray worker process per slot as soon as the
executor's driver sees it, a node that joins later included, and the attempts then run in those
processes (Ray's own state API says which process ran each task)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import make_repo, task, write
from ray_cluster import RayCluster
from ray_helpers import ray_engine

from blitz.domain import GoalState

pytestmark = pytest.mark.timeout(600)


async def warmed_nodes(executor: Any, nodes: set[str], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        warmed = await executor.warmed()
        if nodes <= set(warmed):
            return warmed
        assert time.monotonic() < deadline, f"not warmed within {timeout}s: {warmed}"
        await asyncio.sleep(0.5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def listed_tasks(cluster: RayCluster) -> list[dict[str, Any]]:
    from ray.util.state import list_tasks

    found = list_tasks(address=cluster.address, detail=True, limit=10_000, timeout=60)
    return [t.asdict() for t in found]


async def test_each_node_is_warmed_one_process_per_slot_and_attempts_run_in_them(
    ray_cluster: RayCluster, ray_executor: Any, apps: Any, tmp_path: Path
) -> None:
    executor = ray_executor(warm=True)
    workers = {w.node_id: w for w in ray_cluster.workers.values()}
    warmed = await warmed_nodes(executor, set(workers))
    for node_id, pids in warmed.items():
        assert len(pids) == workers[node_id].slots, warmed  # a process of its own per slot
        assert all(alive(pid) for pid in pids)
    mine = {pid for pids in warmed.values() for pid in pids}

    # A node that joins later is warmed too, without a goal asking for it.
    late = ray_cluster.add_worker("late", slots=3)
    warmed = await warmed_nodes(executor, {late.node_id})
    assert len(warmed[late.node_id]) == 3
    ray_cluster.remove("late")

    ids = [f"w{i}" for i in range(1, 5)]
    app = apps({
        "summary": "four files",
        "tasks": [task(t) for t in ids],
        "agent": {t: [[{"sleep": 0.5}, write(f"{t}.txt", f"{t}\n")]] for t in ids},
    })  # fmt: skip
    engine = ray_engine(app, executor)
    project = await app.register(make_repo(tmp_path, max_parallel=4))
    goal = await app.new_goal(project, "four files")
    engine.start(project, goal)
    finished = (await engine.run())[goal.id]
    assert finished.state is GoalState.SUCCEEDED

    # Ray's listing: this executor's job is the one whose warm-up ran in the warmed processes;
    # each of its attempts ran in one of them, not in a process started for it.
    listed = listed_tasks(ray_cluster)
    jobs = {
        t["job_id"] for t in listed if t["func_or_class_name"] == "warm" and t["worker_pid"] in mine
    }
    assert len(jobs) == 1, jobs
    ran_in = [
        t["worker_pid"]
        for t in listed
        if t["job_id"] in jobs and "attempt_stream" in t["func_or_class_name"]
    ]
    assert len(ran_in) == len(ids)
    assert set(ran_in) <= mine, (ran_in, warmed)


async def test_without_warming_no_process_is_started_before_an_attempt(
    ray_cluster: RayCluster, ray_executor: Any
) -> None:
    executor = ray_executor(warm=False)
    assert len(await executor.nodes()) == len(ray_cluster.workers)
    await asyncio.sleep(1.0)
    assert await executor.warmed() == {}
