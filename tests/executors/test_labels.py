"""Worker labels: a plan task's ``labels:`` and a project's ``[executor] labels`` reach every
attempt request (the task's first, then the project's), are stored with the task, shown by the
API and ``blitz status``, and a name that cannot be a label is refused when the plan or the
blitz.toml is read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz
from engine_helpers import MakeApp, make_repo, run_one, task, write

from blitz.app import App
from blitz.config import load_repo_config
from blitz.domain import Attempt, Goal, GoalState, Project, Task, TaskState
from blitz.errors import ConfigError, PlanError
from blitz.events import Event, EventKind
from blitz.executors.base import AttemptReport, AttemptRequest
from blitz.executors.local import LocalExecutor
from blitz.planner import parse_plan
from blitz.server.schemas import TaskOut, plan_data
from blitz.settings import Settings
from blitz.store.sql import SqlStore
from blitz.testing.scripted import Scenario


class RecordingExecutor(LocalExecutor):
    """The local executor, keeping every request it ran."""

    def __init__(self) -> None:
        self.requests: list[AttemptRequest] = []

    async def run(self, request: AttemptRequest) -> AttemptReport:
        self.requests.append(request)
        return await super().run(request)


def test_a_plan_task_may_need_labels_and_they_round_trip_through_the_plan_format() -> None:
    plan = parse_plan(
        {"tasks": [{"id": "a", "title": "A", "labels": ["gpu", "big-repo", "gpu"]}, task("b")]}
    )
    assert plan.tasks[0].labels == ("gpu", "big-repo")  # a repeated label is one label
    assert plan.tasks[1].labels == ()
    again = parse_plan(plan_data(plan))
    assert again.tasks[0].labels == ("gpu", "big-repo")


def test_a_label_that_is_not_a_name_is_refused_with_the_task_named() -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan({"tasks": [{"id": "a", "title": "A", "labels": ["ok", "no spaces"]}]})
    assert "task 'a'" in str(caught.value)
    assert "label 'no spaces' is not a valid name" in str(caught.value)


def test_project_labels_are_read_from_blitz_toml_and_a_bad_one_names_the_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "blitz.toml").write_text('[executor]\nlabels = ["gpu", "eu-west"]\n')
    cfg = load_repo_config(tmp_path)
    assert cfg is not None and cfg.executor.labels == ["gpu", "eu-west"]
    (tmp_path / "blitz.toml").write_text('[executor]\nlabels = ["gpu", "../etc"]\n')
    with pytest.raises(ConfigError) as caught:
        load_repo_config(tmp_path)
    assert "blitz.toml" in str(caught.value)
    assert "label '../etc' is not a valid name" in str(caught.value)


async def test_every_attempt_asks_for_its_tasks_labels_then_its_projects(
    tmp_path: Path, isolated_git: None
) -> None:
    repo = make_repo(tmp_path, sections={"executor": {"labels": ["eu-west", "gpu"]}})
    scenario: dict[str, Any] = {
        "tasks": [task("a", labels=["gpu", "big-repo"]), task("b", "a")],
        "agent": {"a": [[write("a.txt", "a\n")]], "b": [[write("b.txt", "b\n")]]},
    }
    recording = RecordingExecutor()
    app = App(
        Settings(home=tmp_path / "home"),
        scenario=Scenario.from_data(scenario),
        executor=recording,
    )
    try:
        started, goal = await run_one(app, repo)
        stored = {t.id: t for t in app.store.load_tasks(started.goal.id)}
    finally:
        await app.aclose()
    assert goal.state is GoalState.SUCCEEDED, goal.error
    asked = {r.task.id: r.labels for r in recording.requests}
    assert asked == {"a": ("gpu", "big-repo", "eu-west"), "b": ("eu-west", "gpu")}
    # Stored with the task, and shown by the API.
    assert stored["a"].labels == ("gpu", "big-repo")
    assert TaskOut.of(stored["a"]).labels == ["gpu", "big-repo"]
    assert TaskOut.of(stored["b"]).labels == []


async def test_blitz_status_shows_a_tasks_labels(
    tmp_path: Path, isolated_git: None, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path)
    scenario: dict[str, Any] = {
        "tasks": [task("a", labels=["gpu"])],
        "agent": {"a": [[write("a.txt", "a\n")]]},
    }
    app = apps(scenario)
    started, goal = await run_one(app, repo)
    assert goal.state is GoalState.SUCCEEDED, goal.error
    await app.store.flush()
    home = app.settings.home
    shown = blitz(home, "status", started.goal.id, "--json")
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)["tasks"]
    assert row["labels"] == ["gpu"]
    assert row["waiting_for_worker"] == ""
    table = blitz(home, "status", started.goal.id)
    assert "[needs gpu]" in table.stdout


def test_blitz_status_says_why_a_running_attempt_waits_for_a_worker(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    store = SqlStore(f"sqlite:///{home / 'blitz.db'}")
    project = Project(id="p-1", name="remote", path=str(tmp_path))
    goal = Goal(id="g-1", project_id=project.id, title="On the cluster")
    waiting = Task(id="a", goal_id=goal.id, title="Do a", state=TaskState.RUNNING, labels=("gpu",))
    placed = Task(id="b", goal_id=goal.id, title="Do b", state=TaskState.RUNNING)
    reason = "no worker with the backend 'scripted' has the labels gpu"

    def event(kind: EventKind, attempt: str, **data: str) -> Event:
        return Event(kind=kind, goal_id=goal.id, task_id=attempt[0], attempt_id=attempt, data=data)

    store.write(
        project,
        goal,
        waiting,
        placed,
        Attempt(id="a1", goal_id=goal.id, task_id="a", number=1),
        Attempt(id="b1", goal_id=goal.id, task_id="b", number=1),
        events=[
            event(EventKind.ATTEMPT_WAITING, "a1", reason="every slot is busy"),
            event(EventKind.ATTEMPT_WAITING, "b1", reason="every slot is busy"),
            event(EventKind.ATTEMPT_WAITING, "a1", reason=reason),  # the latest one counts
            event(EventKind.ATTEMPT_PLACED, "b1", node="n-1", address="127.0.0.1"),
        ],
    )
    store.flush_sync()
    store.close()
    shown = blitz(home, "status", goal.id, "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {t["id"]: t for t in json.loads(shown.stdout)["tasks"]}
    assert rows["a"]["waiting_for_worker"] == reason
    assert rows["b"]["waiting_for_worker"] == ""  # placed since
    table = blitz(home, "status", goal.id)
    assert f"waiting for a worker: {reason}" in table.stdout
    assert table.stdout.count("waiting for a worker") == 1
