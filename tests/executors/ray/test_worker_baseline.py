"""A worker node judges an attempt's gates against its own baseline of the daemon's base commit,
kept on the node (blitz.executors.ray.baselines): a gate that fails on the node before any task
(a tool the daemon's machine has and this one lacks) is not blamed on the task, and the next
attempt from the same base commit runs no gate on it again. The worker's own code
(``remote.work``, what the Ray task runs) in this process, with real git, real gates in
bubblewrap and the scripted agent; the node's data directory is a temporary one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import git, write

from blitz.domain import Attempt, Baseline, GateResult, Gates, Goal, Project, Task
from blitz.executors.base import Outcome
from blitz.executors.ray import remote, sync
from blitz.executors.ray.baselines import FileGateCache
from blitz.executors.ray.resources import WORKER_HOME_ENV
from blitz.gatecache import GateKey
from blitz.git import Git
from blitz.testing.scripted import Scenario

GATE = "test ! -e tools-missing"
"""Fails where the node lacks the tool: here, on the base commit, which has the marker file."""


def job(repo: Path, base: str, number: int, baseline: Baseline) -> remote.Job:
    project = Project(id="p-1", name="p", path=str(repo), gates=Gates(test=GATE))
    goal = Goal(id="g-1", project_id=project.id, title="goal", branch="blitz/g-1", base_sha=base)
    task = Task(id=f"t{number}", goal_id=goal.id, title="write a file")
    attempt = Attempt(id=f"a-{number}", goal_id=goal.id, task_id=task.id, number=1)
    return remote.Job(
        project=project,
        goal=goal,
        task=task,
        attempt=attempt,
        base=base,
        backend="scripted",
        baseline=baseline,
        scenario=Scenario(agent={task.id: ((write(f"t{number}.txt", f"{number}\n"),),)}),
        timeout=120,
    )


@pytest.mark.usefixtures("bubblewrap")
async def test_a_worker_judges_against_its_own_baseline_and_keeps_it(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (git_repo / "tools-missing").write_text("this node lacks the tool the gate needs\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "base")
    base = git(git_repo, "rev-parse", "HEAD")
    node = tmp_path / "node"
    monkeypatch.setenv(WORKER_HOME_ENV, str(node))
    # The daemon's baseline of the same commit: the gate passed on its machine.
    passed = GateResult(name="test", command=GATE, passed=True, exit_code=0, duration=0.1)
    daemons = Baseline(goal_id="g-1", sha=base, results=(passed,))
    git(git_repo, "branch", "blitz/g-1", base)  # the goal branch, as the daemon sends it
    data = await sync.bundle(Git(git_repo), "refs/heads/blitz/g-1", base, [])
    sent: list[Any] = []

    first = await remote.work(job(git_repo, base, 1, daemons), data, sent.append)

    # The gate fails on this node on the base commit and after the task alike: not the task's.
    assert first.report.outcome is Outcome.SUCCEEDED, first.report.error
    [gate] = first.report.attempt.gates
    assert not gate.passed and gate.preexisting
    assert first.baseline is not None and first.baseline.sha == base
    [own] = first.baseline.results
    assert not own.passed and not own.reused
    kept = [json.loads(p.read_text()) for p in sorted((node / "gates").glob("*.json"))]
    assert {k["result"]["passed"] for k in kept} == {False}

    second = await remote.work(job(git_repo, base, 2, daemons), None, sent.append)

    assert second.report.outcome is Outcome.SUCCEEDED, second.report.error
    assert second.baseline is not None
    [again] = second.baseline.results
    assert again.reused and not again.passed  # kept on the node: no gate ran on the base


def test_a_kept_gate_result_survives_a_new_process_and_a_damaged_file_is_ignored(
    tmp_path: Path,
) -> None:
    key = GateKey(project_id="p-1", tree="abc", command="pytest", timeout=600.0)
    result = GateResult(
        name="test",
        command="pytest",
        passed=False,
        exit_code=1,
        duration=2.5,
        output_tail="FAILED test_x.py::test_y",
        new_failures=("test_x.py::test_y",),
    )
    FileGateCache(tmp_path).put(key, result)
    assert FileGateCache(tmp_path).get(key) == result
    other = GateKey(project_id="p-2", tree="abc", command="pytest", timeout=600.0)
    assert FileGateCache(tmp_path).get(other) is None
    not_run = GateResult(name="test", command="pytest", passed=False, exit_code=None, duration=0)
    FileGateCache(tmp_path).put(other, not_run)  # says nothing about the tree: not kept
    assert FileGateCache(tmp_path).get(other) is None
    (tmp_path / f"{key.digest}.json").write_text('{"key": ')
    assert FileGateCache(tmp_path).get(key) is None
