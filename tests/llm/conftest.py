from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from blitz.testing.model_server import ModelServer

from . import DONE


@pytest.fixture
def fake() -> Iterator[ModelServer]:
    """The scripted model server, answering :data:`~tests.llm.DONE` to whatever is not scripted."""
    with ModelServer(fallback=DONE) as server:
        yield server


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A committed repository with a small app for a planner to read."""
    (git_repo / "src").mkdir()
    (git_repo / "src" / "app.py").write_text("def handle(request):\n    return 'ok'\n")
    (git_repo / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    for args in (["add", "-A"], ["commit", "-q", "-m", "Add the app"]):
        subprocess.run(["git", *args], cwd=git_repo, check=True, capture_output=True, timeout=30)
    return git_repo
