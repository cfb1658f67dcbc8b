"""Fixtures shared by the backend tests: a real worktree (the real codex CLI is installed once per
session by ``tools_dir`` in the suite's conftest), and one holding a committed ``textutil.py``
with its test (the finish review's and the finish gates' tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from embedded_helpers import SHOUT, SHOUT_TEST
from engine_helpers import git


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


@pytest.fixture
def textutil(worktree: Path) -> Path:
    """The worktree with ``textutil.py`` (shout) and ``test_textutil.py`` committed."""
    (worktree / "textutil.py").write_text(SHOUT)
    (worktree / "test_textutil.py").write_text(SHOUT_TEST)
    git(worktree, "add", ".")
    git(worktree, "commit", "-qm", "textutil")
    return worktree
