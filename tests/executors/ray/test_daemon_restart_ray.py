"""A daemon (`blitz serve --executor ray`, a real process) killed with SIGKILL while a remote
attempt runs on the test cluster (tests/ray_cluster.py), the cluster still up, then started
again: the attempt's Ray task and its processes on the worker die with the old daemon, the
restarted daemon re-queues the task (as resume does), the goal finishes with each task committed
exactly once, and nothing of the old daemon is left on the cluster.

Run on SQLite and on PostgreSQL (``BLITZ_TEST_POSTGRES_URL``), the store recommended for a
cluster's long-lived daemon (docs/postgres-daemon.md).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from blitz_process import write_yaml
from daemon_helpers import (
    AGENT,
    PLAN,
    committed_tasks,
    hold_first,
    holding,
    make_repo,
    remote_attempts,
    serve,
    until,
)
from databases import empty_database
from ray_cluster import RayCluster

from blitz.store.sql import SqlStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database(request.param, tmp_path / "blitz.db")


def test_a_daemon_killed_mid_attempt_restarts_requeues_and_leaks_nothing(
    ray_cluster: RayCluster, database: str, hold_file: Path, tmp_path: Path
) -> None:
    import ray

    home = tmp_path / "home"
    repo = make_repo(tmp_path)
    hold_file.touch()
    scenario = write_yaml(tmp_path / "agent.yaml", hold_first(AGENT, "world", hold_file))
    args = ("--scenario", scenario, "--executor", "ray", "--ray-address", ray_cluster.address)
    env = {"BLITZ_DATABASE_URL": database, "RAY_AUTH_MODE": "disabled"}
    jobs_before = {j["JobID"] for j in ray._private.state.jobs()}
    daemon = serve(home, *args, **env)
    token = daemon.token
    try:
        goal_id = daemon.submit(repo, PLAN)
        # The attempt at "world" runs on a worker node: its agent waits on the hold file there.
        until(lambda: holding(hold_file), "the remote attempt never started", limit=300)
        until(remote_attempts, "no Ray worker runs the attempt")
        code, _ = daemon.stop(signal.SIGKILL)
        assert code == -signal.SIGKILL
    finally:
        daemon.kill()
    (old_job,) = [j for j in ray._private.state.jobs() if j["JobID"] not in jobs_before]
    # The old daemon's Ray task, and the agent it ran on the worker, die with the daemon: the
    # hold file is still there, so nothing else would end them.
    until(lambda: not remote_attempts(), "the old daemon's Ray task outlived it")
    until(lambda: not holding(hold_file), "the old attempt's agent outlived its daemon")
    until(lambda: _job_dead(old_job["JobID"]), "the old daemon's job is not over")
    hold_file.unlink()

    restarted = serve(home, *args, token=token, **env)
    try:
        assert restarted.readline().startswith("executor: ray")
        assert restarted.readline().startswith(f"resuming {goal_id} (running)")
        final = restarted.wait_state(goal_id)
        assert final["state"] == "succeeded", final
        assert committed_tasks(repo, final["branch"]) == ["hello", "world"]
        world = next(t for t in final["tasks"] if t["id"] == "world")
        assert world["state"] == "succeeded" and world["attempts"] == 2
        attempts = _attempts(database, goal_id, "world")
        assert [a.state.value for a in attempts] == ["crashed", "succeeded"], attempts
        assert "interrupted" in attempts[0].error
        code, err = restarted.stop(signal.SIGTERM)
        assert code == 0, err
    finally:
        restarted.kill()
    # Nothing of either daemon is left on the cluster: no attempt running, no actor alive.
    assert not remote_attempts() and not holding(hold_file)
    alive = [a for a in ray._private.state.actors().values() if a["State"] == "ALIVE"]
    assert not [a for a in alive if a["JobID"] != ray.get_runtime_context().get_job_id()]


def _job_dead(job_id: str) -> bool:
    import ray

    return any(j["JobID"] == job_id and j["IsDead"] for j in ray._private.state.jobs())


def _attempts(database: str, goal_id: str, task_id: str) -> list[Any]:
    store = SqlStore(database)
    try:
        found = [a for a in store.load_attempts(goal_id) if a.task_id == task_id]
        return sorted(found, key=lambda a: a.number)
    finally:
        store.close()
