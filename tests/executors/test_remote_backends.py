"""Which machine's agent CLIs and keys decide whether a goal's backend can run: the daemon's own
when attempts run in it (the local executor), the workers' when they run on a cluster (a worker
advertises only the backends it can run there, and a task no worker can take waits for one)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import make_repo, task, write

from blitz import executors
from blitz.domain import GoalState
from blitz.errors import ConfigError
from blitz.settings import ExecutorSettings

SCENARIO = {"summary": "one", "tasks": [task("t")], "agent": {"t": [[write("t.txt", "t\n")]]}}


@pytest.fixture
def no_codex_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no codex CLI: PATH holds git alone, the app's tools directory is empty."""
    only_git = tmp_path / "bin"
    only_git.mkdir()
    git = shutil.which("git")
    assert git is not None
    (only_git / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(only_git))


async def test_a_backend_missing_here_is_refused_when_attempts_run_here(
    apps: Any, tmp_path: Path, no_codex_here: None
) -> None:
    app = apps(SCENARIO)
    assert executors.runs_here(app.executor)
    project = await app.register(make_repo(tmp_path))
    with pytest.raises(ConfigError, match="codex CLI is not installed"):
        await app.new_goal(project, "with codex", backend="codex")
    assert app.store.list_goals() == []  # nothing written


async def test_a_backend_missing_here_is_left_to_the_workers_when_attempts_run_on_a_cluster(
    apps: Any, tmp_path: Path, no_codex_here: None
) -> None:
    # The cluster is never reached here: the executor connects only when an attempt runs.
    app = apps(SCENARIO, executor=ExecutorSettings(name="ray", address="127.0.0.1:1"))
    assert not executors.runs_here(app.executor)
    project = await app.register(make_repo(tmp_path))
    goal = await app.new_goal(project, "with codex", backend="codex")
    assert goal.state is GoalState.PLANNING and goal.backend == "codex"
    # A name no backend has is still refused at once, cluster or not.
    with pytest.raises(ConfigError, match="unknown backend"):
        await app.new_goal(project, "with nothing", backend="no-such-agent")
