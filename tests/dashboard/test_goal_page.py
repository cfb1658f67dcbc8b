"""The goal page in a real browser against a real daemon: the task panel's room beside a graph
that refits, the legend off the nodes, durations on the nodes, the timeline of attempts, the
goal's whole change and its pull request rendered in the page."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .harness import SCENARIO, Daemon, environment, login, make_repo

pytestmark = [pytest.mark.dashboard, pytest.mark.slow, pytest.mark.timeout(180)]

TASKS = [t["id"] for t in SCENARIO["tasks"]]
VIEWPORT = {"width": 1440, "height": 1000}  # conftest's page


def eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Wait until ``check()`` holds (the page settles after a resize or a re-read)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def run_goal(daemon: Daemon, project: str, title: str) -> dict[str, Any]:
    """A goal submitted through the API and run to its end (planned by the scenario)."""
    project_id = daemon.api("GET", f"/api/projects/{project}")["id"]
    goal = daemon.api("POST", "/api/goals", {"project": project, "title": title})
    assert goal["project_id"] == project_id
    deadline = time.monotonic() + 90
    while goal["state"] not in ("succeeded", "failed", "cancelled") or goal["publish_state"] == (
        "pending"
    ):
        assert time.monotonic() < deadline, goal
        time.sleep(0.2)
        goal = daemon.api("GET", f"/api/goals/{goal['id']}")
    assert goal["state"] == "succeeded", goal
    return dict(goal)


@pytest.fixture(scope="module")
def greeted(daemon: Daemon) -> dict[str, Any]:
    return run_goal(daemon, "greeter", "Greet the world, then look at it")


def open_goal(page: Any, daemon: Daemon, goal_id: str, query: str = "") -> None:
    login(page, daemon)
    page.get_by_test_id("projects-panel").wait_for()
    page.goto(f"{daemon.url}/goals/{goal_id}{query}")
    page.locator(f"[data-testid='goal-page'][data-goal='{goal_id}']").wait_for()
    for task in TASKS:
        page.get_by_test_id(f"dag-node-{task}").wait_for()


def box(page: Any, test_id: str) -> dict[str, float]:
    found = page.get_by_test_id(test_id).bounding_box()
    assert found is not None, f"{test_id} is not shown"
    return dict(found)


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        outer["x"] - 1 <= inner["x"]
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1
        and outer["y"] - 1 <= inner["y"]
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1
    )


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def nodes_fit(page: Any) -> bool:
    """Every task node lies wholly inside the graph's box."""
    graph = box(page, "dag")
    return all(inside(box(page, f"dag-node-{t}"), graph) for t in TASKS)


def test_the_task_panel_has_room_and_the_graph_refits(
    page: Any, daemon: Daemon, greeted: dict[str, Any], artifacts: Path
) -> None:
    open_goal(page, daemon, greeted["id"])
    eventually(lambda: nodes_fit(page), "the graph shows every node")
    legend = box(page, "dag-legend")
    for task in TASKS:
        assert not overlap(legend, box(page, f"dag-node-{task}")), task

    page.get_by_test_id("dag-node-hello").click()
    panel = page.get_by_test_id("task-panel")
    panel.and_(page.locator("[data-task='hello']")).wait_for()
    # The panel has the window's height, beside a graph that refitted to its narrower box.
    assert box(page, "task-panel")["height"] >= VIEWPORT["height"] - 40
    assert box(page, "task-panel")["width"] >= 560
    eventually(lambda: nodes_fit(page), "the graph refits when the panel opens")
    legend = box(page, "dag-legend")
    for task in TASKS:
        assert not overlap(legend, box(page, f"dag-node-{task}")), task
    # Its diff and gates are not held in a small scroll box of their own.
    panel.get_by_test_id("tab-diff").click()
    panel.get_by_test_id("attempt-diff").locator(".diff-add", has_text="+hello").wait_for()
    style = panel.get_by_test_id("attempt-diff").evaluate("e => getComputedStyle(e).maxHeight")
    assert style == "none"
    page.screenshot(path=str(artifacts / "goal-page-panel.png"))

    # Dragging the handle gives the panel more room; the graph refits again.
    before = box(page, "task-panel")["width"]
    handle = box(page, "panel-splitter")
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + 200
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 150, y, steps=5)
    page.mouse.up()
    eventually(lambda: box(page, "task-panel")["width"] >= before + 140, "the panel widens")
    eventually(lambda: nodes_fit(page), "the graph refits after a resize")
    page.screenshot(path=str(artifacts / "goal-page-panel-resized.png"))

    # The whole width for the task, and back beside the graph.
    page.get_by_test_id("task-wide").click()
    page.get_by_test_id("dag").wait_for(state="detached")
    assert box(page, "task-panel")["width"] >= VIEWPORT["width"] - 100
    page.screenshot(path=str(artifacts / "goal-page-panel-wide.png"))
    page.get_by_test_id("task-wide").click()
    eventually(lambda: nodes_fit(page), "the graph is back, fitted")

    page.get_by_test_id("task-close").click()
    panel.wait_for(state="detached")
    eventually(lambda: nodes_fit(page), "the graph refits when the panel closes")


def test_durations_and_the_timeline_of_attempts(
    page: Any, daemon: Daemon, greeted: dict[str, Any], artifacts: Path
) -> None:
    open_goal(page, daemon, greeted["id"])
    attempts = {a["task_id"]: a for a in greeted["attempts"]}
    assert sorted(attempts) == sorted(TASKS)

    for task, attempt in attempts.items():
        shown = page.get_by_test_id(f"dag-duration-{task}")
        seconds = attempt["finished_at"] - attempt["started_at"]
        assert abs(float(shown.get_attribute("data-seconds")) - seconds) < 0.01, task
        assert shown.inner_text().endswith("s"), shown.inner_text()
    # hello sleeps 1.5 s in the scenario
    assert float(page.get_by_test_id("dag-duration-hello").get_attribute("data-seconds")) >= 1.5

    timeline = page.get_by_test_id("timeline")
    timeline.scroll_into_view_if_needed()
    bars = {t: box(page, f"timeline-bar-{t}-1") for t in TASKS}
    # A task starts after what it depends on ended, on the page as in the store.
    for task in SCENARIO["tasks"]:
        for dep in task.get("depends_on", []):
            assert bars[task["id"]]["x"] >= bars[dep]["x"] + bars[dep]["width"] - 1, (task, dep)
    # Bars are as long as their attempts (hello and world both slept: no 4-pixel minimum).
    hello, world = attempts["hello"], attempts["world"]
    ratio = (hello["finished_at"] - hello["started_at"]) / (
        world["finished_at"] - world["started_at"]
    )
    assert abs(bars["hello"]["width"] / bars["world"]["width"] - ratio) < 0.1 * ratio
    assert "1" in page.get_by_test_id("timeline-bar-hello-1").inner_text()
    timeline.screenshot(path=str(artifacts / "goal-timeline.png"))

    page.get_by_test_id("timeline-bar-world-1").click()
    page.get_by_test_id("task-panel").and_(page.locator("[data-task='world']")).wait_for()
    assert "task=world" in page.url


def test_the_goals_whole_change_and_its_pull_request(
    page: Any, daemon: Daemon, greeted: dict[str, Any], artifacts: Path
) -> None:
    open_goal(page, daemon, greeted["id"])

    changes = page.get_by_test_id("goal-changes")
    changes.get_by_test_id("changed-files").wait_for()
    assert "+2" in changes.get_by_test_id("changed-file-hello.txt").inner_text()
    assert "+1" in changes.get_by_test_id("changed-file-shout.txt").inner_text()
    diff = changes.get_by_test_id("goal-diff")
    for added in ("+hello", "+world", "+HELLO"):
        diff.locator(".diff-add", has_text=added).first.wait_for()
    page.get_by_test_id("changes-card").screenshot(path=str(artifacts / "goal-changes.png"))

    pr = page.get_by_test_id("pull-request")
    description = pr.get_by_test_id("pr-description")
    description.wait_for()
    assert description.locator("h1").inner_text() == "blitz: Greet the world, then look at it"
    cells = description.locator("table td").all_inner_texts()
    assert "hello" in cells and "Write hello" in cells
    assert description.locator("td code", has_text="hello").count() >= 1
    assert "local branch" in pr.get_by_test_id("pr-local").inner_text()
    # Where the goal's work is, in the page's terms: not a file on the daemon's machine.
    assert "pull-request.md" not in page.locator("body").inner_text()
    assert page.get_by_test_id("goal-pr").inner_text() == "pull request description"
    page.get_by_test_id("pull-request-card").screenshot(path=str(artifacts / "goal-pr.png"))


def test_a_pushed_goal_says_where_its_branch_went(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    remote = daemon.remotes["publisher"]
    (remote / "deny").unlink(missing_ok=True)
    goal = run_goal(daemon, "publisher", "Greet, then push")
    assert goal["publish_state"] == "published", goal
    open_goal(page, daemon, goal["id"])

    pushed = page.get_by_test_id("pr-pushed")
    pushed.wait_for()
    text = pushed.inner_text()
    assert goal["branch"] in text and "origin" in text and str(remote) in text
    assert "no pull request was opened" in text
    page.get_by_test_id("pull-request-card").screenshot(path=str(artifacts / "goal-pr-pushed.png"))


# Waits (only in a task's worktree, which has hello.txt) until the test removes the hold file,
# kept in the repository's .git, which the sandbox shows read-only at the same path.
WAITING_GATE = (
    "if [ -e hello.txt ]; then echo 'checking the greeting'; "
    "while [ -e {hold} ]; do sleep 0.05; done; echo 'greeting checked'; fi"
)


def test_gate_output_is_shown_while_the_gate_runs(
    page: Any, daemon: Daemon, tmp_path: Path, artifacts: Path
) -> None:
    env = environment(tmp_path)
    repo = make_repo(tmp_path / "gatekeeper", env)
    hold = repo / ".git" / "hold-gate"
    hold.write_text("")
    toml = (repo / "blitz.toml").read_text().split("[gates]")[0]
    gate = json.dumps(WAITING_GATE.format(hold=hold))
    (repo / "blitz.toml").write_text(f"{toml}[gates]\ntest = {gate}\ntimeout = 120\n")
    subprocess.run(
        ["git", "commit", "-qam", "A gate that waits"], cwd=repo, env=env, check=True, timeout=30
    )
    daemon.api("POST", "/api/projects", {"path": str(repo), "name": "gatekeeper"})
    goal = daemon.api("POST", "/api/goals", {"project": "gatekeeper", "title": "Greet slowly"})
    try:
        open_goal(page, daemon, goal["id"], "?task=hello")
        panel = page.get_by_test_id("task-panel")
        panel.get_by_test_id("attempt-row-1").wait_for()
        panel.get_by_test_id("tab-gates").click()
        live = panel.get_by_test_id("gate-live-test")
        live.locator("pre.gate-output", has_text="checking the greeting").wait_for(timeout=60_000)
        # seen while the gate (and so the attempt) still runs
        assert live.get_attribute("data-ended") == "false"
        assert panel.get_by_test_id("attempt-view").get_attribute("data-state") == "running"
        page.screenshot(path=str(artifacts / "gate-output-live.png"))
    finally:
        hold.unlink()
    # Once the attempt ended, its recorded gates replace the live view.
    gate_done = panel.get_by_test_id("gate-test")
    gate_done.wait_for(timeout=60_000)
    output = gate_done.locator("pre.gate-output").text_content()
    assert output == "checking the greeting\ngreeting checked\n"
    deadline = time.monotonic() + 90
    while daemon.api("GET", f"/api/goals/{goal['id']}")["state"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_follow_up_links_to_the_goal_it_continues(
    page: Any, daemon: Daemon, greeted: dict[str, Any]
) -> None:
    look = {"summary": "look", "tasks": [{"id": "look", "title": "Look", "allow_empty": True}]}
    body = {"project": "greeter", "title": "Look again", "follows": greeted["id"], "plan": look}
    follow = daemon.api("POST", "/api/goals", body)
    assert follow["follows"] == greeted["id"] and follow["branch"] == greeted["branch"]
    eventually(
        lambda: daemon.api("GET", f"/api/goals/{follow['id']}")["state"] == "succeeded",
        "the follow-up succeeds",
        timeout=90,
    )

    login(page, daemon)
    page.get_by_test_id("projects-panel").wait_for()
    page.goto(f"{daemon.url}/goals/{follow['id']}")
    link = page.get_by_test_id("goal-follows")
    link.wait_for()
    assert link.inner_text() == f"follows {greeted['id']}"
    link.get_by_role("link").click()
    page.locator(f"[data-testid='goal-page'][data-goal='{greeted['id']}']").wait_for()
    assert page.get_by_test_id("goal-follows").count() == 0
