"""``blitz`` as a user runs it: the installed console script in a process of its own, on its own
home, and the committed repositories it is pointed at. Shared by the CLI, daemon and dashboard
tests (``from blitz_process import ...``)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from blitz.store.sql import SqlStore

BLITZ = str(Path(sys.executable).with_name("blitz"))
TIMEOUT = 90  # seconds any one blitz command may take before the test fails
TEST_GATE = f"{shlex.quote(sys.executable)} -m unittest discover -s tests -t . -q"
"""A quick passing test gate for repositories made by :func:`add_test_gate`."""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def add_test_gate(repo: Path, toml: str) -> None:
    """Write a ``tests`` package with one passing test, and ``toml`` (the repository's
    blitz.toml) followed by a [gates] section running it."""
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "__init__.py").write_text("")
    (repo / "tests" / "test_base.py").write_text(
        "import unittest\n\n\nclass BaseTest(unittest.TestCase):\n"
        "    def test_base(self) -> None:\n        self.assertTrue(True)\n"
    )
    (repo / "blitz.toml").write_text(
        toml + f"\n[gates]\ntest = {json.dumps(TEST_GATE)}\ntimeout = 60\n"
    )


def blitz_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLITZ_")}
    env.pop("GITHUB_TOKEN", None)
    env.update(BLITZ_HOME=str(home), COLUMNS="300", **extra)  # Rich would wrap at 80 columns
    return env


def blitz(
    home: Path, *args: str | Path, timeout: float = TIMEOUT, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BLITZ, *map(str, args)],
        env=blitz_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(home: Path, *args: str | Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [BLITZ, *map(str, args)],
        env=blitz_env(home, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def path_without_bubblewrap(root: Path) -> str:
    """A PATH of one directory under ``root`` linking every program of this machine but bwrap
    (to see what blitz says where the sandbox cannot start)."""
    bin_dir = root / "bin-without-bwrap"
    bin_dir.mkdir(parents=True)
    for directory in os.environ["PATH"].split(os.pathsep):
        if os.path.isdir(directory):
            for name in os.listdir(directory):
                link = bin_dir / name
                if name != "bwrap" and not link.exists() and not link.is_symlink():
                    link.symlink_to(Path(directory) / name)
    return str(bin_dir)


def goals_in(home: Path) -> list[str]:
    """The goals in a home's store, read directly (cheaper than another process)."""
    if not (home / "blitz.db").exists():
        return []
    store = SqlStore(f"sqlite:///{home / 'blitz.db'}")
    try:
        return [g.id for g in store.list_goals()]
    finally:
        store.close()
