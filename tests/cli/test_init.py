"""``blitz init`` on sample repositories, through the installed console script: the gates and the
environment set-up it detects land in a blitz.toml that loads."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from blitz_process import blitz, git

from blitz.config import load_repo_config, setup_of
from blitz.envsetup import DEFAULT_INPUTS, SetupSpec


def _commit(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Sample project")


def test_init_detects_the_setup_of_a_node_project(git_repo: Path, home: Path) -> None:
    package = {"name": "web", "version": "1.0.0", "scripts": {"test": "vitest run"}}
    _commit(
        git_repo,
        {
            "package.json": json.dumps(package),
            "package-lock.json": json.dumps({"lockfileVersion": 3}),
            ".gitignore": "node_modules/\n",
        },
    )
    done = blitz(home, "init", git_repo)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "setup: npm ci" in done.stdout and "keep: node_modules" in done.stdout

    cfg = load_repo_config(git_repo)
    assert cfg is not None
    assert setup_of(cfg) == SetupSpec(
        command="npm ci", inputs=DEFAULT_INPUTS, keep=("node_modules",)
    )
    assert cfg.gates.test == "npm test"


def test_init_detects_the_setup_of_a_python_project_with_uv(git_repo: Path, home: Path) -> None:
    _commit(
        git_repo,
        {
            "pyproject.toml": '[project]\nname = "app"\n[tool.pytest.ini_options]\n',
            "uv.lock": "version = 1\n",
        },
    )
    done = blitz(home, "init", git_repo)
    assert done.returncode == 0, (done.stdout, done.stderr)
    # .venv is not ignored in this repository: init says so.
    assert ".venv is not in .gitignore" in done.stdout

    written = tomllib.loads((git_repo / "blitz.toml").read_text())
    assert written["workspace"]["setup"] == "uv sync --frozen"
    assert written["workspace"]["keep"] == [".venv"]
    assert "uv.lock" in written["workspace"]["setup_inputs"]
    assert written["gates"]["test"] == "uv run pytest -q"
