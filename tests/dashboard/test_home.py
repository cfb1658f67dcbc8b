"""The overview in a real browser against a real daemon: goals found by words, state and project
a page at a time (the search kept in the address), a plan written in YAML, errors shown next to
the field that caused them (never as a toast, never naming a command-line flag), and a goal run
again and published again from its row."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from blitz.domain import Goal, GoalState
from blitz.store.sql import SqlStore

from .harness import Daemon, login

pytestmark = [pytest.mark.dashboard, pytest.mark.slow, pytest.mark.timeout(180)]

ROWS = "[data-testid^='goal-row-']"


def wait_api(daemon: Daemon, path: str, check: Any, timeout: float = 90) -> Any:
    """GET ``path`` until ``check`` holds for the answer; the answer."""
    deadline = time.monotonic() + timeout
    while True:
        found = daemon.api("GET", path)
        if check(found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def count(page: Any, total: int) -> None:
    page.locator(f"[data-testid='goals-count'][data-total='{total}']").wait_for()


def test_goals_are_found_by_words_state_and_project_a_page_at_a_time(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    projects = {name: daemon.api("GET", f"/api/projects/{name}")["id"] for name in daemon.repos}
    now = time.time()
    store = SqlStore(f"sqlite:///{daemon.home / 'blitz.db'}")
    try:  # ended goals, written as the engine writes them
        store.write(
            *(
                Goal(
                    id=f"g-zebra{n:02}",
                    project_id=projects["greeter" if n % 2 else "publisher"],
                    title=f"Zebra chore {n}",
                    state=GoalState.FAILED if n % 3 == 0 else GoalState.SUCCEEDED,
                    branch=f"blitz/zebra-chore-{n}",
                    created_at=now - 3600 + n,
                    finished_at=now - 1800 + n,
                )
                for n in range(23)
            )
        )
        store.flush_sync()
    finally:
        store.close()

    login(page, daemon)
    page.goto(f"{daemon.url}/?q=zebra")
    count(page, 23)
    assert page.get_by_test_id("goal-search").input_value() == "zebra"
    assert page.locator(ROWS).count() == 20
    assert page.locator(ROWS).first.get_attribute("data-testid") == "goal-row-g-zebra22"
    assert page.get_by_test_id("goals-page").inner_text() == "page 1 of 2"
    page.screenshot(path=str(artifacts / "home-search.png"), full_page=True)

    page.get_by_test_id("goals-next").click()
    page.locator("[data-testid='goals-page'][data-page='2']").wait_for()
    page.get_by_test_id("goal-row-g-zebra00").wait_for()
    assert page.locator(ROWS).count() == 3
    assert "page=2" in page.url

    page.get_by_test_id("goal-search").fill("zebra 7")  # every word: 7 and 17
    count(page, 2)
    rows = page.locator(ROWS)
    assert [rows.nth(i).get_attribute("data-testid") for i in range(2)] == [
        "goal-row-g-zebra17",
        "goal-row-g-zebra07",
    ]
    assert "page=" not in page.url  # a new search starts at its first page

    page.get_by_test_id("goal-search").fill("zebra")
    page.get_by_test_id("goal-filter-state").select_option("failed")
    count(page, 8)  # n % 3 == 0
    page.get_by_test_id("goal-filter-project").select_option(projects["greeter"])
    count(page, 4)  # and odd: 3, 9, 15, 21
    assert {page.locator(ROWS).nth(i).get_attribute("data-state") for i in range(4)} == {"failed"}
    page.screenshot(path=str(artifacts / "home-filtered.png"), full_page=True)

    page.reload()  # the search is in the address
    count(page, 4)
    assert page.get_by_test_id("goal-filter-state").input_value() == "failed"

    page.get_by_test_id("goal-search").fill("no goal says this")
    page.get_by_test_id("no-match").wait_for()
    page.get_by_test_id("goals-clear").click()
    page.locator("[data-testid='goals-page'][data-pages='2']").wait_for()
    assert page.get_by_test_id("goal-search").input_value() == ""
    assert int(page.get_by_test_id("goals-count").get_attribute("data-total")) >= 23


def _open_plan(page: Any) -> None:
    page.get_by_test_id("goal-plan").evaluate("el => el.closest('details').open = true")


def test_the_plan_box_takes_yaml_and_errors_stand_next_to_their_field(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    login(page, daemon)
    page.get_by_test_id("project-greeter").wait_for()
    greeter = daemon.api("GET", "/api/projects/greeter")["id"]
    page.get_by_test_id("goal-project").select_option(value=greeter)
    page.get_by_test_id("goal-title").fill("Greet in YAML")
    page.get_by_test_id("goal-backend").fill("scripted")
    _open_plan(page)
    page.get_by_test_id("goal-plan").fill("tasks:\n  - {id: hello, title: Write hello\n")
    page.get_by_test_id("goal-submit").click()

    plan_error = page.get_by_test_id("goal-error-plan")
    plan_error.wait_for()
    assert "not valid YAML: line 3" in plan_error.inner_text()
    assert page.get_by_test_id("goal-form-error").count() == 0  # said once, by its field
    assert page.get_by_test_id("toast-error").count() == 0
    page.screenshot(path=str(artifacts / "goal-form-plan-error.png"), full_page=True)

    page.get_by_test_id("goal-plan").fill(
        "summary: Greet\ntasks:\n  - id: hello\n    title: Write hello\n"
        "  - id: review\n    title: Look\n    depends_on: [hello]\n    allow_empty: true\n"
    )
    assert plan_error.count() == 0  # editing the field puts its error away
    page.get_by_test_id("goal-submit").click()
    page.get_by_test_id("goal-page").wait_for()
    page.get_by_test_id("dag-node-review").wait_for()
    goal_id = page.get_by_test_id("goal-page").get_attribute("data-goal")
    assert [t["id"] for t in daemon.api("GET", f"/api/goals/{goal_id}")["tasks"]] == [
        "hello",
        "review",
    ]

    # A paused project: said under the project, in the dashboard's terms.
    daemon.api("POST", "/api/projects/pausable/pause", {"reason": "release freeze"})
    try:
        page.get_by_test_id("nav-home").click()
        page.get_by_test_id("project-paused-pausable").wait_for()
        pausable = daemon.api("GET", "/api/projects/pausable")["id"]
        page.get_by_test_id("goal-project").select_option(value=pausable)
        page.get_by_test_id("goal-title").fill("This must wait")
        page.get_by_test_id("goal-submit").click()
        paused = page.get_by_test_id("goal-error-project")
        paused.wait_for()
        assert "release freeze" in paused.inner_text()
        assert "blitz" not in paused.inner_text()  # no command to type
        assert page.get_by_test_id("toast-error").count() == 0
    finally:
        daemon.api("POST", "/api/projects/pausable/resume")

    # Uncommitted changes: listed by the box that lets the goal go ahead without them.
    scratch = daemon.repos["greeter"] / "scratch.txt"
    scratch.write_text("work in progress\n")
    try:
        page.get_by_test_id("goal-project").select_option(value=greeter)
        page.get_by_test_id("goal-submit").click()
        dirty = page.get_by_test_id("goal-error-allow_dirty")
        dirty.wait_for()
        assert "scratch.txt" in dirty.inner_text()
        assert "--allow-dirty" not in page.get_by_test_id("goal-form").inner_text()
        page.screenshot(path=str(artifacts / "goal-form-dirty.png"), full_page=True)
        page.get_by_test_id("goal-allow-dirty").check()
        page.get_by_test_id("goal-submit").click()
        page.get_by_test_id("goal-page").wait_for()
    finally:
        scratch.unlink()


def test_a_goal_is_published_again_and_run_again_from_its_row(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    plan = {"summary": "One greeting", "tasks": [{"id": "hello", "title": "Write hello"}]}
    goal = daemon.api(
        "POST", "/api/goals", {"project": "publisher", "title": "Publish me", "plan": plan}
    )
    done = wait_api(
        daemon,
        f"/api/goals/{goal['id']}",
        lambda g: g["state"] == "succeeded" and g["publish_state"] == "published",
    )
    assert done["publish_error"] == ""
    events = f"/api/goals/{goal['id']}/events"

    def pushes(found: list[dict[str, Any]]) -> int:
        return sum(e["kind"] == "pr.pushed" for e in found)

    assert pushes(daemon.api("GET", events)) == 1

    login(page, daemon)
    page.goto(f"{daemon.url}/?q=publish%20me")
    row = page.get_by_test_id(f"goal-row-{goal['id']}")
    row.wait_for()
    assert page.get_by_test_id(f"goal-publish-{goal['id']}").count() == 0  # nothing pending
    page.get_by_test_id(f"goal-publish-again-{goal['id']}").click()
    page.get_by_test_id("toast-info").get_by_text("publishing again").wait_for()
    wait_api(daemon, events, lambda found: pushes(found) == 2)  # pushed once more
    assert "/goals/" not in page.url  # the row's buttons do not open the goal

    page.get_by_test_id(f"goal-rerun-{goal['id']}").click()
    page.get_by_test_id(f"goal-rerun-choice-{goal['id']}").wait_for()
    page.screenshot(path=str(artifacts / "goal-rerun-choice.png"), full_page=True)
    page.get_by_test_id(f"goal-rerun-same-{goal['id']}").click()
    page.locator(f"[data-testid='goal-page']:not([data-goal='{goal['id']}'])").wait_for()
    again_id = page.get_by_test_id("goal-page").get_attribute("data-goal")
    again = daemon.api("GET", f"/api/goals/{again_id}")
    assert (again["title"], again["project"]) == ("Publish me", "publisher")
    assert [t["id"] for t in again["tasks"]] == ["hello"]
    wait_api(daemon, f"/api/goals/{again_id}", lambda g: g["state"] == "succeeded")


def test_a_repository_that_cannot_be_added_says_why_under_the_form(
    page: Any, daemon: Daemon, artifacts: Path
) -> None:
    login(page, daemon)
    page.get_by_test_id("project-greeter").wait_for()
    missing = daemon.home / "no-such-repository"
    page.get_by_test_id("project-path").fill(str(missing))
    page.get_by_test_id("project-add").click()
    error = page.get_by_test_id("project-add-error")
    error.wait_for()
    assert str(missing) in error.inner_text() and "does not exist" in error.inner_text()
    assert page.get_by_test_id("toast-error").count() == 0
    assert page.get_by_test_id("project-path").input_value() == str(missing)  # kept to fix
    page.screenshot(path=str(artifacts / "project-add-error.png"), full_page=True)
    page.get_by_test_id("project-path").fill(str(daemon.home))
    assert error.count() == 0  # editing the path puts the error away
