"""A task waiting for a worker node is marked in the goal's graph, in a real browser: a real
daemon runs its attempts on the test's Ray cluster (tests/ray_cluster.py); a task needing a label
no worker has waits, its graph node says so (the reason on hover) and the task panel says why;
once a worker with the label joins, the attempt is placed, runs, and the mark goes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray_cluster import RayCluster

from .harness import Daemon, environment, login, make_repo, serving

pytestmark = [pytest.mark.dashboard, pytest.mark.slow, pytest.mark.timeout(300)]

PLAN: dict[str, Any] = {
    "summary": "A task for a GPU machine",
    "tasks": [{"id": "train", "title": "Train on a GPU", "labels": ["gpu"]}],
}
AGENT = {"agent": {"train": [[{"write": {"path": "model.txt", "content": "trained\n"}}]]}}
WHY = "no worker with the backend 'scripted' has the labels gpu"


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path, _ray_session: RayCluster
) -> Iterator[Daemon]:
    """A daemon whose attempts run on the session's Ray cluster, the scripted agent's steps
    travelling with each job."""
    root = tmp_path_factory.mktemp("dashboard-ray")
    env = environment(root)
    env["RAY_AUTH_MODE"] = "disabled"
    scenario = root / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({**PLAN, **AGENT}, sort_keys=False))
    repos = {"trainer": make_repo(root / "trainer", env)}
    args = ("--scenario", str(scenario), "--executor", "ray", "--ray-address", _ray_session.address)
    with serving(root, env, repos, artifacts, *args) as d:
        yield d


def test_the_graph_marks_a_task_waiting_for_a_worker_until_one_joins(
    page: Any, daemon: Daemon, ray_cluster: RayCluster, artifacts: Path
) -> None:
    goal = daemon.api("POST", "/api/goals", {"project": "trainer", "title": "Train", "plan": PLAN})
    login(page, daemon)
    page.goto(f"{daemon.url}/goals/{goal['id']}")
    node = page.get_by_test_id("dag-node-train")
    tag = page.get_by_test_id("dag-worker-wait-train")
    tag.wait_for(timeout=90_000)
    assert tag.inner_text() == "waiting for a worker"
    assert node.get_attribute("data-worker-wait") == "true"
    assert node.get_attribute("data-state") == "running"
    assert node.get_attribute("title") == f"waiting for a worker: {WHY}"
    assert "waiting" in (node.get_attribute("class") or "").split()
    assert page.get_by_test_id("dag-waiting-train").count() == 0  # not the provider's wait
    node.click()
    note = page.get_by_test_id("task-panel").get_by_test_id("task-worker-wait")
    note.wait_for()
    assert WHY in note.inner_text()
    page.screenshot(path=str(artifacts / "dag-worker-wait.png"), full_page=True)

    ray_cluster.add_worker("gpu", slots=1, backends=("scripted",), labels=("gpu",))
    deadline = time.monotonic() + 120
    while daemon.api("GET", f"/api/goals/{goal['id']}")["state"] != "succeeded":
        assert time.monotonic() < deadline, daemon.api("GET", f"/api/goals/{goal['id']}")
        time.sleep(0.2)
    page.get_by_test_id("dag-node-train").and_(page.locator("[data-state=succeeded]")).wait_for()
    assert tag.count() == 0
    assert node.get_attribute("data-worker-wait") is None
    assert page.get_by_test_id("task-worker-wait").count() == 0
