"""Fixtures shared by the backend tests: a real worktree and the real codex CLI, installed once
per session. Agent CLIs written as scripts are in ``agent_clis.py``."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from blitz.backends.install import install_codex


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


@pytest.fixture(scope="session")
def tools_dir() -> Path:
    """Where the real codex CLI is installed, once per session (npm; a failure fails the test)."""
    configured = os.environ.get("BLITZ_TEST_TOOLS_DIR", "")
    directory = Path(configured) if configured else Path.home() / ".cache" / "blitz-test-tools"
    asyncio.run(install_codex(directory.expanduser().resolve()))
    return directory.expanduser().resolve()
