"""``blitz resume`` after a real ``blitz run`` was killed (SIGKILL) with work in flight:

* a task had failed and its recovery was being planned, so no recovery was recorded: resume
  asks the planner for it again (a scripted model server on 127.0.0.1 sees the second request)
  and the goal goes on with its answer;
* best-of-N candidates were running, or the winner had just been integrated when the store had
  not yet heard: resume finishes the task with one commit on the goal branch, and every
  candidate is accounted for (recorded, its work kept under its ref).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz, git, goals_in, start, write_yaml
from engine_helpers import branch_commits, make_repo

from blitz.domain import Attempt, AttemptState, Goal, Recovery, Task, TaskState
from blitz.llm.planner import PLAN_TOOL, RECOVERY_TOOL
from blitz.store.sql import SqlStore
from blitz.testing.model_server import ModelServer

pytestmark = [pytest.mark.usefixtures("isolated_git"), pytest.mark.slow, pytest.mark.timeout(300)]

KEY = "test-key-not-real-resume"
MODEL = "anthropic:claude-sonnet-4-6"
PLANNING = "You plan software work"  # only in the planner's system prompt
RECOVERING = "Find the root cause"  # only in the recovery planner's
GATE = {"test": "! grep -q bug value.txt", "timeout": 60}
ATTEMPT_REFS = "refs/blitz/attempts"


@dataclass(frozen=True)
class Stored:
    goal: Goal
    tasks: dict[str, Task]
    attempts: list[Attempt]
    recoveries: list[Recovery]


def stored(home: Path) -> Stored:
    """The home's one goal as its store has it, read directly (the process may be alive)."""
    (goal_id,) = goals_in(home)
    store = SqlStore(f"sqlite:///{home / 'blitz.db'}")
    try:
        goal = store.get_goal(goal_id)
        assert goal is not None
        return Stored(
            goal=goal,
            tasks={t.id: t for t in store.load_tasks(goal_id)},
            attempts=store.load_attempts(goal_id),
            recoveries=store.load_recoveries(goal_id),
        )
    finally:
        store.close()


def wait_for(condition: Any, proc: subprocess.Popen[str], what: str, limit: float = 90) -> None:
    """Poll ``condition`` while ``proc`` (which must stay alive) runs."""
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, proc.communicate(timeout=10)
        assert time.monotonic() < deadline, f"{what}: not within {limit}s"
        time.sleep(0.05)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def ref_commits(repo: Path, goal_id: str) -> dict[str, str]:
    out = git(
        repo, "for-each-ref", "--format=%(refname) %(objectname)", f"{ATTEMPT_REFS}/{goal_id}/"
    )
    return dict(line.split() for line in out.splitlines())


# -- a recovery that was never recorded ----------------------------------------------------------


def recovery(root_cause: str, **reply: Any) -> dict[str, Any]:
    answer = {"root_cause": root_cause, "action": "retry", "guidance": "write fine, not bug"}
    return {"match": RECOVERING, "reply": {"tool_calls": [tool(RECOVERY_TOOL, answer)], **reply}}


def tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "input": arguments}


@pytest.fixture
def server() -> Iterator[ModelServer]:
    plan = {
        "summary": "Fix the value.",
        "tasks": [{"id": "fix", "title": "Fix the value", "instructions": "Fix value.txt."}],
    }
    turns = [
        {"match": PLANNING, "reply": {"tool_calls": [tool(PLAN_TOOL, plan)]}},
        # The killed run's request is held until the process is gone; the resume's is answered.
        recovery("never delivered", delay=600),
        recovery("it wrote bug"),
    ]
    with ModelServer(turns, api_key=KEY) as running:
        yield running


def test_resume_plans_the_recovery_a_killed_run_never_recorded(
    tmp_path: Path, server: ModelServer
) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=GATE)
    scenario = write_yaml(
        tmp_path / "scenario.yaml",
        {"agent": {"fix": [[{"write": {"path": "value.txt", "content": "bug\n"}}],
                           [{"write": {"path": "value.txt", "content": "fine\n"}}]]}},
    )  # fmt: skip
    home = tmp_path / "home"
    env = {
        "ANTHROPIC_BASE_URL": server.anthropic_base_url,
        "ANTHROPIC_API_KEY": KEY,
        "BLITZ_PLANNER_MODEL": MODEL,
    }

    def failed(home: Path) -> bool:
        task = stored(home).tasks.get("fix") if goals_in(home) else None
        return task is not None and task.state is TaskState.FAILED

    def asked_to_recover() -> int:
        return sum(RECOVERING in r.text for r in server.requests)

    proc = start(home, "run", "Fix the value", "--repo", repo, "--scenario", scenario, **env)
    try:
        # The task failed and is recorded so; its recovery is being asked for, not yet answered.
        wait_for(lambda: asked_to_recover() == 1, proc, "recovery planning")
        wait_for(lambda: failed(home), proc, "the failed task in the store")
    finally:
        kill(proc)
    at_kill = stored(home)
    assert at_kill.recoveries == []
    assert [a.state for a in at_kill.attempts] == [AttemptState.FAILED]

    done = blitz(home, "resume", "--scenario", scenario, "--json", **env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert json.loads(done.stdout)["state"] == "succeeded"

    # Resume asked the planner again, and went on with its answer.
    assert asked_to_recover() == 2
    after = stored(home)
    (recorded,) = after.recoveries
    assert (recorded.task_id, recorded.attempt_id) == ("fix", at_kill.attempts[0].id)
    assert recorded.root_cause == "it wrote bug"
    assert after.tasks["fix"].state is TaskState.SUCCEEDED
    assert [a.state for a in after.attempts] == [AttemptState.FAILED, AttemptState.SUCCEEDED]
    assert [c.tasks for c in branch_commits(repo, after.goal.branch)] == [("fix",)]
    assert git(repo, "show", f"{after.goal.branch}:value.txt") == "fine\n"


# -- best-of-N candidates in flight ----------------------------------------------------------------


def explore(repo: Path, scenario: Path) -> list[str]:
    """``blitz run`` arguments: best of 2 for every task."""
    return ["run", "Fix the value", "--repo", str(repo), "--scenario", str(scenario),
            "--explore", "2", "--json"]  # fmt: skip


def candidates_scenario(tmp_path: Path, name: str, first: list[Any]) -> Path:
    return write_yaml(
        tmp_path / name,
        {
            "tasks": [{"id": "fix", "title": "Fix the value"}],
            "agent": {
                "fix#1": [[*first, {"write": {"path": "value.txt", "content": "one\n"}}]],
                "fix#2": [[{"write": {"path": "value.txt", "content": "two, longer\n"}}]],
            },
        },
    )


def assert_finished_once(home: Path, repo: Path) -> Stored:
    """The resumed goal succeeded with one commit for the task, the store's, which is the
    selected candidate's; every recorded candidate ended, and each kept commit is a candidate's."""
    after = stored(home)
    assert after.goal.state == "succeeded", after.goal
    task = after.tasks["fix"]
    assert task.state is TaskState.SUCCEEDED
    commits = branch_commits(repo, after.goal.branch)
    assert [c.tasks for c in commits] == [("fix",)]
    assert task.commit == commits[0].sha
    assert all(a.state is not AttemptState.RUNNING for a in after.attempts), after.attempts
    refs = ref_commits(repo, after.goal.id)
    assert set(refs) == {a.ref for a in after.attempts if a.ref}
    return after


def test_resume_after_a_kill_while_candidates_run(tmp_path: Path, hold_file: Path) -> None:
    hold_file.touch()
    wait = {"run": f"while [ -e {hold_file} ]; do sleep 0.05; done"}
    held = candidates_scenario(tmp_path, "held.yaml", [wait])
    quick = candidates_scenario(tmp_path, "quick.yaml", [])
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=GATE)
    home = tmp_path / "home"

    proc = start(home, *explore(repo, held))
    try:
        # Candidate 2 has finished and kept its work; candidate 1 is still inside its agent; the
        # store has both as running.
        def kept_one() -> bool:
            if not goals_in(home):
                return False
            now = stored(home)
            running = [a for a in now.attempts if a.state is AttemptState.RUNNING]
            return len(running) == 2 and bool(ref_commits(repo, now.goal.id))

        wait_for(kept_one, proc, "a kept candidate")
    finally:
        kill(proc)
        hold_file.unlink()  # lets the orphaned agent command end
    at_kill = stored(home)
    first_round = {a.id: a for a in at_kill.attempts}
    assert sorted(a.candidate for a in first_round.values()) == [1, 2]
    assert all(a.state is AttemptState.RUNNING for a in first_round.values())
    (kept_ref,) = ref_commits(repo, at_kill.goal.id)
    assert kept_ref.rsplit("/", 1)[1] in first_round  # candidate 2's, kept before the kill

    done = blitz(home, "resume", "--scenario", quick, "--json")
    assert done.returncode == 0, (done.stdout, done.stderr)

    after = assert_finished_once(home, repo)
    by_id = {a.id: a for a in after.attempts}
    # The interrupted round is recorded as interrupted, not lost; its kept work is still there.
    for attempt_id in first_round:
        assert by_id[attempt_id].state is AttemptState.CRASHED
        assert "interrupted" in by_id[attempt_id].error
    assert kept_ref in ref_commits(repo, after.goal.id)
    # The task was explored again in full: two new candidates, one selected, each with a verdict.
    second = [a for a in after.attempts if a.id not in first_round]
    assert sorted(a.candidate for a in second) == [1, 2]
    assert all(a.verdict and a.ref for a in second), second
    (winner,) = [a for a in after.attempts if a.selected]
    assert winner in second and winner.commit == after.tasks["fix"].commit


def test_resume_after_the_winner_landed_but_the_store_never_heard(tmp_path: Path) -> None:
    scenario = candidates_scenario(tmp_path, "scenario.yaml", [])
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=GATE)
    home = tmp_path / "home"

    crashed = blitz(home, *explore(repo, scenario), BLITZ_CRASH_AT="before_store_write")
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout, crashed.stderr)
    at_kill = stored(home)
    on_branch = branch_commits(repo, at_kill.goal.branch)
    assert [c.tasks for c in on_branch] == [("fix",)]  # integrated ...
    assert at_kill.tasks["fix"].state is TaskState.RUNNING  # ... and the store never heard
    kept = ref_commits(repo, at_kill.goal.id)
    assert len(kept) == 2  # both candidates had offered their work

    done = blitz(home, "resume", "--scenario", scenario, "--json")
    assert done.returncode == 0, (done.stdout, done.stderr)

    after = assert_finished_once(home, repo)
    # The commit that landed is the task's: not made again, no candidate run again.
    assert after.tasks["fix"].commit == on_branch[0].sha
    assert after.tasks["fix"].attempts == 1
    assert {a.id for a in after.attempts} == {a.id for a in at_kill.attempts}
    assert ref_commits(repo, after.goal.id) == kept
    # The candidate whose kept commit landed is recorded as the winner; the other as
    # interrupted, its work still under its ref.
    (winner,) = [a for a in after.attempts if a.selected]
    assert winner.state is AttemptState.SUCCEEDED and kept[winner.ref] == on_branch[0].sha
    (other,) = [a for a in after.attempts if not a.selected]
    assert other.state is AttemptState.CRASHED and other.ref in kept
