"""``blitz run --explore N --portfolio a,b`` spreads the best-of-N candidates of a task over the
named backends: a real ``blitz`` process, the scripted backend and a ``[backends.NAME]`` command
backend, each leaving its own work under its candidate's ref."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from blitz_process import blitz, git, write_yaml
from engine_helpers import branch_commits, make_repo

from blitz.domain import AttemptState
from blitz.store.sql import SqlStore

pytestmark = pytest.mark.usefixtures("isolated_git")

SCENARIO = {
    "tasks": [{"id": "fix", "title": "Fix the value"}],
    # Every scripted candidate follows the task's own script; the command backend ignores it.
    "agent": {"fix": [[{"write": {"path": "value.txt", "content": "by scripted\n"}}]]},
}
COMMAND = ["sh", "-c", "printf 'by cmd\\n' > value.txt"]


def test_the_portfolio_spreads_the_candidates_over_its_backends_in_turn(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        files={"value.txt": "start\n"},
        sections={"backends.cmd": {"command": COMMAND}},
    )
    scenario = write_yaml(tmp_path / "scenario.yaml", SCENARIO)
    home = tmp_path / "home"
    done = blitz(
        home, "run", "Fix the value", "--repo", repo, "--scenario", scenario, "--json",
        "--explore", "3", "--portfolio", "scripted,cmd",
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    result = json.loads(done.stdout)
    assert result["state"] == "succeeded", result

    store = SqlStore(f"sqlite:///{home / 'blitz.db'}")
    try:
        goal = store.get_goal(result["goal"])
        assert goal is not None and goal.portfolio == ("scripted", "cmd")
        attempts = store.load_attempts(goal.id, "fix")
    finally:
        store.close()
    # Three candidates over two backends: the first, the second, then the first again.
    by_candidate = {a.candidate: a for a in attempts}
    assert sorted(by_candidate) == [1, 2, 3]
    assert {c: a.backend for c, a in by_candidate.items()} == {
        1: "scripted",
        2: "cmd",
        3: "scripted",
    }
    # Each candidate's work is its own backend's: the label is not all that differs.
    for attempt in attempts:
        assert attempt.ref, attempt
        made = git(repo, "show", f"{attempt.ref}:value.txt")
        assert made == f"by {attempt.backend}\n", (attempt.candidate, made)
    # One winner, integrated once; it is one of them, whichever backend it ran on.
    (winner,) = [a for a in attempts if a.selected]
    assert winner.state is AttemptState.SUCCEEDED
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("fix",)]
    assert git(repo, "show", f"{goal.branch}:value.txt") == f"by {winner.backend}\n"
