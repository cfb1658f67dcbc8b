"""Gate results shared by two ``blitz`` processes on one data directory: the second goal from
the same base commit, making the same tree, runs no gate, and says so in ``blitz events`` and
``blitz status``."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from blitz_process import TIMEOUT, blitz, git, start, write_yaml

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


def test_two_processes_started_at_once_run_the_baseline_once(
    git_repo: Path, home: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    # Slow enough that the two baselines overlap; unconfined so that it can count its runs.
    gate = f"echo ran >> {shlex.quote(str(counter))}; sleep 1"
    (git_repo / "blitz.toml").write_text(
        f'[gates]\ntest = {json.dumps(gate)}\ntimeout = 60\n\n[sandbox]\nmode = "off"\n'
    )
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "Add blitz.toml")
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    scenario = write_yaml(tmp_path / "agent.yaml", AGENT)
    # Registered first, so the two processes do not race to register the project.
    assert blitz(home, "projects", "add", git_repo).returncode == 0
    runs = [
        start(home, "run", title, "--repo", git_repo, "--plan", plan, "--scenario", scenario)
        for title in ("Greet once", "Greet twice")
    ]
    for proc in runs:
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, (out, err)

    # One run on the base commit, one on the tree both agents made.
    assert len(counter.read_text().splitlines()) == 2
