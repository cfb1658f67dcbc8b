"""A whole Ray cluster that goes away under a running goal, and comes back: the daemon's process
lives on (Ray's driver is a child of its own, which Ray may end), the attempt that ran there is
``unavailable`` (not a crash charged to the task), the ``executor`` breaker opens and the task
waits; once the cluster is back at its address the breaker closes and the goal finishes, its task
committed once. A real cluster of ``ray start`` processes (blitz/testing/ray_nodes.py),
killed outright, and started again on the same port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import branch_commits, goal_events, make_repo, task, write
from ray_cluster import node_env
from ray_helpers import ray_engine

from blitz.breaker import BreakerPolicy, executor_key
from blitz.domain import BreakerState, GoalState, TaskState
from blitz.executors.ray.executor import RayExecutor
from blitz.testing.ray_nodes import RayNodes

pytestmark = pytest.mark.timeout(900)

KEY = executor_key("ray")


@pytest.fixture
async def own_cluster(tmp_path: Path) -> AsyncIterator[RayNodes]:
    cluster = RayNodes(tmp_path / "cluster", tag="rdown")
    try:
        yield cluster
    finally:
        await cluster.stop()


async def until(condition: Any, what: str, timeout: float = 240.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := condition()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return found


async def test_a_cluster_gone_under_a_goal_opens_the_breaker_and_the_goal_ends_when_it_is_back(
    own_cluster: RayNodes, apps: Any, tmp_path: Path
) -> None:
    await asyncio.to_thread(own_cluster.start_head)
    await asyncio.to_thread(own_cluster.add_worker, tmp_path / "w1", env=node_env(tmp_path / "w1"))
    repo = make_repo(tmp_path)
    app = apps({
        "summary": "one slow task",
        "tasks": [task("slow")],
        "agent": {"slow": [[{"say": "started"}, {"sleep": 6}, write("slow.txt", "done\n")]]},
    })  # fmt: skip
    app.breakers.configure("executor", BreakerPolicy(threshold=1, cooldown=1.0))
    # Ray's driver gives up on a lost head after 5 s (Ray's default is 60 s).
    executor = RayExecutor(own_cluster.address, poll=0.2, gcs_timeout=5, warm=False)
    engine = ray_engine(app, executor)
    project = await app.register(repo)
    goal = await app.new_goal(project, "one slow task")
    engine.start(project, goal)
    running = asyncio.ensure_future(engine.run())
    try:

        def said(word: str) -> list[Any]:
            return [e for e in goal_events(app, goal.id) if e.message == word]

        await until(lambda: said("started") or running.done(), "the attempt to start")
        assert not running.done(), running.result()
        first_driver = executor._driver
        assert first_driver is not None

        await own_cluster.kill()  # the head and the worker, at once
        await until(lambda: app.breakers.get(KEY).state is not BreakerState.CLOSED, "the breaker")
        assert not running.done()
        # The attempt under way is written when it ends, which on a loaded machine may come
        # after the breaker opens.
        await until(lambda: app.store.load_attempts(goal.id)[0].error, "the first attempt's end")
        first, *probes = app.store.load_attempts(goal.id)
        assert "went away" in first.error, first.error  # the attempt under way when it went
        for probe in probes:  # half-open probes since: nothing answers at the address
            assert "cannot reach" in probe.error or "went away" in probe.error, probe.error
        # Ray ends its driver process once the head is lost for its reconnect timeout; the
        # process running the engine (this one: the daemon's) lives on.
        await until(lambda: first_driver.lost and first_driver.exited, "the driver's end", 180)

        await asyncio.sleep(3)  # half-open probes meanwhile find nothing at the address
        assert not running.done()
        assert app.breakers.get(KEY).state is not BreakerState.CLOSED

        await asyncio.to_thread(own_cluster.start_head)
        w2 = tmp_path / "w2"
        await asyncio.to_thread(own_cluster.add_worker, w2, env=node_env(w2))
        finished = (await asyncio.wait_for(running, 400))[goal.id]
    finally:
        if not running.done():
            running.cancel()
        await executor.close()

    attempts = app.store.load_attempts(goal.id)
    tried = [(a.number, str(a.state), a.error[:200]) for a in attempts]
    assert finished.state is GoalState.SUCCEEDED, tried
    assert app.breakers.get(KEY).state is BreakerState.CLOSED
    (slow,) = app.store.load_tasks(goal.id)
    assert slow.state is TaskState.SUCCEEDED and slow.crashes == 0, slow
    assert [t for c in branch_commits(repo, finished.branch) for t in c.tasks] == ["slow"]
    events = goal_events(app, goal.id)
    assert [e for e in events if e.kind == "task.waiting"], [e.kind for e in events]
    assert executor._driver is not first_driver  # a new driver for the cluster that came back
