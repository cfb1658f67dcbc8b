"""The sandbox's modes through the whole engine: ``required`` (the default) confines the scripted
agent's commands and the gates, and pauses the project with how to install bubblewrap where it
cannot start; ``off`` runs unconfined and says so on every run and in the pull request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from attacks import NEEDS_BUBBLEWRAP
from blitz_process import path_without_bubblewrap
from engine_helpers import goal_events, make_app, make_repo, of_kind, start_goal, write

from blitz import sandbox
from blitz.backends.sandboxed import UNCONFINED_WARNING
from blitz.domain import GoalState

ESCAPE = "echo escaped > ../escape.txt; echo escaped > {outside}/escape.txt"


def scenario(outside: Path) -> dict[str, object]:
    return {
        "summary": "One task",
        "tasks": [{"id": "t1", "title": "Write a file"}],
        "agent": {
            "t1": [[{"run": ESCAPE.format(outside=outside)}, write("done.txt", "done\n")]],
        },
    }


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    return path


@NEEDS_BUBBLEWRAP
async def test_required_confines_the_agents_commands_and_the_gates(
    tmp_path: Path, outside: Path
) -> None:
    gate = f"echo gate > {outside}/gate.txt; echo gate > ../gate.txt; test -f done.txt"
    repo = make_repo(tmp_path, gates={"test": gate})
    app = make_app(tmp_path / "home", scenario(outside))
    try:
        engine = app.engine()
        started = await start_goal(app, engine, repo, "Write a file")
        goal = (await engine.run())[started.goal.id]
        assert goal.state is GoalState.SUCCEEDED, goal.error
        assert list(outside.iterdir()) == []
        assert not list(tmp_path.glob("**/escape.txt"))
        assert not list(tmp_path.glob("**/gate.txt"))
        messages = [e.message for e in of_kind(goal_events(app, goal.id), "agent.message")]
        assert UNCONFINED_WARNING not in messages
    finally:
        await app.aclose()


async def test_off_runs_unconfined_and_says_so_in_every_run_and_the_pull_request(
    tmp_path: Path, outside: Path
) -> None:
    repo = make_repo(tmp_path, sections={"sandbox": {"mode": "off"}})
    home = tmp_path / "home"
    app = make_app(home, scenario(outside))
    try:
        engine = app.engine()
        started = await start_goal(app, engine, repo, "Write a file")
        goal = (await engine.run())[started.goal.id]
        assert goal.state is GoalState.SUCCEEDED, goal.error
        assert (outside / "escape.txt").exists()  # unconfined, as the user chose
        messages = [e.message for e in of_kind(goal_events(app, goal.id), "agent.message")]
        assert UNCONFINED_WARNING in messages
        description = (home / "goals" / goal.id / "pull-request.md").read_text()
        assert "Unconfined agents" in description
    finally:
        await app.aclose()


@pytest.fixture
def no_bubblewrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A PATH with every program of this machine but bwrap."""
    monkeypatch.setenv("PATH", path_without_bubblewrap(tmp_path))
    sandbox.probe.cache_clear()
    yield
    sandbox.probe.cache_clear()


@pytest.mark.usefixtures("no_bubblewrap")
@pytest.mark.parametrize("gates", [{}, {"test": "true"}], ids=["agent", "baseline"])
async def test_required_without_bubblewrap_pauses_the_project_saying_how_to_install_it(
    tmp_path: Path, outside: Path, gates: dict[str, object]
) -> None:
    repo = make_repo(tmp_path, gates=gates)
    app = make_app(tmp_path / "home", scenario(outside))
    try:
        engine = app.engine(return_when_blocked=True)
        started = await start_goal(app, engine, repo, "Write a file")
        await engine.run()
        project = app.store.get_project(started.project.id)
        assert project is not None and project.paused
        assert "apt-get install bubblewrap" in project.pause_reason
        assert 'mode = "off"' in project.pause_reason
        assert list(outside.iterdir()) == []  # nothing ran unconfined
    finally:
        await app.aclose()
