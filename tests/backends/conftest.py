"""Fixtures shared by the backend tests: a real worktree (the real codex CLI is installed once per
session by ``tools_dir`` in the suite's conftest)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def worktree(git_repo: Path) -> Path:
    """A real git worktree of ``git_repo`` on its own branch, as the engine makes for a task."""
    path = git_repo.parent / "wt"
    subprocess.run(
        ["git", "worktree", "add", "-q", "-b", "blitz/t1", str(path)],
        cwd=git_repo,
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path
