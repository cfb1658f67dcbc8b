"""Goals run through the Ray executor on a real local cluster (tests/ray_cluster.py): real Ray
nodes, real git on both sides, the scripted backend on the workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import branch_commits, goal_events, make_repo, task, write
from ray_cluster import RayCluster
from ray_helpers import Labelled, placed_on, ray_engine

from blitz.domain import GoalState

pytestmark = pytest.mark.timeout(600)

TASKS = [f"t{i}" for i in range(1, 7)]


def six_tasks(sleep: float = 0.0) -> dict[str, Any]:
    """Six independent tasks, each writing its own file (after ``sleep`` seconds)."""

    def steps(i: int) -> list[dict[str, Any]]:
        spend = {"spend": {"cost_usd": 0.01, "input": 100, "output": 10}}
        slept = [{"sleep": sleep}] if sleep else []
        return [{"say": f"working on f{i}"}, spend, *slept, write(f"f{i}.txt", f"{i}\n")]

    return {
        "summary": "six files",
        "tasks": [task(t) for t in TASKS],
        "agent": {t: [steps(i)] for i, t in enumerate(TASKS, 1)},
    }


async def test_a_goal_of_six_tasks_runs_across_both_workers_each_task_committed_once(
    ray_cluster: RayCluster, ray_executor: Any, apps: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, max_parallel=4)
    app = apps(six_tasks(sleep=1.0))
    executor = ray_executor()
    engine = ray_engine(app, executor)
    project = await app.register(repo)
    goal = await app.new_goal(project, "six files")
    engine.start(project, goal)
    finished = (await engine.run())[goal.id]

    attempts = app.store.load_attempts(goal.id)
    tried = [(a.task_id, a.number, str(a.state), a.error[:300]) for a in attempts]
    assert finished.state is GoalState.SUCCEEDED, tried
    assert len(attempts) == len(TASKS), tried  # none crashed
    commits = branch_commits(repo, finished.branch)
    assert Counter(t for c in commits for t in c.tasks) == Counter(TASKS)
    for i in range(1, 7):
        assert f"{i}\n" == _show(repo, finished.branch, f"f{i}.txt")
    nodes = set(placed_on(goal_events(app, goal.id)).values())
    workers = {w.node_id for w in ray_cluster.workers.values()}
    assert nodes == workers  # both workers ran attempts, and only workers (not the head)
    # The first four attempts, sent at once, filled both workers' two slots: none waited on a
    # full node while the other had a free slot.
    first = Counter(node for _, node in executor.placed[:4])
    assert sorted(first.values()) == [2, 2], executor.placed
    assert executor.placements() == {}
    # The agents' messages and spending came back from the workers as they happened.
    said = {e.message for e in goal_events(app, goal.id) if e.kind == "agent.message"}
    assert {f"working on f{i}" for i in range(1, 7)} <= said
    assert app.store.usage(goal.id).cost_usd == pytest.approx(0.06)


async def test_a_task_needing_a_label_only_one_worker_has_runs_only_there(
    ray_cluster: RayCluster, ray_executor: Any, apps: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    scenario = {
        "summary": "routed",
        "tasks": [task("b1"), task("b2"), task("b3")],
        "agent": {t: [[write(f"{t}.txt", f"{t}\n")]] for t in ("b1", "b2", "b3")},
    }
    app = apps(scenario)
    executor = ray_executor()
    big = ("big-repo",)
    engine = ray_engine(app, Labelled(executor, {"b1": big, "b2": big, "b3": big}))
    project = await app.register(repo)
    goal = await app.new_goal(project, "routed")
    engine.start(project, goal)
    finished = (await engine.run())[goal.id]

    assert finished.state is GoalState.SUCCEEDED, finished
    assert set(placed_on(goal_events(app, goal.id)).values()) == {
        ray_cluster.workers["one"].node_id
    }


async def test_a_task_no_worker_can_take_waits_with_its_reason_then_runs_when_one_joins(
    ray_cluster: RayCluster, ray_executor: Any, apps: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    scenario = {
        "summary": "waits",
        "tasks": [task("w")],
        "agent": {"w": [[write("w.txt", "w\n")]]},
    }
    app = apps(scenario)
    executor = ray_executor()
    engine = ray_engine(app, Labelled(executor, {"w": ("gpu",)}))
    project = await app.register(repo)
    goal = await app.new_goal(project, "waits")
    engine.start(project, goal)
    running = asyncio.ensure_future(engine.run())

    def waiting() -> list[Any]:
        return [e for e in goal_events(app, goal.id) if e.kind == "attempt.waiting"]

    while not waiting():
        assert not running.done(), running.result()
        await asyncio.sleep(0.1)
    assert waiting()[0].data["reason"] == (
        "no worker with the backend 'scripted' has the labels gpu"
    )
    assert not running.done()

    # On the main thread (Ray's node registers signal handlers); the loop waits meanwhile.
    joined = ray_cluster.add_worker("three", slots=1, labels=("gpu",))
    finished = (await asyncio.wait_for(running, 300))[goal.id]
    assert finished.state is GoalState.SUCCEEDED, finished
    assert set(placed_on(goal_events(app, goal.id)).values()) == {joined.node_id}
    assert len(waiting()) == 1  # one event per reason, not one per poll


async def test_a_remote_agent_is_confined_on_its_worker(
    ray_cluster: RayCluster, ray_executor: Any, apps: Any, tmp_path: Path
) -> None:
    """The worker jails its agent as the daemon would: the worktree is the only place it writes,
    and the worker's data directory (other projects' caches, other attempts) is hidden."""
    repo = make_repo(tmp_path)
    escape = tmp_path / "escaped.txt"
    secret = "kept-by-the-worker-only"
    for worker in ray_cluster.workers.values():
        (worker.home / "sentinel.txt").write_text(secret)
    homes = " ".join(str(w.home / "sentinel.txt") for w in ray_cluster.workers.values())
    probe = f"sh -c 'echo x > {escape}; cat {homes}; echo probed'"
    scenario = {
        "summary": "confined",
        "tasks": [task("c")],
        "agent": {"c": [[{"run": probe}, write("c.txt", "c\n")]]},
    }
    app = apps(scenario)
    engine = ray_engine(app, ray_executor())
    project = await app.register(repo)
    goal = await app.new_goal(project, "confined")
    engine.start(project, goal)
    finished = (await engine.run())[goal.id]

    assert finished.state is GoalState.SUCCEEDED, finished
    assert set(placed_on(goal_events(app, goal.id)).values()) <= {
        w.node_id for w in ray_cluster.workers.values()
    }
    said = "\n".join(e.message for e in goal_events(app, goal.id) if e.kind == "agent.message")
    assert "probed" in said  # the command ran, on the worker
    assert not escape.exists()  # outside the worktree: not writable
    assert secret not in said, said  # the worker's data directory: hidden


def _show(repo: Path, branch: str, path: str) -> str:
    from engine_helpers import git

    return git(repo, "show", f"refs/heads/{branch}:{path}") + "\n"
