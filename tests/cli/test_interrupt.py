"""Ctrl-C during ``blitz run``: a real process gets SIGINT while its agent works; it records
the goal as interrupted, says how to continue it, exits 130, and ``blitz resume`` finishes it."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from blitz_process import BLITZ, blitz, blitz_env, git, write_yaml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCENARIO: dict[str, Any] = {
    "summary": "One note.",
    "tasks": [{"id": "note", "title": "Write a note"}],
    "agent": {"note": [[{"write": {"path": "note.txt", "content": "note\n"}}]]},
}


def start_interruptible(home: Path, *args: str | Path) -> subprocess.Popen[str]:
    """``blitz`` in a process of its own that takes SIGINT as a terminal's Ctrl-C (a test run
    in the background may have inherited SIGINT ignored)."""
    return subprocess.Popen(
        [BLITZ, *map(str, args)],
        env=blitz_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_task(home: Path, proc: subprocess.Popen[str], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate(timeout=5)
        done = blitz(home, "events", "--json", "--last", "0")
        if any(json.loads(line)["kind"] == "task.started" for line in done.stdout.splitlines()):
            return
        time.sleep(0.1)
    raise AssertionError(f"no task started within {limit}s")


def test_ctrl_c_marks_the_goal_interrupted_says_how_to_resume_and_exits_130(
    repo: Path, home: Path, tmp_path: Path, hold_file: Path
) -> None:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    hold_file.touch()
    slow = json.loads(json.dumps(SCENARIO))
    wait = f"while [ -e {shlex.quote(str(hold_file))} ]; do sleep 0.05; done"
    slow["agent"]["note"][0].insert(0, {"run": wait})
    scenario = write_yaml(tmp_path / "slow.yaml", slow)

    proc = start_interruptible(home, "run", "Write a note", "--repo", repo, "--scenario", scenario)
    try:
        wait_for_task(home, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        hold_file.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)

    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    (goal,) = json.loads(blitz(home, "status", "--json").stdout)
    assert f"goal {goal['id']} interrupted: continue it with `blitz resume`" in err
    assert goal["state"] == "running"
    assert "interrupted" in blitz(home, "status").stdout
    log = blitz(home, "events", goal["id"], "--json", "--last", "0").stdout
    assert "goal.interrupted" in [json.loads(line)["kind"] for line in log.splitlines()]

    quick = write_yaml(tmp_path / "quick.yaml", SCENARIO)
    resumed = blitz(home, "resume", "--scenario", quick, "--json")
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    final = json.loads(blitz(home, "status", goal["id"], "--json").stdout)
    assert final["state"] == "succeeded" and final["error"] == ""
    assert [t["state"] for t in final["tasks"]] == ["succeeded"]
    branch = final["branch"]
    assert git(bare, "rev-parse", f"refs/heads/{branch}") == git(repo, "rev-parse", branch)
