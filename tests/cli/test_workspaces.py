"""The warm worktree pool through real ``blitz`` processes: what a crashed attempt left, and what
an attempt killed with ``kill -9`` was writing, never reaches the next attempt in that worktree;
``blitz workspaces`` lists the pool and ``blitz workspaces prune`` empties it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from blitz_process import TIMEOUT, add_test_gate, blitz, git, start, write_yaml

PLAN = {
    "summary": "Two files, one after the other.",
    "tasks": [
        {"id": "alpha", "title": "Write alpha"},
        {"id": "beta", "title": "Write beta", "depends_on": ["alpha"]},
    ],
}

# What an agent may leave behind: a tracked file changed, an untracked file, an ignored one.
MESS = [
    {"replace": {"path": "README.md", "old": "# demo", "new": "# vandalised"}},
    {"write": {"path": "junk.txt", "content": "left behind\n"}},
    {"write": {"path": "build/cache.o", "content": "ignored, left behind\n"}},
]
ALPHA = [{"write": {"path": "alpha.txt", "content": "alpha\n"}}]
BETA = [{"write": {"path": "beta.txt", "content": "beta\n"}}]


@pytest.fixture
def project(git_repo: Path) -> Path:
    """A repository with a test gate, one task at a time (a pool of 1 + 2 spare worktrees)."""
    (git_repo / ".gitignore").write_text("build/\n")
    add_test_gate(git_repo, '[project]\nbase_branch = "main"\nmax_parallel = 1\n')
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "Add tests and blitz.toml")
    return git_repo


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout


def events(home: Path) -> list[dict[str, Any]]:
    out = ok(blitz(home, "events", "--json", "--last", "0"))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def worktrees_of(home: Path) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(ok(blitz(home, "workspaces", "--json")))
    return listed


def assert_clean_history(repo: Path, branch: str) -> None:
    """Nothing an earlier attempt left is in the goal's commits, and main did not move."""
    files = git(repo, "ls-tree", "-r", "--name-only", branch).split()
    assert "junk.txt" not in files and "build/cache.o" not in files
    assert "alpha.txt" in files and "beta.txt" in files
    assert git(repo, "show", f"{branch}:README.md") == "# demo\n"


def test_a_crashed_attempts_leftovers_never_reach_the_next_one_and_prune_empties_the_pool(
    project: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    agent = {"alpha": [[*MESS, {"crash": "the agent process died"}], ALPHA], "beta": [BETA]}
    scenario = write_yaml(tmp_path / "agent.yaml", {"agent": agent})
    run = ("run", "Two files", "--repo", project, "--plan", plan, "--scenario", scenario)
    result = json.loads(ok(blitz(home, *run, "--json")))
    assert result["state"] == "succeeded", result
    assert_clean_history(project, result["branch"])
    ready = [e for e in events(home) if e["kind"] == "workspace.ready" and "name" in e["data"]]
    # The baseline, alpha's crashed attempt, alpha again, beta: all in the one warm worktree,
    # reused after the first.
    assert [e["data"]["name"] for e in ready] == ["pool-1"] * 4
    assert [e["data"]["reused"] for e in ready] == [False, True, True, True]
    detail = json.loads(ok(blitz(home, "status", result["goal"], "--json")))
    alpha = sorted((a["number"], a["state"]) for a in detail["attempts"] if a["task"] == "alpha")
    assert alpha == [(1, "crashed"), (2, "succeeded")]
    assert len({e["data"]["worktree"] for e in ready}) == 1

    listed = worktrees_of(home)
    assert [(w["name"], w["kind"], w["busy"]) for w in listed] == [("pool-1", "pooled", False)]
    table = ok(blitz(home, "workspaces"))
    assert "pool-1" in table and "free" in table

    pruned = json.loads(ok(blitz(home, "workspaces", "prune", "--json")))
    assert pruned == [{"project": project.name, "removed": ["pool-1"], "busy": []}]
    assert worktrees_of(home) == []
    assert git(project, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert "removed 0 worktrees" in ok(blitz(home, "workspaces", "prune"))


def test_kill_9_mid_attempt_then_resume_resets_the_worktree_it_was_writing(
    project: Path, tmp_path: Path, hold_file: Path
) -> None:
    home = tmp_path / "home"
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    hold_file.touch()
    waiting = {"run": f"while [ -e {hold_file} ]; do sleep 0.05; done"}
    slow = {"agent": {"alpha": [[*MESS, waiting, *ALPHA]], "beta": [BETA]}}
    scenario = write_yaml(tmp_path / "slow.yaml", slow)
    proc = start(
        home, "run", "Two files", "--repo", project, "--plan", plan, "--scenario", scenario
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        pooled = home / "worktrees"
        while not list(pooled.glob("*/pool-*/junk.txt")):
            assert proc.poll() is None, proc.communicate(timeout=5)
            assert time.monotonic() < deadline, "the agent never wrote"
            time.sleep(0.05)
        busy = worktrees_of(home)
        assert [(w["name"], w["busy"]) for w in busy] == [("pool-1", True)]
        assert "attempt" in busy[0]["holder"] and "alpha" in busy[0]["holder"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=TIMEOUT)
        hold_file.unlink()
    assert proc.returncode == -signal.SIGKILL
    # The kernel let go of the dead process's claim; its mess is still on disk.
    assert [(w["name"], w["busy"]) for w in worktrees_of(home)] == [("pool-1", False)]
    assert next(pooled.glob("*/pool-1/junk.txt")).is_file()

    quick = write_yaml(tmp_path / "quick.yaml", {"agent": {"alpha": [ALPHA], "beta": [BETA]}})
    resumed = json.loads(ok(blitz(home, "resume", "--scenario", quick, "--json")))
    goal = resumed[0] if isinstance(resumed, list) else resumed
    assert goal["state"] == "succeeded", goal
    assert_clean_history(project, goal["branch"])
    ready = [e for e in events(home) if e["kind"] == "workspace.ready" and "name" in e["data"]]
    # After the kill: reset (never trusted), not made anew, and clean (the history says so).
    assert ready[-2]["data"] == {**ready[-2]["data"], "name": "pool-1", "reused": True}
    assert not list(pooled.glob("*/pool-*/junk.txt"))
