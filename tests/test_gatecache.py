"""Gate results are never computed twice: kept by (project, tree, command, timeout, set-up
inputs), in the store, reused across worktrees, goals and processes, and judged again against
each baseline. Real git worktrees, real commands, a real SQLite store."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from pathlib import Path

from engine_helpers import git

from blitz.domain import Baseline, GateResult, Gates
from blitz.gatecache import GateFlights, GateKey, MemoryGateCache
from blitz.store.sql import SqlStore, sqlite_url
from blitz.validation import Validator, summarize, verdict


def _worktree(repo: Path, name: str, ref: str = "main") -> Path:
    path = repo.parent / name
    git(repo, "worktree", "add", "-q", "--detach", str(path), ref)
    return path


def _counting(counter: Path, then: str = "true") -> str:
    """A gate that notes each run in ``counter`` (outside every worktree), then runs ``then``."""
    return f"echo ran >> {shlex.quote(str(counter))}; {then}"


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


async def test_a_result_on_the_same_tree_is_reused_in_another_worktree(
    git_repo: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    cache = MemoryGateCache()
    validator = Validator(Gates(test=_counting(counter)), cache=cache, project_id="p1")

    (first,) = await validator.run_gates(_worktree(git_repo, "a"))
    (second,) = await validator.run_gates(_worktree(git_repo, "b"))

    assert _runs(counter) == 1
    assert first.passed and not first.reused
    assert second.passed and second.reused
    assert second.output_tail == first.output_tail
    assert summarize([second]) == "test: passed (reused)"


async def test_a_different_tree_command_environment_or_project_runs_again(
    git_repo: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    cache = MemoryGateCache()
    gates = Gates(test=_counting(counter))
    worktree = _worktree(git_repo, "a")
    await Validator(gates, cache=cache, project_id="p1").run_gates(worktree)

    # An untracked file is part of the tree the gate sees.
    (worktree / "new.py").write_text("x = 1\n")
    await Validator(gates, cache=cache, project_id="p1").run_gates(worktree)
    assert _runs(counter) == 2
    # ...but an ignored one is not (the set-up's inputs digest covers installed dependencies).
    (worktree / ".gitignore").write_text("build/\n")
    await Validator(gates, cache=cache, project_id="p1").run_gates(worktree)
    (worktree / "build").mkdir()
    (worktree / "build" / "out.o").write_text("object")
    (result,) = await Validator(gates, cache=cache, project_id="p1").run_gates(worktree)
    assert _runs(counter) == 3 and result.reused

    await Validator(gates, cache=cache, project_id="p1").run_gates(worktree, env_digest="lock2")
    await Validator(gates, cache=cache, project_id="p2").run_gates(worktree)
    longer = Gates(test=gates.test, timeout=gates.timeout + 1)
    await Validator(longer, cache=cache, project_id="p1").run_gates(worktree)
    other = Gates(test=_counting(counter, "true # another command"))
    await Validator(other, cache=cache, project_id="p1").run_gates(worktree)
    assert _runs(counter) == 7


async def test_reuse_false_runs_every_gate_every_time(git_repo: Path, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    cache = MemoryGateCache()
    validator = Validator(Gates(test=_counting(counter), reuse=False), cache=cache)
    worktree = _worktree(git_repo, "a")

    results = [await validator.run_gates(worktree) for _ in range(2)]

    assert _runs(counter) == 2
    assert not any(r.reused for run in results for r in run)
    assert cache.results == {}


async def test_timed_out_results_are_not_kept(git_repo: Path, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    cache = MemoryGateCache()
    validator = Validator(Gates(test=_counting(counter, "sleep 30"), timeout=0.5), cache=cache)
    worktree = _worktree(git_repo, "a")

    for _ in range(2):
        (result,) = await validator.run_gates(worktree)
        assert result.timed_out and not result.reused

    assert _runs(counter) == 2
    assert cache.results == {}


PYTEST_TWO_FAILURES = (
    "echo 'FAILED tests/test_a.py::test_old - x'; echo 'FAILED tests/test_a.py::test_new - y'; "
    "exit 1"
)


async def test_a_kept_failure_is_judged_again_against_each_baseline(
    git_repo: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    cache = MemoryGateCache()
    gates = Gates(test=_counting(counter, PYTEST_TWO_FAILURES))
    validator = Validator(gates, cache=cache, project_id="p1")
    old_failure = GateResult(
        name="test",
        command=gates.test,
        passed=False,
        exit_code=1,
        duration=1.0,
        new_failures=("tests/test_a.py::test_old",),
    )
    baseline = Baseline(goal_id="g1", sha="0" * 40, results=(old_failure,))

    (unjudged,) = await validator.run_gates(_worktree(git_repo, "a"))
    (judged,) = await validator.run_gates(_worktree(git_repo, "b"), baseline=baseline)
    (again,) = await validator.run_gates(_worktree(git_repo, "c"))

    assert _runs(counter) == 1
    assert unjudged.new_failures == ("tests/test_a.py::test_new", "tests/test_a.py::test_old")
    assert judged.reused and judged.new_failures == ("tests/test_a.py::test_new",)
    assert not verdict([judged])
    line = summarize([judged])
    assert line == "test: FAILED (exit 1, 1 new failure: tests/test_a.py::test_new) (reused)"
    assert again.new_failures == unjudged.new_failures and not again.preexisting


async def test_gates_in_order_rerun_the_earlier_ones_a_later_one_may_need(
    git_repo: Path, tmp_path: Path
) -> None:
    # The test gate may use the build's output, so a test that must run brings its build with it;
    # a build that must run does not make a kept lint after it run again.
    builds, lints, tests = tmp_path / "builds", tmp_path / "lints", tmp_path / "tests"
    cache = MemoryGateCache()
    worktree = _worktree(git_repo, "a")
    first = Gates(build=_counting(builds), test=_counting(tests))
    await Validator(first, cache=cache).run_gates(worktree)

    changed_test = Gates(build=first.build, test=_counting(tests, "true # v2"))
    build, test = await Validator(changed_test, cache=cache).run_gates(worktree)
    assert (_runs(builds), _runs(tests)) == (2, 2)
    assert not build.reused and not test.reused

    with_lint = Gates(build=_counting(builds, "true # v2"), lint=_counting(lints))
    await Validator(Gates(lint=with_lint.lint), cache=cache).run_gates(worktree)
    build, lint = await Validator(with_lint, cache=cache).run_gates(worktree)
    assert (_runs(builds), _runs(lints)) == (3, 1)
    assert not build.reused and lint.reused


async def test_parallel_gates_reuse_each_kept_result(git_repo: Path, tmp_path: Path) -> None:
    builds, tests = tmp_path / "builds", tmp_path / "tests"
    cache = MemoryGateCache()
    worktree = _worktree(git_repo, "a")
    await Validator(Gates(build=_counting(builds)), cache=cache).run_gates(worktree)

    gates = Gates(build=_counting(builds), test=_counting(tests), parallel=True)
    build, test = await Validator(gates, cache=cache).run_gates(worktree)

    assert (_runs(builds), _runs(tests)) == (1, 1)
    assert build.reused and not test.reused


async def test_results_kept_in_the_store_outlive_the_process(
    git_repo: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    url = sqlite_url(tmp_path / "blitz.db")
    gates = Gates(test=_counting(counter, "echo the output; exit 3"))
    store = SqlStore(url)
    try:
        (first,) = await Validator(gates, cache=store.gate_results, project_id="p1").run_gates(
            _worktree(git_repo, "a")
        )
    finally:
        store.close()

    store = SqlStore(url)  # as a restarted process would open it
    try:
        validator = Validator(gates, cache=store.gate_results, project_id="p1")
        (second,) = await validator.run_gates(_worktree(git_repo, "b"))
        store.gate_results.forget("p1")
        (third,) = await validator.run_gates(_worktree(git_repo, "c"))
    finally:
        store.close()

    assert _runs(counter) == 2
    assert second.reused and not third.reused
    assert (second.exit_code, second.output_tail) == (first.exit_code, first.output_tail)
    assert "the output" in second.output_tail


async def test_a_kept_baseline_needs_no_worktree(git_repo: Path, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    cache = MemoryGateCache()
    gates = Gates(build=_counting(counter), test=_counting(counter, "exit 1"))
    validator = Validator(gates, cache=cache, project_id="p1")
    sha = (git_repo / ".git" / "refs" / "heads" / "main").read_text().strip()

    assert await validator.kept_baseline(git_repo, goal_id="g1", sha=sha) is None
    ran = await validator.baseline(_worktree(git_repo, "a"), goal_id="g1", sha=sha)
    kept = await validator.kept_baseline(git_repo, goal_id="g2", sha=sha)

    assert _runs(counter) == 2
    assert kept is not None and kept.goal_id == "g2" and kept.sha == sha
    assert [(r.name, r.passed, r.reused) for r in kept.results] == [
        ("build", True, True),
        ("test", False, True),
    ]
    assert [r.output_tail for r in kept.results] == [r.output_tail for r in ran.results]
    other = Validator(gates, cache=cache, project_id="p1")
    assert await other.kept_baseline(git_repo, goal_id="g3", sha=sha, env_digest="x") is None


def test_a_key_names_everything_it_holds() -> None:
    key = GateKey(project_id="p", tree="t", command="pytest", timeout=600, env_digest="e")
    same = GateKey(project_id="p", tree="t", command="pytest", timeout=600.0, env_digest="e")
    assert key.digest == same.digest and len(key.digest) == 64
    variants = [
        GateKey(project_id="q", tree="t", command="pytest", timeout=600, env_digest="e"),
        GateKey(project_id="p", tree="u", command="pytest", timeout=600, env_digest="e"),
        GateKey(project_id="p", tree="t", command="pytest -x", timeout=600, env_digest="e"),
        GateKey(project_id="p", tree="t", command="pytest", timeout=60, env_digest="e"),
        GateKey(project_id="p", tree="t", command="pytest", timeout=600, env_digest=""),
    ]
    assert len({key.digest, *(v.digest for v in variants)}) == 6


# -- the same gate on the same input at the same time ------------------------------------------


def _held(counter: Path, hold: Path) -> str:
    """A counting gate that waits while ``hold`` exists."""
    wait = f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done"
    return _counting(counter, wait)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1200):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting")


async def test_validations_of_one_tree_at_once_run_the_gate_once(
    git_repo: Path, tmp_path: Path
) -> None:
    counter, hold = tmp_path / "runs", tmp_path / "hold"
    hold.touch()
    cache, flights = MemoryGateCache(), GateFlights()
    gates = Gates(test=_held(counter, hold))
    validators = [Validator(gates, cache=cache, project_id="p1", flights=flights) for _ in "ab"]
    first = asyncio.ensure_future(validators[0].run_gates(_worktree(git_repo, "a")))
    await _until(lambda: _runs(counter) == 1)
    second = asyncio.ensure_future(validators[1].run_gates(_worktree(git_repo, "b")))
    await _until(lambda: flights.waits == 1)
    hold.unlink()

    ((ran,), (waited,)) = await asyncio.gather(first, second)

    assert _runs(counter) == 1
    assert ran.passed and not ran.reused
    assert waited.passed and waited.reused and waited.output_tail == ran.output_tail


async def test_a_cancelled_run_does_not_stand_for_the_one_waiting_for_it(
    git_repo: Path, tmp_path: Path
) -> None:
    counter, hold = tmp_path / "runs", tmp_path / "hold"
    hold.touch()
    cache, flights = MemoryGateCache(), GateFlights()
    gates = Gates(test=_held(counter, hold))
    validators = [Validator(gates, cache=cache, project_id="p1", flights=flights) for _ in "ab"]
    first = asyncio.ensure_future(validators[0].run_gates(_worktree(git_repo, "a")))
    await _until(lambda: _runs(counter) == 1)
    second = asyncio.ensure_future(validators[1].run_gates(_worktree(git_repo, "b")))
    await _until(lambda: flights.waits == 1)

    first.cancel()
    await _until(lambda: _runs(counter) == 2)  # the waiting one runs the gate itself
    hold.unlink()
    (result,) = await second

    assert first.cancelled()
    assert result.passed and not result.reused


async def test_processes_on_one_data_directory_wait_for_each_others_run(
    git_repo: Path, tmp_path: Path
) -> None:
    # Two GateFlights on one lock directory are two processes: an flock is held per open file,
    # so their locks exclude each other as two processes' would.
    counter, hold, locks = tmp_path / "runs", tmp_path / "hold", tmp_path / "locks"
    hold.touch()
    cache = MemoryGateCache()
    gates = Gates(test=_held(counter, hold))
    elsewhere = GateFlights(lock_dir=locks)
    validators = [
        Validator(gates, cache=cache, project_id="p1", flights=flights)
        for flights in (GateFlights(lock_dir=locks), elsewhere)
    ]
    first = asyncio.ensure_future(validators[0].run_gates(_worktree(git_repo, "a")))
    await _until(lambda: _runs(counter) == 1)
    second = asyncio.ensure_future(validators[1].run_gates(_worktree(git_repo, "b")))
    await _until(lambda: elsewhere.waits == 1)
    hold.unlink()

    ((ran,), (waited,)) = await asyncio.gather(first, second)

    assert _runs(counter) == 1
    assert not ran.reused and waited.reused and waited.output_tail == ran.output_tail
    assert list(locks.iterdir()) == []  # no lock file is left behind
