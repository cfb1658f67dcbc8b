"""Kill -9 a real ``blitz run`` process at named points, then ``blitz resume`` it.

These tests start the installed ``blitz`` console script as a separate process, so the kill is a
real SIGKILL: nothing in the dying process gets to clean up or flush. After the resume the goal
must have succeeded with every task committed exactly once on the goal branch, the branch pushed,
no worktree left behind, the user's checkout untouched, and no finished work done again.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_helpers import leftover_worktrees, registered_worktrees

from blitz.pool import SPARE

BLITZ = str(Path(sys.executable).with_name("blitz"))
TIMEOUT = 90  # seconds any one blitz command may take before the test fails

# Several real processes each: give a loaded machine room beyond the default 120 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TASKS = ("alpha", "beta", "gamma", "delta")
TEST_GATE = f"{shlex.quote(sys.executable)} -m unittest discover -s tests -t . -q"

SCENARIO: dict[str, Any] = {
    "summary": "Three independent files, then one that needs them all.",
    "tasks": [
        {"id": "alpha", "title": "Write alpha", "priority": 3},
        {"id": "beta", "title": "Write beta", "priority": 2},
        {"id": "gamma", "title": "Write gamma", "priority": 1},
        {"id": "delta", "title": "Write delta", "depends_on": ["alpha", "beta", "gamma"]},
    ],
    "agent": {
        "alpha": [
            [
                {"write": {"path": "alpha.txt", "content": "alpha\n"}},
                {
                    "write": {
                        "path": "tests/test_alpha.py",
                        "content": "import unittest\n\n\nclass AlphaTest(unittest.TestCase):\n"
                        "    def test_alpha(self) -> None:\n        self.assertTrue(True)\n",
                    }
                },
            ]
        ],
        "beta": [[{"sleep": 0.4}, {"write": {"path": "beta.txt", "content": "beta\n"}}]],
        "gamma": [[{"sleep": 0.8}, {"write": {"path": "gamma.txt", "content": "gamma\n"}}]],
        "delta": [[{"write": {"path": "delta.txt", "content": "delta\n"}}]],
    },
}


# -- helpers ---------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def blitz_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a blitz process: this test's home, no inherited BLITZ_* settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BLITZ_") and k not in ("GITHUB_TOKEN", "COLUMNS")
    }
    env["BLITZ_HOME"] = str(home)
    env.update(extra)
    return env


def blitz(
    home: Path, *args: str, timeout: float = TIMEOUT, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BLITZ, *args],
        env=blitz_env(home, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def blitz_json(home: Path, *args: str) -> Any:
    done = blitz(home, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def events_of(home: Path, goal_id: str = "") -> list[dict[str, Any]]:
    done = blitz(home, "events", *([goal_id] if goal_id else []), "--json", "--last", "0")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def make_project(
    root: Path, scenario: dict[str, Any], *, gate_prefix: str = ""
) -> tuple[Path, Path, Path]:
    """A repository with a quick test gate and a bare ``origin``; returns (repo, remote, scenario).

    ``gate_prefix`` is a shell command run before the tests in the gate.
    """
    repo = root / "repo"
    (repo / "tests").mkdir(parents=True, exist_ok=True)
    (repo / "tests" / "__init__.py").write_text("")
    (repo / "tests" / "test_base.py").write_text(
        "import unittest\n\n\nclass BaseTest(unittest.TestCase):\n"
        "    def test_base(self) -> None:\n        self.assertEqual(1 + 1, 2)\n"
    )
    (repo / "blitz.toml").write_text(
        '[project]\nbase_branch = "main"\nremote = "origin"\nmax_parallel = 4\n\n'
        f"[gates]\ntest = {json.dumps(gate_prefix + TEST_GATE)}\n"
        "timeout = 60\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add tests and blitz.toml")
    remote = root / "origin.git"
    git(root, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    path = root / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return repo, remote, path


def task_commits(repo: Path, base: str, branch: str) -> Counter[str]:
    """How many commits on ``base..branch`` carry each ``Blitz-Task`` trailer."""
    out = git(
        repo,
        "log",
        "--format=%(trailers:key=Blitz-Task,valueonly,separator=%x2C)",
        f"{base}..{branch}",
    )
    return Counter(t for line in out.splitlines() for t in line.split(",") if t)


def checkout_state(repo: Path) -> tuple[str, str, str]:
    """What the user sees: the checked-out branch, main's head and ``git status``."""
    return (
        git(repo, "symbolic-ref", "HEAD").strip(),
        git(repo, "rev-parse", "refs/heads/main").strip(),
        git(repo, "status", "--porcelain", "--untracked-files=all"),
    )


def the_goal(home: Path) -> dict[str, Any]:
    goals = blitz_json(home, "status", "--json")
    assert len(goals) == 1, goals
    return blitz_json(home, "status", goals[0]["id"], "--json")


def assert_resumed_cleanly(
    home: Path, repo: Path, remote: Path, before: tuple[str, str, str]
) -> dict[str, Any]:
    """The invariants every resumed goal must meet; returns its final status."""
    goal = the_goal(home)
    assert goal["state"] == "succeeded", goal
    tasks = {t["id"]: t for t in goal["tasks"]}
    assert set(tasks) == set(TASKS)
    assert all(t["state"] == "succeeded" for t in tasks.values()), tasks
    branch = goal["branch"]
    counts = task_commits(repo, "main", branch)
    assert counts == Counter(dict.fromkeys(TASKS, 1)), counts
    for tid, task in tasks.items():
        sha = git(
            repo, "log", "--format=%H", f"--grep=Blitz-Task: {tid}", f"main..{branch}"
        ).split()
        assert task["commit"] == sha[0]
    for name in ("alpha.txt", "beta.txt", "gamma.txt", "delta.txt"):
        git(repo, "cat-file", "-e", f"{branch}:{name}")
    # Pushed, and the remote has exactly what the goal branch has.
    ours = git(repo, "rev-parse", f"refs/heads/{branch}").strip()
    theirs = git(remote, "rev-parse", f"refs/heads/{branch}").strip()
    assert ours == theirs
    # No worktree left but the warm pool's, free and bounded (reset when next taken): git knows
    # no other, and no attempt directory remains.
    assert registered_worktrees(repo) == []
    assert leftover_worktrees(home) == []
    assert len(list((home / "worktrees").glob("*/pool-*"))) <= 4 + SPARE  # max_parallel + spare
    # The user's checkout and main are untouched.
    assert checkout_state(repo) == before
    return goal


def wait_for_event(home: Path, kind: str, proc: subprocess.Popen[str], limit: float = 60) -> None:
    """Poll ``blitz events --json`` until an event of ``kind`` appears (the run must stay alive)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if any(e["kind"] == kind for e in events_of(home)):
            return
        assert proc.poll() is None, proc.communicate(timeout=5)
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event within {limit}s")


def start_run(home: Path, repo: Path, scenario: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            BLITZ,
            "run",
            "Write four files",
            "--repo",
            str(repo),
            "--scenario",
            str(scenario),
            "--json",
        ],
        env=blitz_env(home, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise


# -- kill at each fault point, then resume ---------------------------------------------------------


@pytest.mark.parametrize(
    "point", ["after_agent", "after_commit", "before_store_write", "after_push"]
)
def test_kill_at_a_fault_point_then_resume(git_repo: Path, tmp_path: Path, point: str) -> None:
    home = tmp_path / "home"
    repo, remote, scenario = make_project(tmp_path, SCENARIO)
    before = checkout_state(repo)

    crashed = blitz(
        home, "run", "Write four files", "--repo", str(repo), "--scenario", str(scenario), "--json",
        BLITZ_CRASH_AT=point,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout, crashed.stderr)

    # What was done when the process died: tasks the store saw succeed, and tasks whose commit
    # reached the goal branch (the store may not have heard of it: before_store_write).
    at_kill = the_goal(home)
    assert at_kill["state"] in ("running", "finishing"), at_kill
    branch = at_kill["branch"]
    on_branch = task_commits(repo, "main", branch)
    assert all(n == 1 for n in on_branch.values()), on_branch
    done_at_kill = {t["id"]: t for t in at_kill["tasks"] if t["state"] == "succeeded"}
    lost_writes = {tid for tid in on_branch if tid not in done_at_kill}
    if point == "before_store_write":
        # The point of this fault: a task integrated but the store never heard.
        assert lost_writes, (on_branch, at_kill["tasks"])
    if point == "after_push":
        assert set(done_at_kill) == set(TASKS)
        assert at_kill["state"] == "finishing"
        assert git(remote, "rev-parse", f"refs/heads/{branch}").strip()
    if point == "after_agent":
        assert not on_branch

    resumed = blitz(home, "resume", "--scenario", str(scenario), "--json")
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    assert "Traceback" not in resumed.stdout + resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "succeeded"

    goal = assert_resumed_cleanly(home, repo, remote, before)
    tasks = {t["id"]: t for t in goal["tasks"]}
    # Finished work was not done again: same commit, one attempt.
    for tid, task in done_at_kill.items():
        assert tasks[tid]["attempts"] == 1, (tid, tasks[tid])
        assert tasks[tid]["commit"] == task["commit"]
    for tid in on_branch:
        assert tasks[tid]["attempts"] == 1, (tid, tasks[tid])
        sha = git(
            repo, "log", "--format=%H", f"--grep=Blitz-Task: {tid}", f"main..{branch}"
        ).split()
        assert tasks[tid]["commit"] == sha[0]
    # A task reconciled from its trailer ran one attempt only, and the resume said so.
    reconciled = [
        e
        for e in events_of(home, goal["id"])
        if e["kind"] == "task.succeeded" and "found its commit" in e["message"]
    ]
    assert {e["task"] for e in reconciled} >= lost_writes
    attempts_per_task = Counter(a["task"] for a in goal["attempts"])
    for tid in lost_writes:
        assert attempts_per_task[tid] == 1, goal["attempts"]
    # The attempt that made each task's commit is recorded as succeeded with that commit, even
    # when the kill came before the store heard of it.
    for tid, task in tasks.items():
        last = [a for a in goal["attempts"] if a["task"] == tid][-1]
        assert (last["state"], last["commit"]) == ("succeeded", task["commit"]), last
    kinds = [e["kind"] for e in events_of(home, goal["id"])]
    assert "goal.resumed" in kinds
    assert kinds.count("goal.succeeded") == 1


def test_kill_while_a_task_runs_then_resume(git_repo: Path, tmp_path: Path) -> None:
    """SIGKILL from outside while the first tasks are still inside their agent."""
    scenario_data = json.loads(json.dumps(SCENARIO))
    scenario_data["agent"]["alpha"][0].insert(0, {"sleep": 30})
    scenario_data["agent"]["beta"][0][0] = {"sleep": 30}
    scenario_data["agent"]["gamma"][0][0] = {"sleep": 30}
    home = tmp_path / "home"
    repo, remote, scenario = make_project(tmp_path, scenario_data)
    before = checkout_state(repo)

    proc = start_run(home, repo, scenario)
    try:
        wait_for_event(home, "task.started", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        finish(proc)
    assert proc.returncode == -signal.SIGKILL
    at_kill = the_goal(home)
    assert at_kill["state"] == "running"
    assert any(t["state"] == "running" for t in at_kill["tasks"])

    # Resume with the quick scenario: the interrupted attempts are re-queued and run again.
    quick = tmp_path / "quick.yaml"
    quick.write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    resumed = blitz(home, "resume", "--scenario", str(quick), "--json")
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    goal = assert_resumed_cleanly(home, repo, remote, before)
    interrupted = [a for a in goal["attempts"] if a["state"] == "crashed"]
    assert interrupted, goal["attempts"]
    assert all("interrupted" in a["error"] for a in interrupted)


def test_kill_while_planning_then_resume(hold_file: Path, git_repo: Path, tmp_path: Path) -> None:
    """SIGKILL while the baseline gates run on the base branch, before any task exists."""
    hold = hold_file
    hold.touch()
    home = tmp_path / "home"
    wait = f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done; "
    repo, remote, scenario = make_project(tmp_path, SCENARIO, gate_prefix=wait)
    before = checkout_state(repo)

    proc = start_run(home, repo, scenario)
    try:
        wait_for_event(home, "workspace.ready", proc)  # the baseline's worktree: gates next
    finally:
        proc.send_signal(signal.SIGKILL)
        hold.unlink()  # lets the orphaned gate process end
        finish(proc)
    assert proc.returncode == -signal.SIGKILL
    at_kill = the_goal(home)
    assert at_kill["state"] == "planning"
    assert at_kill["tasks"] == []

    resumed = blitz(home, "resume", "--scenario", str(scenario), "--json")
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    goal = assert_resumed_cleanly(home, repo, remote, before)
    assert all(t["attempts"] == 1 for t in goal["tasks"])


def test_resume_with_nothing_unfinished(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = blitz(home, "resume")
    assert done.returncode == 0, done.stderr
    assert "nothing to resume" in done.stdout
    done = blitz(home, "resume", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"resumed": []}


def test_resume_after_a_finished_goal_has_nothing_to_do(git_repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo, remote, scenario = make_project(tmp_path, SCENARIO)
    ran = blitz(
        home, "run", "Write four files", "--repo", str(repo), "--scenario", str(scenario), "--json"
    )
    assert ran.returncode == 0, ran.stderr
    branch = json.loads(ran.stdout)["branch"]
    head = git(remote, "rev-parse", f"refs/heads/{branch}")
    done = blitz(home, "resume", "--scenario", str(scenario))
    assert done.returncode == 0, done.stderr
    assert "nothing to resume" in done.stdout
    assert "still running" not in done.stdout
    assert task_commits(repo, "main", branch) == Counter(dict.fromkeys(TASKS, 1))
    assert git(remote, "rev-parse", f"refs/heads/{branch}") == head


def test_resume_leaves_a_live_run_alone(hold_file: Path, git_repo: Path, tmp_path: Path) -> None:
    # alpha's agent waits until the test removes the hold file, so the run is surely alive.
    hold = hold_file
    hold.touch()
    scenario_data = json.loads(json.dumps(SCENARIO))
    scenario_data["agent"]["alpha"][0].insert(
        0, {"run": f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done"}
    )
    home = tmp_path / "home"
    repo, remote, scenario = make_project(tmp_path, scenario_data)
    before = checkout_state(repo)

    proc = start_run(home, repo, scenario)
    try:
        wait_for_event(home, "task.started", proc)
        resumed = blitz(home, "resume", "--scenario", str(scenario))
        assert resumed.returncode == 0, resumed.stderr
        assert "nothing to resume" in resumed.stdout
        assert "still running" in resumed.stdout
        resumed = blitz(home, "resume", "--scenario", str(scenario), "--json")
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout) == {"resumed": []}
        assert proc.poll() is None
        hold.unlink()
        out, err = finish(proc)
    finally:
        hold.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert json.loads(out)["state"] == "succeeded"
    goal = assert_resumed_cleanly(home, repo, remote, before)
    kinds = [e["kind"] for e in events_of(home, goal["id"])]
    assert "goal.resumed" not in kinds
    assert all(t["attempts"] == 1 for t in goal["tasks"])
