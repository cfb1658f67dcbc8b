"""Faults under the Ray executor on a real local cluster: a worker node killed mid-attempt, a
cancelled remote attempt, a result for an attempt nobody waits for."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import branch_commits, goal_events, make_repo, task, write
from ray_cluster import RayCluster
from ray_helpers import placed_on, ray_engine

from blitz import proctree
from blitz.conductor.selection import Selection
from blitz.domain import Attempt, AttemptState, Goal, GoalState, Project, Task
from blitz.executors.base import AttemptReport, AttemptRequest, Outcome
from blitz.executors.ray import remote
from blitz.executors.ray.executor import RayExecutor, StaleResult
from blitz.testing.scripted import ScriptedBackend

pytestmark = pytest.mark.timeout(600)


async def _until(condition: Any, running: asyncio.Future[Any], timeout: float = 240) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            assert not running.done(), running.result()
            await asyncio.sleep(0.1)


async def test_a_worker_killed_mid_attempt_reruns_its_task_elsewhere_each_task_committed_once(
    ray_cluster: RayCluster, ray_executor: Any, apps: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, max_parallel=4)
    names = ["k1", "k2", "k3", "k4"]
    scenario = {
        "summary": "four slow files",
        "tasks": [task(t) for t in names],
        "agent": {t: [[{"sleep": 8}, write(f"{t}.txt", f"{t}\n")]] for t in names},
    }
    app = apps(scenario)
    executor = ray_executor()
    engine = ray_engine(app, executor)
    project = await app.register(repo)
    goal = await app.new_goal(project, "four slow files")
    engine.start(project, goal)
    running = asyncio.ensure_future(engine.run())
    by_node = {w.node_id: name for name, w in ray_cluster.workers.items()}

    def started() -> list[str]:
        """Nodes of attempts whose worker already reported (they run there)."""
        events = goal_events(app, goal.id)
        placed = placed_on(events)
        ready = [e.attempt_id for e in events if e.kind == "workspace.ready"]
        return [placed[a] for a in ready if a in placed]

    await _until(started, running)
    victim = started()[0]
    survivor = next(n for n in by_node if n != victim)
    ray_cluster.kill_raylet(by_node[victim])
    finished = (await asyncio.wait_for(running, 400))[goal.id]

    attempts = app.store.load_attempts(goal.id)
    tried = [(a.task_id, a.number, str(a.state), a.error[:300]) for a in attempts]
    assert finished.state is GoalState.SUCCEEDED, tried
    commits = branch_commits(repo, finished.branch)
    assert Counter(t for c in commits for t in c.tasks) == Counter(names)
    crashed = [a for a in attempts if a.state is AttemptState.CRASHED]
    assert crashed and all(victim[:12] in a.error for a in crashed), [a.error for a in crashed]
    placed = placed_on(goal_events(app, goal.id))
    for a in crashed:  # its task ran again, on the other worker, and succeeded there
        again = [b for b in attempts if b.task_id == a.task_id and b.number > a.number]
        assert again and again[-1].state is AttemptState.SUCCEEDED
        assert placed[again[-1].id] == survivor


async def test_cancelling_a_remote_attempt_kills_its_processes_on_the_worker(
    ray_cluster: RayCluster, ray_executor: Any, apps: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    marker = f"{3000 + os.getpid() % 1000}.5"  # a sleep no other process runs
    long_run = f"sh -c 'sleep {marker} & wait'"
    scenario = {
        "summary": "a long command",
        "tasks": [task("long")],
        "agent": {"long": [[{"run": long_run}, write("never.txt", "x\n")]]},
    }
    app = apps(scenario)
    executor = ray_executor()
    engine = ray_engine(app, executor)
    project = await app.register(repo)
    goal = await app.new_goal(project, "a long command")
    engine.start(project, goal)
    running = asyncio.ensure_future(engine.run())

    # The agent runs in the worker's jail (its own pid namespace): found by its command line.
    await _until(lambda: _sleeping(marker), running)
    pid = _sleeping(marker)[0]
    assert proctree.alive(pid)
    assert executor.placements()  # it runs remotely
    engine.cancel(goal.id)
    finished = (await asyncio.wait_for(running, 120))[goal.id]

    assert finished.state is GoalState.CANCELLED
    async with asyncio.timeout(60):
        while proctree.alive(pid):
            await asyncio.sleep(0.1)
    assert executor.placements() == {}
    assert branch_commits(repo, finished.branch) == []


def _sleeping(marker: str) -> list[int]:
    """The processes on this machine running ``sleep <marker>``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "cmdline").read_bytes().split(b"\0")[:2] == [
                    b"sleep",
                    marker.encode(),
                ]:
                    found.append(int(entry.name))
    return found


def _request(attempt_id: str) -> AttemptRequest:
    project = Project(id="p-1", name="p", path="/nonexistent")
    goal = Goal(id="g-1", project_id="p-1", title="g", branch="blitz/g-g-1")
    return AttemptRequest(
        project=project,
        goal=goal,
        task=Task(id="t", goal_id="g-1", title="t"),
        attempt=Attempt(id=attempt_id, goal_id="g-1", task_id="t", number=1),
        backend=ScriptedBackend(),
        workspace=None,
        validator=None,
        baseline=None,
        timeout=10,
        emit=lambda event: None,
    )


async def test_a_result_for_an_attempt_the_daemon_does_not_wait_for_is_refused() -> None:
    executor = RayExecutor("127.0.0.1:1")  # never connects: accepting needs no cluster
    made = Attempt(id="a-old", goal_id="g-1", task_id="t", number=1, state=AttemptState.SUCCEEDED)
    late = remote.Result(
        report=AttemptReport(outcome=Outcome.SUCCEEDED, attempt=made.evolve(commit="0" * 40))
    )
    # Another attempt of the same task is the one running now: the old one's result is stale.
    with pytest.raises(StaleResult, match="a-old"):
        await executor.accept(_request("a-new"), late)
    # Its own request, but no longer waited for (it ended, was cancelled, timed out).
    with pytest.raises(StaleResult, match="not an attempt this executor is waiting for"):
        await executor.accept(_request("a-old"), late)
    # A best-of-N candidate's commit comes back whatever its gates said: a stale one is refused
    # all the same, and its selection hears nothing of it.
    selection = Selection(2)
    lost = remote.Result(
        report=AttemptReport(
            outcome=Outcome.FAILED,
            attempt=dataclasses.replace(made, state=AttemptState.FAILED, commit="0" * 40),
            error="gate test failed",
        )
    )
    candidate = dataclasses.replace(_request("a-new"), selection=selection)
    with pytest.raises(StaleResult, match="a-old"):
        await executor.accept(candidate, lost)
    assert selection.verdicts == {} and not selection.done
