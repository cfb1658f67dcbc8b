"""What the steering commands say, read as a newcomer would: ``blitz approve`` says who starts
the tasks now (the process that drives the goal, named), not a command that may not be running;
with nobody to start them it queues nothing and says where a goal can be approved; an edited
plan without a daemon says what to do instead."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz, git, start, write_yaml

pytestmark = pytest.mark.timeout(300)

SCENARIO: dict[str, Any] = {
    "summary": "One note.",
    "tasks": [{"id": "note", "title": "Write a note"}],
    "agent": {"note": [[{"write": {"path": "note.txt", "content": "note\n"}}]]},
}


def waiting_goal(home: Path, proc: Any, limit: float = 120) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate(timeout=5)
        goals = json.loads(blitz(home, "status", "--json").stdout or "[]")
        if goals and goals[0]["state"] == "awaiting_approval":
            return str(goals[0]["id"])
        time.sleep(0.2)
    raise AssertionError(f"no goal awaited approval within {limit}s")


def test_approve_names_the_process_that_starts_the_tasks(
    repo: Path, home: Path, tmp_path: Path
) -> None:
    toml = repo / "blitz.toml"
    toml.write_text(
        toml.read_text().replace("[project]\n", "[project]\nrequire_plan_approval = true\n")
    )
    git(repo, "commit", "-qam", "Plans wait for approval")
    scenario = write_yaml(tmp_path / "scenario.yaml", SCENARIO)
    proc = start(home, "run", "Write a note", "--repo", repo, "--scenario", scenario)
    try:
        goal = waiting_goal(home, proc)
        plan = write_yaml(tmp_path / "edited.yaml", {"tasks": [{"id": "x", "title": "X"}]})
        edited = blitz(home, "approve", goal, "--plan", plan)
        assert edited.returncode == 2
        assert "--plan needs --server" in edited.stderr  # a flag approve has, and why

        done = blitz(home, "approve", goal)
        assert done.returncode == 0, done.stderr
        said = done.stdout.strip()
        assert re.fullmatch(
            rf"goal {goal} approved; the process that drives it \(\S+\) starts its tasks", said
        ), said
        assert "blitz serve" not in said  # `blitz run` drives this one
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, (out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    again = blitz(home, "approve", goal)
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: goal {goal} is succeeded, not awaiting approval"


def test_approve_says_where_to_approve_when_no_process_drives_the_goal(
    repo: Path, home: Path, tmp_path: Path
) -> None:
    toml = repo / "blitz.toml"
    toml.write_text(
        toml.read_text().replace("[project]\n", "[project]\nrequire_plan_approval = true\n")
    )
    git(repo, "commit", "-qam", "Plans wait for approval")
    scenario = write_yaml(tmp_path / "scenario.yaml", SCENARIO)
    short = {"BLITZ_LEASE_SECONDS": "1"}  # a killed process's lease runs out at once
    proc = start(home, "run", "Write a note", "--repo", repo, "--scenario", scenario, **short)
    try:
        goal = waiting_goal(home, proc)
    finally:
        proc.kill()  # waiting for approval, it runs no agent: nothing of its own is left
        proc.communicate(timeout=10)
    with contextlib.closing(sqlite3.connect(home / "blitz.db")) as db:
        [(expires,)] = db.execute("SELECT expires_at FROM leases WHERE goal_id = ?", (goal,))
    time.sleep(max(0.0, expires - time.time()) + 0.1)  # the killed process's lease ran out

    done = blitz(home, "approve", goal)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: no process drives goal {goal} now (the one that planned it ended), and none "
        "takes up a goal that waits for approval by itself: approve it through a daemon, which "
        f"takes it on: `blitz serve`, then `blitz approve {goal} --server URL` (or its dashboard)"
    )
    (left,) = json.loads(blitz(home, "status", "--json").stdout)
    assert left["state"] == "awaiting_approval"  # nothing was queued for nobody
