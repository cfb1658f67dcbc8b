"""A task whose model provider rate-limits it waits, and the dashboard says so: a real daemon
runs the embedded agent against a scripted model server on 127.0.0.1 that answers 429 with a
retry-after of an hour, and the page shows the task waiting, why and until when."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blitz.testing.model_server import ModelServer

from .harness import Daemon, environment, login, make_repo, serving, submit_goal

pytestmark = [pytest.mark.dashboard, pytest.mark.slow, pytest.mark.timeout(180)]

KEY = "test-key-not-real-1234"
HOUR = 3600
PLAN: dict[str, Any] = {
    "summary": "One task for a rate-limited model",
    "tasks": [{"id": "greet", "title": "Add greet()", "instructions": "Write greet.py."}],
}


@pytest.fixture(scope="module")
def model_server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path, model_server: ModelServer
) -> Iterator[Daemon]:
    """A daemon whose agents are the embedded one, talking to ``model_server``."""
    root = tmp_path_factory.mktemp("dashboard-models")
    env = environment(root)
    env.update(
        ANTHROPIC_BASE_URL=model_server.anthropic_base_url,
        ANTHROPIC_API_KEY=KEY,
        BLITZ_MODEL="anthropic:claude-sonnet-4-6",
    )
    repos = {"limited": make_repo(root / "limited", env)}
    with serving(root, env, repos, artifacts) as d:
        yield d


def test_a_rate_limited_task_waits_and_says_why_and_until_when(
    page: Any, daemon: Daemon, model_server: ModelServer, artifacts: Path
) -> None:
    model_server.fail_next(50, 429, retry_after=HOUR, api="anthropic", message="Rate limited")
    login(page, daemon)
    page.get_by_test_id("goal-plan").evaluate("el => el.closest('details').open = true")
    page.get_by_test_id("goal-plan").fill(json.dumps(PLAN))
    started = time.time()
    submit_goal(page, daemon, "limited", "Greet, when the provider lets us", backend="embedded")

    tag = page.get_by_test_id("dag-waiting-greet")
    tag.wait_for(timeout=60_000)
    assert "waiting until" in tag.inner_text()
    page.get_by_test_id("dag-node-greet").click()
    note = page.get_by_test_id("task-panel").get_by_test_id("task-waiting")
    note.wait_for()
    assert "waiting for its model provider" in note.inner_text()
    assert "429" in note.inner_text(), note.inner_text()
    # until: the hour the provider asked for, from when the task was parked
    until = float(note.get_attribute("data-until"))
    assert started + HOUR - 5 <= until <= time.time() + HOUR + 5
    page.screenshot(path=str(artifacts / "task-waiting-rate-limited.png"), full_page=True)

    goal_id = page.get_by_test_id("goal-page").get_attribute("data-goal")
    daemon.api("POST", f"/api/goals/{goal_id}/cancel", {})
    page.locator("[data-testid='goal-state'][data-state='cancelled']").wait_for()
    tag.wait_for(state="detached")
