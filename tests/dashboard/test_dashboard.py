"""The dashboard in a real browser against a real daemon: log in, run goals and watch them live,
approve a plan, read a task's diff, and see the API's errors."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from blitz.events import Event, EventKind
from blitz.store.sql import SqlStore

from .harness import RECOVERY_PLAN, SCENARIO, SLOW_PLAN, Daemon, login, pushed, submit_goal

pytestmark = [pytest.mark.dashboard, pytest.mark.slow, pytest.mark.timeout(180)]

TASKS = [t["id"] for t in SCENARIO["tasks"]]

# Records every state each graph node shows, so a test can tell that the page changed live.
WATCH_NODES = """
() => {
  window.__seen = {};
  window.__loaded = performance.timeOrigin;
  const note = (el) => {
    const id = el.dataset && el.dataset.testid;
    if (!id || !id.startsWith("dag-node-")) return;
    const states = (window.__seen[id.slice(9)] ||= []);
    const state = el.dataset.state;
    if (states[states.length - 1] !== state) states.push(state);
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "attributes") note(r.target);
      for (const n of r.addedNodes || []) {
        if (n.nodeType !== 1) continue;
        note(n);
        n.querySelectorAll("[data-testid^='dag-node-']").forEach(note);
      }
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true,
                              attributeFilter: ["data-state"] });
}
"""


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    """Whether a bounding box lies within another (a pixel of rounding allowed)."""
    return (
        outer["x"] <= inner["x"] + 1
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1
        and outer["y"] <= inner["y"] + 1
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1
    )


def wait_all_succeeded(page: Any, timeout: float = 90_000, tasks: list[str] = TASKS) -> None:
    for task in tasks:
        node = page.get_by_test_id(f"dag-node-{task}")
        node.and_(page.locator("[data-state='succeeded']")).wait_for(timeout=timeout)
    page.locator("[data-testid='goal-state'][data-state='succeeded']").wait_for(timeout=timeout)


def test_a_wrong_token_shows_the_apis_error(page: Any, daemon: Daemon, artifacts: Path) -> None:
    login(page, daemon, token="not-the-token")
    error = page.get_by_test_id("login-error")
    error.wait_for()
    assert "token invalid" in error.inner_text()
    assert page.evaluate("sessionStorage.getItem('blitz.token')") is None
    page.screenshot(path=str(artifacts / "login-wrong-token.png"))

    page.get_by_test_id("login-token").fill(daemon.token)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("projects-panel").wait_for()
    assert page.evaluate("sessionStorage.getItem('blitz.token')") == daemon.token


def test_a_submitted_goal_turns_green_live(page: Any, daemon: Daemon, artifacts: Path) -> None:
    login(page, daemon)
    page.get_by_test_id("project-greeter").wait_for()
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)
    page.evaluate(WATCH_NODES)
    loaded = page.evaluate("window.__loaded")

    submit_goal(page, daemon, "greeter", "Greet the world")
    page.get_by_test_id("goal-page").wait_for()
    page.locator("[data-testid^='dag-node-'][data-state='running']").first.wait_for()
    page.screenshot(path=str(artifacts / "goal-running.png"), full_page=True)
    wait_all_succeeded(page)
    page.screenshot(path=str(artifacts / "goal-succeeded.png"), full_page=True)

    # The same document all along: the page followed the event stream, it was never reloaded.
    assert page.evaluate("window.__loaded") == loaded
    seen = page.evaluate("window.__seen")
    assert seen["hello"][-1] == "succeeded" and "running" in seen["hello"], seen
    for task in ("world", "shout"):
        assert seen[task][-1] == "succeeded" and len(seen[task]) > 1, seen
    assert page.get_by_test_id("stream-status").get_attribute("data-status") == "live"
    edges = page.locator(".react-flow__edge.edge-plan")
    assert sorted(e.get_attribute("data-id") for e in edges.all()) == [
        "hello->shout",
        "hello->world",
        "shout->review",
        "world->review",
    ]

    # The overview lists the finished goal with its progress and cost.
    goal_id = page.get_by_test_id("goal-page").get_attribute("data-goal")
    page.get_by_test_id("cost-chart").wait_for()
    assert page.get_by_test_id("goal-cost").inner_text() == "$0.03"
    page.get_by_test_id("nav-home").click()
    row = page.get_by_test_id(f"goal-row-{goal_id}")
    row.and_(page.locator("[data-state='succeeded']")).wait_for()
    assert "4/4" in row.inner_text() and "$0.03" in row.inner_text()


def test_a_plan_awaiting_approval_runs_once_approved(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    login(page, daemon)
    page.get_by_test_id("project-approver").wait_for()
    submit_goal(page, daemon, "approver", "Greet, after a look at the plan")
    page.locator("[data-testid='goal-state'][data-state='awaiting_approval']").wait_for()
    review = page.get_by_test_id("plan-review")
    for task in TASKS:
        review.get_by_test_id(f"plan-task-{task}").wait_for()
        node = page.get_by_test_id(f"dag-node-{task}")
        assert node.get_attribute("data-state") == "pending"
    review.get_by_text("Create hello.txt saying hello.").wait_for()  # the task's instructions
    page.screenshot(path=str(artifacts / "plan-awaiting-approval.png"), full_page=True)

    # An edited plan written wrong: the daemon's word shows under the plan box, once, in place of
    # a toast; nothing was approved.
    review.get_by_test_id("plan-edit-box").locator("summary").click()
    review.get_by_test_id("plan-edit").fill("summary: Other\ntasks:\n  - id: [only\n")
    assert review.get_by_test_id("goal-approve").inner_text() == "approve the edited plan"
    review.get_by_test_id("goal-approve").click()
    error = review.get_by_test_id("plan-error-plan")
    error.wait_for()
    assert "not valid YAML: line 4" in error.inner_text(), error.inner_text()
    assert page.get_by_text("not valid YAML").count() == 1  # said once
    assert page.get_by_test_id("toast-error").count() == 0
    assert review.get_by_test_id("plan-review-error").count() == 0
    page.screenshot(path=str(artifacts / "plan-edit-error.png"), full_page=True)
    assert page.get_by_test_id("goal-state").get_attribute("data-state") == "awaiting_approval"

    review.get_by_test_id("plan-edit").fill("")  # run it as planned
    assert review.get_by_test_id("plan-error-plan").count() == 0  # the edit cleared the error
    page.get_by_test_id("goal-approve").click()
    wait_all_succeeded(page)
    assert page.get_by_test_id("plan-review").count() == 0
    page.screenshot(path=str(artifacts / "plan-approved-done.png"), full_page=True)


def test_a_tasks_diff_transcript_and_gates(page: Any, daemon: Daemon, artifacts: Path) -> None:
    login(page, daemon)
    submit_goal(page, daemon, "greeter", "Greet again, then read the diff")
    wait_all_succeeded(page)

    page.get_by_test_id("dag-node-hello").click()
    panel = page.get_by_test_id("task-panel")
    panel.and_(page.locator("[data-task='hello']")).wait_for()
    panel.get_by_test_id("attempt-row-1").wait_for()
    assert "scripted" in panel.get_by_test_id("attempt-row-1").inner_text()

    panel.get_by_test_id("tab-transcript").click()
    panel.get_by_test_id("transcript").get_by_text("writing hello.txt").wait_for()

    panel.get_by_test_id("tab-gates").click()
    gate = panel.get_by_test_id("gate-test")
    gate.wait_for()
    assert "passed" in gate.inner_text()
    # The module's first goal on this project made the same tree: its result is reused, and
    # the gate says so (when this test runs alone, it is not, and says nothing).
    goal_id = page.get_by_test_id("goal-page").get_attribute("data-goal")
    task = daemon.api("GET", f"/api/goals/{goal_id}/tasks/hello")
    attempt = daemon.api("GET", f"/api/goals/{goal_id}/attempts/{task['attempts_list'][-1]['id']}")
    [reused] = [g["reused"] for g in attempt["gates"] if g["name"] == "test"]
    assert gate.locator(".badge-reused").count() == (1 if reused else 0)

    panel.get_by_test_id("tab-diff").click()
    diff = panel.get_by_test_id("attempt-diff")
    diff.wait_for()
    page.screenshot(path=str(artifacts / "task-diff.png"), full_page=True)
    added = diff.locator(".diff-add", has_text="+hello")
    added.wait_for(timeout=10_000)
    assert "diff-add" in (added.get_attribute("class") or "")
    assert "hello.txt" in diff.inner_text()


def test_api_errors_are_shown_and_projects_pause(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    login(page, daemon)
    row = page.get_by_test_id("project-pausable")
    row.get_by_test_id("project-pause-pausable").click()
    page.get_by_test_id("project-paused-pausable").wait_for()
    assert daemon.api("GET", "/api/projects/pausable")["paused"] is True

    submit_goal(page, daemon, "pausable", "This must wait")
    error = page.get_by_test_id("goal-error-project")  # next to the field, not a toast
    error.wait_for()
    assert "paused" in error.inner_text()
    assert page.get_by_test_id("toast-error").count() == 0
    page.screenshot(path=str(artifacts / "api-error-inline.png"), full_page=True)

    row.get_by_test_id("project-resume-pausable").click()
    row.and_(page.locator("[data-paused='false']")).wait_for()
    assert daemon.api("GET", "/api/projects/pausable")["paused"] is False


def test_recovery_tasks_and_injected_edges_are_drawn_apart(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    login(page, daemon)
    page.get_by_test_id("goal-plan").evaluate("el => el.closest('details').open = true")
    page.get_by_test_id("goal-plan").fill(json.dumps(RECOVERY_PLAN))
    submit_goal(page, daemon, "greeter", "Recover from a failure")

    prep = page.get_by_test_id("dag-node-prep")
    prep.wait_for()
    assert prep.get_attribute("data-origin") == "recovery:flaky"
    assert "recovery of flaky" in prep.inner_text()
    wait_all_succeeded(page, tasks=["flaky", "prep", "after"])
    edge = page.locator(".react-flow__edge.edge-injected")
    assert edge.count() == 1 and edge.get_attribute("data-id") == "prep->flaky"
    assert page.locator(".react-flow__edge.edge-plan").count() == 1  # flaky -> after
    page.get_by_test_id("recoveries").get_by_text("prep.txt must exist before flaky.txt").wait_for()

    page.get_by_test_id("dag-node-flaky").click()
    panel = page.get_by_test_id("task-panel")
    panel.get_by_test_id("attempt-row-1").and_(page.locator("[data-state='failed']")).wait_for()
    panel.get_by_test_id("attempt-row-2").and_(page.locator("[data-state='succeeded']")).wait_for()
    panel.get_by_test_id("attempt-row-1").click()
    panel.get_by_test_id("attempt-error").get_by_text("flaky.txt needs prep.txt").wait_for()
    page.screenshot(path=str(artifacts / "recovery.png"), full_page=True)


def test_best_of_n_candidates_are_grouped_under_their_task(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    login(page, daemon)
    page.get_by_test_id("goal-explore").fill("3")
    submit_goal(page, daemon, "greeter", "Greet, three ways")
    wait_all_succeeded(page)

    candidates = page.locator("[data-testid^='dag-candidate-hello-']")
    candidates.first.wait_for()
    assert candidates.count() == 3
    states = {
        c.get_attribute("data-testid"): c.get_attribute("data-state") for c in candidates.all()
    }
    assert states["dag-candidate-hello-2"] == "failed", states
    chosen = page.locator("[data-testid^='dag-candidate-hello-'][data-chosen='true']")
    assert chosen.count() == 1 and chosen.get_attribute("data-state") == "succeeded"
    # the candidates sit inside their task's node
    task = page.get_by_test_id("dag-node-hello").bounding_box()
    for candidate in candidates.all():
        assert inside(candidate.bounding_box(), task)

    page.get_by_test_id("dag-candidate-hello-2").click()
    panel = page.get_by_test_id("task-panel")
    panel.get_by_test_id("attempt-view").and_(page.locator("[data-state='failed']")).wait_for()
    panel.get_by_test_id("attempt-error").get_by_text("candidate 2 gave up").wait_for()
    page.screenshot(path=str(artifacts / "best-of-n.png"), full_page=True)


def test_skip_a_task_then_cancel_the_goal(page: Any, daemon: Daemon, artifacts: Path) -> None:
    login(page, daemon)
    page.get_by_test_id("goal-plan").evaluate("el => el.closest('details').open = true")
    page.get_by_test_id("goal-plan").fill(json.dumps(SLOW_PLAN))
    submit_goal(page, daemon, "greeter", "Act on a running goal")
    page.locator("[data-testid='dag-node-slow'][data-state='running']").wait_for()

    page.get_by_test_id("dag-node-later").click()
    panel = page.get_by_test_id("task-panel")
    panel.and_(page.locator("[data-task='later']")).wait_for()
    panel.get_by_test_id("task-skip").click()
    page.locator("[data-testid='dag-node-later'][data-state='skipped']").wait_for()
    page.get_by_test_id("toast-info").get_by_text("skip requested").wait_for()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("goal-cancel").click()
    page.locator("[data-testid='goal-state'][data-state='cancelled']").wait_for()
    page.locator("[data-testid='dag-node-slow'][data-state='cancelled']").wait_for()
    assert page.get_by_test_id("goal-cancel").count() == 0
    page.screenshot(path=str(artifacts / "skipped-and-cancelled.png"), full_page=True)


def test_a_goal_whose_push_failed_is_pending_and_published_again(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    remote = daemon.remotes["publisher"]
    (remote / "deny").write_text("the remote is being moved\n")
    login(page, daemon)
    submit_goal(page, daemon, "publisher", "Greet, then push")
    wait_all_succeeded(page)
    goal_id = page.get_by_test_id("goal-page").get_attribute("data-goal")

    # Every task succeeded, the push was refused: succeeded, publishing pending, and why.
    pending = page.get_by_test_id("goal-publish-pending")
    pending.wait_for(timeout=60_000)
    assert "publishing pending after 1 try" in pending.inner_text()
    assert "the remote is being moved" in pending.inner_text()
    assert page.get_by_test_id("goal-state").get_attribute("data-state") == "succeeded"
    page.screenshot(path=str(artifacts / "publish-pending.png"), full_page=True)

    # The goal list shows it too.
    page.get_by_test_id("nav-home").click()
    page.get_by_test_id(f"goal-publish-pending-{goal_id}").wait_for()
    page.get_by_test_id(f"goal-row-{goal_id}").get_by_role("link").click()

    # Another process holds the goal (as `blitz publish` in a terminal would): the daemon
    # refuses to publish it, and the page shows the daemon's answer.
    store = SqlStore(f"sqlite:///{daemon.home / 'blitz.db'}")
    try:
        me = f"{os.getpid()}@{socket.gethostname()}"
        # the daemon gives the goal up just after its run ends
        deadline = time.monotonic() + 30
        while store.claim(goal_id, me, 600).owner != me:
            assert time.monotonic() < deadline, store.lease(goal_id)
            time.sleep(0.1)
        page.get_by_test_id("goal-publish").click()
        toast = page.get_by_test_id("toast-error")
        toast.wait_for()
        assert "409" in toast.inner_text() and "being published" in toast.inner_text()
        page.screenshot(path=str(artifacts / "publish-refused.png"), full_page=True)
    finally:
        store.release(goal_id)
        store.close()
    assert daemon.api("GET", f"/api/goals/{goal_id}")["publish_attempts"] == 1

    # Publish again while the remote still refuses: one more try, still pending.
    page.get_by_test_id("goal-publish").click()
    page.locator("[data-testid='goal-publish-pending'][data-attempts='2']").wait_for()
    assert "after 2 tries" in page.get_by_test_id("goal-publish-pending").inner_text()

    # Once the remote takes pushes, publishing again from the goal list publishes it.
    (remote / "deny").unlink()
    page.get_by_test_id("nav-home").click()
    page.get_by_test_id(f"goal-publish-{goal_id}").click()
    page.get_by_test_id(f"goal-publish-pending-{goal_id}").wait_for(
        state="detached", timeout=60_000
    )
    goal = daemon.api("GET", f"/api/goals/{goal_id}")
    assert goal["state"] == "succeeded" and goal["publish_state"] == "published", goal
    assert goal["publish_attempts"] == 2  # the try that got through is not counted as failed
    assert pushed(remote, goal["branch"])
    assert page.get_by_test_id(f"goal-publish-{goal_id}").count() == 0
    page.get_by_test_id(f"goal-row-{goal_id}").get_by_role("link").click()
    page.get_by_test_id("goal-page").wait_for()
    assert page.get_by_test_id("goal-publish-pending").count() == 0


def test_a_task_waiting_for_its_provider_says_why_and_until_when(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    login(page, daemon)
    page.get_by_test_id("goal-plan").evaluate("el => el.closest('details').open = true")
    page.get_by_test_id("goal-plan").fill(json.dumps(SLOW_PLAN))
    submit_goal(page, daemon, "greeter", "Wait for the provider")
    page.locator("[data-testid='dag-node-slow'][data-state='running']").wait_for()
    goal_id = page.get_by_test_id("goal-page").get_attribute("data-goal")

    # The event the engine writes when a task's provider is out (conductor/goal.py `wait`),
    # written to the daemon's store as another process would: the page learns it from the
    # event stream like every other change.
    until = time.time() + 3600
    reason = "429 Too Many Requests: rate limited (retry-after 3600)"
    store = SqlStore(f"sqlite:///{daemon.home / 'blitz.db'}")
    try:
        store.write(
            events=[
                Event(
                    kind=EventKind.TASK_WAITING,
                    goal_id=goal_id,
                    task_id="later",
                    message="waiting 3600s for the model provider: 429 Too Many Requests",
                    data={"until": until, "seconds": 3600.0, "reason": reason},
                    ts=time.time(),
                )
            ]
        )
        store.flush_sync()
    finally:
        store.close()

    tag = page.get_by_test_id("dag-waiting-later")
    tag.wait_for()
    assert "waiting until" in tag.inner_text()
    assert page.get_by_test_id("dag-node-later").get_attribute("data-waiting") == "true"
    page.get_by_test_id("dag-node-later").click()
    note = page.get_by_test_id("task-panel").get_by_test_id("task-waiting")
    note.wait_for()
    assert "waiting for its model provider" in note.inner_text() and reason in note.inner_text()
    assert abs(float(note.get_attribute("data-until")) - until) < 1
    page.screenshot(path=str(artifacts / "task-waiting.png"), full_page=True)

    # Once the task moves on (here: its goal is cancelled), it no longer shows as waiting.
    daemon.api("POST", f"/api/goals/{goal_id}/cancel", {})
    page.locator("[data-testid='dag-node-later'][data-state='cancelled']").wait_for()
    tag.wait_for(state="detached")
    assert page.get_by_test_id("task-waiting").count() == 0
