"""Fixtures of the command-line tests: a BLITZ_HOME of the test's own, and a repository with a
quick passing test gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from blitz_process import add_test_gate, git


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A committed repository with a quick passing test gate in blitz.toml."""
    add_test_gate(git_repo, '[project]\nbase_branch = "main"\n')
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "Add tests and blitz.toml")
    return git_repo
