"""One owner per goal, with real processes: two `blitz serve` daemons on one store, a daemon
frozen (SIGSTOP) past its lease while another takes its goal over, and a second daemon on one
data directory.

The daemons have data directories of their own (their worktrees, tokens and locks) and share one
store (``BLITZ_DATABASE_URL``), as two machines sharing a database would. The goal to take over
is left by a `blitz run` killed (SIGKILL) once its first task is on the goal branch, before the
store heard of it. Whatever happens, each
task must be committed once on the goal branch and recorded once in the store, and the two must
agree.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from databases import empty_database
from server_helpers import blitz, committed_tasks, git, make_repo, start, write_yaml

from blitz.domain import GOAL_DONE, AttemptState, Goal, GoalState, TaskState
from blitz.store.sql import SqlStore

# Several real processes each: give a loaded machine room beyond the default.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TASKS = ("alpha", "beta", "gamma", "delta")
PLAN: dict[str, Any] = {
    "summary": "Three files, then one that needs them all",
    "tasks": [
        {"id": "alpha", "title": "Write alpha", "priority": 3},
        {"id": "beta", "title": "Write beta", "priority": 2},
        {"id": "gamma", "title": "Write gamma", "priority": 1},
        {"id": "delta", "title": "Write delta", "depends_on": ["alpha", "beta", "gamma"]},
    ],
}
LEASE = "2"  # seconds: short, so a frozen daemon loses its goal soon


def agent(hold: Path) -> dict[str, Any]:
    """Every task writes its file, after waiting for ``hold`` to disappear."""
    wait = {"run": f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done"}
    return {
        "agent": {
            tid: [[wait, {"write": {"path": f"{tid}.txt", "content": f"{tid}\n"}}]] for tid in TASKS
        }
    }


class Daemon:
    """A `blitz serve` process on its own data directory and the shared store."""

    def __init__(self, home: Path, db: str, scenario: Path) -> None:
        self.proc = start(
            home, "serve", "--port", "0", "--grace", "5", "--scenario", scenario,
            BLITZ_DATABASE_URL=db, BLITZ_LEASE_SECONDS=LEASE,
        )  # fmt: skip
        self.lines: list[str] = []

    def ready(self) -> None:
        """Wait until it serves."""
        assert self.proc.stdout is not None
        while not any(line.startswith("token: ") for line in self.lines):
            line = self.proc.stdout.readline()
            if not line:
                out, err = self.proc.communicate(timeout=10)
                raise AssertionError(f"blitz serve ended: {self.lines} {out} {err}")
            self.lines.append(line.rstrip("\n"))

    @property
    def runner(self) -> str:
        return f"{self.proc.pid}@{socket.gethostname()}"

    def stop(self) -> tuple[int, str]:
        """SIGTERM; its exit code and what it logged."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.communicate(timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store on SQLite and, with BLITZ_TEST_POSTGRES_URL set, PostgreSQL."""
    return empty_database(request.param, tmp_path / "shared.db")


@pytest.fixture
def crashed(tmp_path: Path, hold_file: Path, database: str) -> tuple[Path, str, Path, Goal]:
    """A goal whose `blitz run` was killed once its first task was integrated: (repo, store URL,
    scenario, goal). The scenario's agents wait while ``hold_file`` exists (it does not yet)."""
    repo = make_repo(tmp_path, toml="max_parallel = 4\n")
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    scenario = write_yaml(tmp_path / "agent.yaml", agent(hold_file))
    ran = blitz(
        tmp_path / "run-home", "run", "Write four files", "--repo", repo, "--plan", plan,
        "--scenario", scenario, "--json",
        BLITZ_CRASH_AT="before_store_write", BLITZ_DATABASE_URL=database,
    )  # fmt: skip
    assert ran.returncode == -signal.SIGKILL, (ran.stdout, ran.stderr)
    [goal] = read(database, lambda store: store.list_goals())
    assert goal.state is GoalState.RUNNING
    assert len(committed_tasks(repo, goal.branch)) == 1
    return repo, database, scenario, goal


def read(db: str, what: Any) -> Any:
    store = SqlStore(db)
    try:
        return what(store)
    finally:
        store.close()


def wait_for(db: str, what: Any, why: str, limit: float = 120) -> Any:
    deadline = time.monotonic() + limit
    while True:
        found = read(db, what)
        if found:
            return found
        assert time.monotonic() < deadline, why
        time.sleep(0.1)


def _free(lease: Any) -> bool:
    return lease is None or not lease.owner


def resumed(db: str | SqlStore, goal_id: str) -> list[str]:
    """The messages of the goal's goal.resumed events ("resumed by <runner> from <state>")."""
    if isinstance(db, str):
        return read(db, lambda s: resumed(s, goal_id))  # type: ignore[no-any-return]
    return [e.message for e in db.events(goal_id=goal_id) if e.kind == "goal.resumed"]


def snapshot(goal_id: str) -> Any:
    """A reader of everything stored of a goal, and the length of the event log."""
    return lambda s: (
        s.get_goal(goal_id),
        s.load_tasks(goal_id),
        s.load_attempts(goal_id),
        len(s.events(limit=100_000)),
    )


def finished(db: str, goal_id: str) -> Goal:
    def done(store: SqlStore) -> Goal | None:
        goal = store.get_goal(goal_id)
        return goal if goal is not None and goal.state in GOAL_DONE else None

    goal: Goal = wait_for(db, done, f"goal {goal_id} never finished")
    return goal


def assert_store_and_branch_agree(repo: Path, db: str, goal_id: str) -> None:
    """The goal succeeded; each task committed once on its branch, recorded as succeeded with
    that commit by one attempt, and never started again after it succeeded."""
    goal, tasks, attempts, events = read(
        db,
        lambda s: (s.get_goal(goal_id), s.load_tasks(goal_id), s.load_attempts(goal_id),
                   s.events(goal_id=goal_id, limit=100_000)),
    )  # fmt: skip
    told = [f"{e.kind} {e.task_id or ''}: {e.message}" for e in events]
    tasks_told = [(t.id, t.state.value, t.reason) for t in tasks]
    assert goal.state is GoalState.SUCCEEDED, (goal.state, goal.error, tasks_told, told[-40:])
    assert Counter(committed_tasks(repo, goal.branch)) == Counter(dict.fromkeys(TASKS, 1))
    for task in tasks:
        assert task.state is TaskState.SUCCEEDED, task
        sha = git(repo, "log", "--format=%H", f"--grep=Blitz-Task: {task.id}", goal.branch)
        assert task.commit == sha.split()[0], task
    assert sorted(t.id for t in tasks) == sorted(TASKS)
    succeeded = Counter(a.task_id for a in attempts if a.state is AttemptState.SUCCEEDED)
    assert all(succeeded[tid] <= 1 for tid in TASKS), attempts
    assert not [a for a in attempts if a.state is AttemptState.RUNNING], attempts
    numbers = Counter((a.task_id, a.number) for a in attempts)
    assert all(n == 1 for n in numbers.values()), numbers  # no attempt number reused
    ended: set[str] = set()
    for event in events:
        if event.kind == "task.started":
            assert event.task_id not in ended, f"{event.task_id} started after it succeeded"
        if event.kind == "task.succeeded":
            assert event.task_id not in ended, f"{event.task_id} succeeded twice"
            ended.add(event.task_id)
    assert [e.kind for e in events].count("goal.succeeded") == 1


def test_two_daemons_started_at_once_drive_a_crashed_goal_once(
    tmp_path: Path, crashed: tuple[Path, str, Path, Goal]
) -> None:
    repo, db, scenario, goal = crashed
    first = Daemon(tmp_path / "home-1", db, scenario)
    second = Daemon(tmp_path / "home-2", db, scenario)
    try:
        first.ready()
        second.ready()
        finished(db, goal.id)
        assert_store_and_branch_agree(repo, db, goal.id)
        assert [r.partition(" from ")[0] for r in resumed(db, goal.id)] in (
            [f"resumed by {first.runner}"],
            [f"resumed by {second.runner}"],
        )
        for daemon in (first, second):
            code, err = daemon.stop()
            assert code == 0, err
            assert "Traceback" not in err
    finally:
        first.kill()
        second.kill()


def test_two_resumes_at_once_drive_a_crashed_goal_once(
    tmp_path: Path, crashed: tuple[Path, str, Path, Goal]
) -> None:
    repo, db, scenario, goal = crashed
    home = tmp_path / "run-home"
    procs = [start(home, "resume", "--scenario", scenario, BLITZ_DATABASE_URL=db) for _ in range(2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (out, err)
        assert "Traceback" not in out + err
        outputs.append(out)
    took = [out for out in outputs if f"resuming {goal.id}" in out]
    assert len(took) == 1, outputs
    assert_store_and_branch_agree(repo, db, goal.id)
    assert len(resumed(db, goal.id)) == 1


def test_a_daemon_frozen_past_its_lease_loses_its_goal_and_writes_nothing_more(
    tmp_path: Path, crashed: tuple[Path, str, Path, Goal], hold_file: Path
) -> None:
    repo, db, scenario, goal = crashed
    hold_file.touch()  # the agents of the resumed goal wait
    frozen = Daemon(tmp_path / "home-1", db, scenario)
    taker: Daemon | None = None
    try:
        frozen.ready()
        wait_for(db, lambda s: resumed(s, goal.id), "the first daemon did not resume the goal")
        assert resumed(db, goal.id)[0].startswith(f"resumed by {frozen.runner} ")
        running = lambda s: [t for t in s.load_tasks(goal.id) if t.state is TaskState.RUNNING]  # noqa: E731
        wait_for(db, running, "the resumed goal never started a task")
        # A second daemon on the store leaves the goal to its live owner...
        taker = Daemon(tmp_path / "home-2", db, scenario)
        taker.ready()
        assert len(resumed(db, goal.id)) == 1

        frozen.proc.send_signal(signal.SIGSTOP)
        # Its lease runs out (and the taker may claim the goal at once: either will do).
        lapsed = lambda s: (  # noqa: E731
            (lease := s.lease(goal.id)).owner != frozen.runner or lease.expires_at < time.time()
        )
        wait_for(db, lapsed, "the lease never ran out")
        hold_file.unlink()  # the frozen daemon's agents go on, but it cannot hear them
        # ... until its lease runs out: then it takes the goal over on its own.
        wait_for(db, lambda s: len(resumed(s, goal.id)) == 2, "the goal was not taken over")
        assert resumed(db, goal.id)[1].startswith(f"resumed by {taker.runner} ")
        lease = read(db, lambda s: s.lease(goal.id))
        assert (lease.owner, lease.epoch) == (taker.runner, 3)  # run, frozen daemon, taker
        frozen.proc.send_signal(signal.SIGCONT)  # it wakes up believing it drives the goal

        finished(db, goal.id)
        assert_store_and_branch_agree(repo, db, goal.id)
        # The daemon that was frozen found out and stopped: its shutdown writes nothing.
        before = read(db, snapshot(goal.id))
        code, err = frozen.stop()
        assert code == 0, err
        assert f"goal {goal.id} was taken over by another process" in err
        assert read(db, snapshot(goal.id)) == before
        assert_store_and_branch_agree(repo, db, goal.id)
        code, err = taker.stop()
        assert code == 0, err
    finally:
        frozen.kill()
        if taker is not None:
            taker.kill()


def test_a_second_daemon_on_one_data_directory_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    scenario = write_yaml(tmp_path / "agent.yaml", {"agent": {}})
    first = start(home, "serve", "--port", "0", "--scenario", scenario)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().startswith("blitz daemon listening on ")
        token = (home / "server-token.json").read_bytes()
        second = blitz(home, "serve", "--port", "0")
        assert second.returncode == 2, (second.stdout, second.stderr)
        assert f"another blitz daemon (pid {first.pid}@" in second.stderr
        assert str(home) in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None
        assert (home / "server-token.json").read_bytes() == token  # the refused one made none
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    # Once it is gone the data directory is free again.
    again = start(home, "serve", "--port", "0", "--scenario", scenario)
    try:
        assert again.stdout is not None
        assert again.stdout.readline().startswith("blitz daemon listening on ")
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)


def test_a_goal_whose_repository_is_gone_does_not_keep_the_daemon_from_serving(
    tmp_path: Path, crashed: tuple[Path, str, Path, Goal]
) -> None:
    """The goal waits (unfinished, its lease free for whoever can drive it) and the daemon
    serves; why it cannot be resumed is said once, not at every take-over turn."""
    repo, db, scenario, goal = crashed
    shutil.rmtree(repo)
    daemon = Daemon(tmp_path / "home", db, scenario)
    try:
        daemon.ready()
        time.sleep(3 * float(LEASE))  # several take-over turns (every half a lease)
        stored = read(db, lambda s: s.get_goal(goal.id))
        assert stored.state is GoalState.RUNNING, stored
        # Each take-over turn claims the lease and gives it back when the goal cannot resume:
        # between turns it is free (a turn under way, on a loaded machine, may hold it).
        wait_for(db, lambda s: _free(s.lease(goal.id)), "the lease free between turns", 30)
        code, err = daemon.stop()
        assert code == 0, err
        assert err.count(f"cannot resume goal {goal.id}") == 1, err
        assert "Traceback" not in err
    finally:
        daemon.kill()
