"""The overview's workers panel and a task's labels, in a real browser against a real daemon:
with the local executor the panel says attempts run in the daemon; a task planned with
``labels:`` shows what it needs. (Worker nodes themselves: tests/executors/ray/.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .harness import Daemon, login

pytestmark = [pytest.mark.dashboard, pytest.mark.slow, pytest.mark.timeout(180)]


def test_the_workers_panel_and_the_labels_a_task_needs(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    login(page, daemon)
    panel = page.get_by_test_id("workers-panel")
    note = panel.get_by_test_id("workers-note")
    note.wait_for()
    assert "runs every attempt in the daemon's process" in note.inner_text()
    assert panel.get_by_test_id("workers").get_attribute("data-executor") == "local"
    page.screenshot(path=str(artifacts / "home-workers.png"), full_page=True)

    plan = {
        "summary": "look",
        "tasks": [{"id": "look", "title": "Look", "allow_empty": True, "labels": ["gpu", "eu"]}],
    }
    goal = daemon.api("POST", "/api/goals", {"project": "greeter", "title": "Look", "plan": plan})
    deadline = time.monotonic() + 90
    while daemon.api("GET", f"/api/goals/{goal['id']}")["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    (task,) = daemon.api("GET", f"/api/goals/{goal['id']}")["tasks"]
    assert task["labels"] == ["gpu", "eu"]
    page.goto(f"{daemon.url}/goals/{goal['id']}?task=look")
    labels = page.get_by_test_id("task-panel").get_by_test_id("task-labels")
    labels.wait_for()
    assert labels.inner_text() == "needs gpu, eu"
    assert page.get_by_test_id("task-worker-wait").count() == 0
