"""Shared pieces for end-to-end engine tests: real repositories, an :class:`App` on a fresh home,
and readers for what a run left behind (goal branch commits, events, worktrees).

Imported by the test modules (``from engine_helpers import ...``); the ``isolated_git`` fixture
must be requested (or imported into the module) to keep git away from the machine's config.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from blitz.app import App
from blitz.clock import Clock
from blitz.conductor import Engine
from blitz.domain import Goal, Plan, Project, TaskState
from blitz.events import Event
from blitz.pool import in_use
from blitz.settings import Settings
from blitz.testing.scripted import Scenario

PYTHON = shlex.quote(sys.executable)
UNITTEST = f"{PYTHON} -m unittest discover -s tests -t . -q"

# The calculator repository the engine and agent-CLI tests start from, with UNITTEST as its gate,
# and the multiply module with its test that the agents add to it.
CALC = {
    "calc/__init__.py": "",
    "calc/core.py": "def add(a, b):\n    return a + b\n",
    "tests/__init__.py": "",
    "tests/test_core.py": (
        "import unittest\n\nfrom calc.core import add\n\n\n"
        "class AddTest(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n"
    ),
}
MUL = "def mul(a, b):\n    return a * b\n"
MUL_TEST = (
    "import unittest\n\nfrom calc.mul import mul\n\n\n"
    "class MulTest(unittest.TestCase):\n"
    "    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n"
)
"""A test gate for repositories laid out like the demo (``tests/`` package next to the code)."""
SHELL_GATE = {"test": "test -f README.md", "timeout": 60}
"""A gate that passes while README.md is there."""
NO_BUG_GATE = {"test": "! grep -q bug value.txt", "timeout": 60}
"""Passes on the base commit (value.txt says "start"), fails once a task writes "bug" into it."""

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.test",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.test",
}


@pytest.fixture
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git without the machine's global or system config, with a fixed identity."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run git for a test's own setup and inspection; fails the test on an error (unless not
    ``check``: then its output, whatever it exited with)."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return str(value)


def make_repo(
    root: Path,
    *,
    name: str = "repo",
    files: Mapping[str, str] | None = None,
    gates: Mapping[str, object] | None = None,
    limits: Mapping[str, object] | None = None,
    breaker: Mapping[str, object] | None = None,
    budget: Mapping[str, object] | None = None,
    max_parallel: int = 4,
    project: Mapping[str, object] | None = None,
    sections: Mapping[str, Mapping[str, object]] | None = None,
) -> Path:
    """A repository at ``root/name`` with ``files`` and a blitz.toml, committed on ``main``.

    The project uses the scripted backend and has no ``origin`` remote unless a test adds one.
    """
    repo = root / name
    repo.mkdir(parents=True)
    for rel, text in {"README.md": f"# {name}\n", **(files or {})}.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    sections = {
        "project": {"name": name, "base_branch": "main", "backend": "scripted",
                    "max_parallel": max_parallel, **(project or {})},
        "gates": dict(gates or {}),
        "limits": dict(limits or {}),
        "breaker": dict(breaker or {}),
        "budget": dict(budget or {}),
        **{k: dict(v) for k, v in (sections or {}).items()},
    }  # fmt: skip
    toml = "".join(
        f"[{section}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()) + "\n"
        for section, values in sections.items()
        if values
    )
    (repo / "blitz.toml").write_text(toml)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial commit")
    return repo


MakeApp = Callable[..., App]
"""The ``apps`` fixture (tests/conftest.py): ``apps(scenario, home="home", **settings)``."""


def write(path: str, content: str) -> dict[str, Any]:
    """A scripted agent action writing ``path``."""
    return {"write": {"path": path, "content": content}}


def task(id: str, *depends_on: str, **extra: Any) -> dict[str, Any]:
    """A plan task in the scenario format."""
    return {"id": id, "title": f"Do {id}", "depends_on": list(depends_on), **extra}


async def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting"
        await asyncio.sleep(0.02)


def make_app(
    home: Path, scenario: Mapping[str, Any], *, clock: Clock | None = None, **settings: Any
) -> App:
    """An app on its own home, following ``scenario`` (the scripted planner and backend), on
    ``clock`` (the system's by default)."""
    return App(
        Settings(home=home, **settings), scenario=Scenario.from_data(dict(scenario)), clock=clock
    )


@dataclass
class Started:
    project: Project
    goal: Goal


async def start_goal(
    app: App,
    engine: Engine,
    repo: Path,
    title: str = "Do the work",
    *,
    plan: Plan | None = None,
    allow_dirty: bool = False,
) -> Started:
    project = await app.register(repo)
    goal = await app.new_goal(project, title, allow_dirty=allow_dirty)
    engine.start(project, goal, plan=plan)
    return Started(project, goal)


async def run_one(
    app: App, repo: Path, title: str = "Do the work", **kwargs: Any
) -> tuple[Started, Goal]:
    """Register ``repo``, start one goal in a fresh engine and run it to the end."""
    engine = app.engine()
    started = await start_goal(app, engine, repo, title, **kwargs)
    finished = await engine.run()
    return started, finished[started.goal.id]


# -- reading what a run left behind ------------------------------------------------------------


@dataclass(frozen=True)
class BranchCommit:
    sha: str
    subject: str
    goals: tuple[str, ...]
    tasks: tuple[str, ...]


def branch_commits(repo: Path, branch: str, base: str = "main") -> list[BranchCommit]:
    """The commits on ``branch`` not on ``base``, oldest first, with their blitz trailers."""
    fmt = (
        "%H%x00%s%x00%(trailers:key=Blitz-Goal,valueonly,separator=%x01)"
        "%x00%(trailers:key=Blitz-Task,valueonly,separator=%x01)%x1e"
    )
    out = git(repo, "log", "--reverse", f"--format={fmt}", f"{base}..refs/heads/{branch}")
    commits = []
    for record in out.split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        sha, subject, goals, tasks = record.split("\x00")
        commits.append(
            BranchCommit(
                sha=sha,
                subject=subject,
                goals=tuple(g for g in goals.strip().split("\x01") if g),
                tasks=tuple(t for t in tasks.strip().split("\x01") if t),
            )
        )
    return commits


def kinds(events: list[Event]) -> list[str]:
    return [str(e.kind) for e in events]


def of_kind(events: list[Event], kind: str, task_id: str | None = None) -> list[Event]:
    return [e for e in events if e.kind == kind and (task_id is None or e.task_id == task_id)]


def first_index(events: list[Event], kind: str, task_id: str | None = None) -> int:
    for i, e in enumerate(events):
        if e.kind == kind and (task_id is None or e.task_id == task_id):
            return i
    raise AssertionError(f"no {kind} event" + (f" for {task_id}" if task_id else ""))


def last_index(events: list[Event], kind: str, task_id: str | None = None) -> int:
    found = [
        i
        for i, e in enumerate(events)
        if e.kind == kind and (task_id is None or e.task_id == task_id)
    ]
    if not found:
        raise AssertionError(f"no {kind} event" + (f" for {task_id}" if task_id else ""))
    return found[-1]


def leftover_worktrees(home: Path) -> list[Path]:
    """Worktree directories still on disk under ``home`` but the free ones of the warm pool
    (those outlive attempts by design): busy pooled ones, temporary ones, any other."""
    root = home / "worktrees"
    if not root.exists():
        return []
    return [
        child
        for repo_dir in root.iterdir()
        if repo_dir.is_dir() and not repo_dir.name.endswith(".pool")
        for child in repo_dir.iterdir()
        if in_use(child)
    ]


def registered_worktrees(repo: Path) -> list[str]:
    """Worktrees git still knows for ``repo`` besides the checkout itself and the free ones of
    the warm pool."""
    listing = git(repo, "worktree", "list", "--porcelain")
    paths = [
        line.removeprefix("worktree ")
        for line in listing.splitlines()
        if line.startswith("worktree ")
    ]
    return [p for p in paths if Path(p).resolve() != repo.resolve() and in_use(Path(p))]


def snapshot(tree: Path) -> dict[str, bytes]:
    """Every file under ``tree`` except ``.git``, as bytes: a checkout's exact state."""
    return {
        str(path.relative_to(tree)): path.read_bytes()
        for path in sorted(tree.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(tree).parts
    }


def sleeping_processes(marker: str) -> list[int]:
    """Pids whose command line is exactly ``sleep <marker>``."""
    wanted = f"sleep\0{marker}\0".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "cmdline").read_bytes() == wanted:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def assert_engine_invariants(app: App, repo: Path, goal: Goal) -> None:
    """What must hold after any run, whatever happened in it.

    * nothing is succeeded without a recorded passing validation (when the project has gates);
    * a succeeded task's commit is on the goal branch with its trailers; no task is committed
      twice and nothing else is committed;
    * no worktree is left, on disk or in git's registry.
    """
    project = app.store.get_project(goal.project_id)
    assert project is not None
    tasks = app.store.load_tasks(goal.id)
    attempts = app.store.load_attempts(goal.id)
    gated = bool(project.gates.configured())
    for task in tasks:
        if task.state is not TaskState.SUCCEEDED:
            continue
        passing = [
            a
            for a in attempts
            if a.task_id == task.id
            and a.state == "succeeded"
            and (not gated or (a.gates and all(g.passed or g.preexisting for g in a.gates)))
        ]
        assert passing, f"task {task.id} succeeded without a recorded passing validation"
    if goal.branch:
        commits = branch_commits(repo, goal.branch)
        committed = [t for c in commits for t in c.tasks]
        assert len(committed) == len(set(committed)), f"a task committed twice: {committed}"
        assert all(c.goals == (goal.id,) and len(c.tasks) == 1 for c in commits), commits
        by_task = {c.tasks[0]: c.sha for c in commits}
        expected = {t.id: t.commit for t in tasks if t.state is TaskState.SUCCEEDED and t.commit}
        assert by_task == expected
    assert leftover_worktrees(app.settings.home) == []
    assert registered_worktrees(repo) == []


def goal_events(app: App, goal_id: str) -> list[Event]:
    """Every event of a goal, oldest first."""
    return app.store.events(goal_id=goal_id, limit=100_000)
