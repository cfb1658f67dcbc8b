"""Gate results shared by two ``blitz`` processes on one data directory: the second goal from
the same base commit, making the same tree, runs no gate, and says so in ``blitz events`` and
``blitz status``."""

from __future__ import annotations

import json
from pathlib import Path

from blitz_process import blitz, write_yaml

PLAN = {"summary": "Greet", "tasks": [{"id": "hello", "title": "Write hello"}]}
AGENT = {"agent": {"hello": [[{"write": {"path": "hello.txt", "content": "hello\n"}}]]}}


def _run(home: Path, repo: Path, tmp_path: Path, title: str) -> str:
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    scenario = write_yaml(tmp_path / "agent.yaml", AGENT)
    done = blitz(
        home, "run", title, "--repo", repo, "--plan", plan, "--scenario", scenario, "--json"
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    result = json.loads(done.stdout)
    assert result["state"] == "succeeded"
    return str(result["goal"])


def _messages(home: Path, goal_id: str, kind: str) -> list[str]:
    done = blitz(home, "events", goal_id, "--json", "--last", "0")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return [e["message"] for e in events if e["kind"] == kind]


def test_a_second_process_reuses_the_first_ones_gate_results(
    repo: Path, home: Path, tmp_path: Path
) -> None:
    first = _run(home, repo, tmp_path, "Greet once")
    second = _run(home, repo, tmp_path, "Greet twice")

    assert _messages(home, first, "validation.baseline") == ["base branch: all gates pass"]
    assert _messages(home, first, "validation.passed") == ["test: passed"]
    assert _messages(home, second, "validation.baseline") == [
        "base branch: all gates pass (reused)"
    ]
    assert _messages(home, second, "validation.passed") == ["test: passed (reused)"]
    assert "test: passed (reused)" in blitz(home, "events", second).stdout

    for goal_id, reused in ((first, []), (second, ["test"])):
        done = blitz(home, "status", goal_id, "--json")
        assert done.returncode == 0, done.stderr
        [attempt] = json.loads(done.stdout)["attempts"]
        assert attempt["reused_gates"] == reused
