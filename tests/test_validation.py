from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from engine_helpers import wait_until
from timeouts import long_enough

from blitz.domain import Baseline, Check, GateResult, Gates
from blitz.errors import RunError
from blitz.validation import Validator, summarize, verdict

# -- gates -------------------------------------------------------------------------------------


async def test_every_gate_runs_in_order_even_after_a_failure(tmp_path: Path) -> None:
    gates = Gates(build="echo building; exit 3", lint="echo lint ok", test="echo ran > ran.txt")
    results = await Validator(gates).run_gates(tmp_path)

    assert [r.name for r in results] == ["build", "lint", "test"]
    build, lint, test = results
    assert not build.passed and build.exit_code == 3 and "building" in build.output_tail
    assert lint.passed and lint.exit_code == 0 and lint.output_tail.strip() == "lint ok"
    assert test.passed and (tmp_path / "ran.txt").read_text() == "ran\n"
    assert not verdict(results)
    assert summarize(results) == "build: FAILED (exit 3)\nlint: passed\ntest: passed"


async def test_no_configured_gates_run_nothing(tmp_path: Path) -> None:
    results = await Validator(Gates()).run_gates(tmp_path)
    assert results == ()
    assert verdict(results)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie is dead, waiting for a parent to reap it


async def test_a_hung_gate_is_killed_with_its_children_on_timeout(tmp_path: Path) -> None:
    # The sleep is a child of the shell: killing only the shell would leave it running.
    async def run(timeout: float) -> GateResult:
        gates = Gates(test="sleep 60 & echo $! > sleep.pid; echo started; wait", timeout=timeout)
        (result,) = await Validator(gates).run_gates(tmp_path)
        return result

    # The timeout must fire after the gate started its child: a timeout too short for this
    # machine's load is tried again, twice as long.
    result, _ = await long_enough(run, lambda ran: "started" in ran.output_tail, first=1.0)

    assert result.timed_out and not result.passed and result.exit_code is None
    assert "started" in result.output_tail and "timed out" in result.output_tail
    assert summarize([result]).startswith("test: TIMED OUT after ")
    pid = int((tmp_path / "sleep.pid").read_text())
    await wait_until(lambda: not _alive(pid))  # the orphan may take a moment to be reaped


async def test_an_output_flood_keeps_only_the_tail(tmp_path: Path) -> None:
    flood = "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo THE END"
    (result,) = await Validator(Gates(test=flood), tail_chars=1000).run_gates(tmp_path)

    assert result.passed
    assert result.output_tail.startswith("[... output truncated ...]")
    assert result.output_tail.rstrip().endswith("THE END")
    assert len(result.output_tail) < 1100


async def test_gates_do_not_see_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLITZ_TEST_API_KEY", "sk-secret")
    monkeypatch.setenv("BLITZ_TEST_PLAIN", "visible")
    gates = Gates(test='test -z "$BLITZ_TEST_API_KEY" && test "$BLITZ_TEST_PLAIN" = visible')
    (result,) = await Validator(gates).run_gates(tmp_path)
    assert result.passed, result.output_tail


async def test_a_missing_worktree_is_a_run_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="gone"):
        await Validator(Gates(test="true")).run_gates(tmp_path / "gone")


# -- judging against the baseline --------------------------------------------------------------

REPORT = "cat report.txt; exit 1"
"""A test gate whose failures the test controls by writing report.txt."""


def _report(worktree: Path, *failing: str) -> None:
    lines = [f"FAILED tests/test_app.py::{name} - assert 0" for name in failing]
    (worktree / "report.txt").write_text("\n".join([*lines, f"{len(failing)} failed"]) + "\n")


async def test_a_failure_already_on_the_baseline_is_not_blamed(tmp_path: Path) -> None:
    validator = Validator(Gates(test=REPORT, lint="echo 'style: bad'; exit 1"))
    _report(tmp_path, "test_old")
    baseline = await validator.baseline(tmp_path, goal_id="g-1", sha="abc123")
    assert baseline.goal_id == "g-1" and baseline.sha == "abc123"
    assert [r.new_failures for r in baseline.results] == [(), ("tests/test_app.py::test_old",)]

    results = await validator.run_gates(tmp_path, baseline=baseline)

    lint, test = results
    assert test.preexisting and not test.passed and test.new_failures == ()
    assert lint.preexisting  # nothing recognisable in either run: the same failure
    assert verdict(results)
    assert summarize(results) == (
        "lint: failed on base branch too (not blamed)\ntest: failed on base branch too (not blamed)"
    )


async def test_a_new_failing_test_is_blamed(tmp_path: Path) -> None:
    validator = Validator(Gates(test=REPORT))
    _report(tmp_path, "test_old")
    baseline = await validator.baseline(tmp_path, goal_id="g-1", sha="abc")
    _report(tmp_path, "test_old", "test_new", "test_newer")

    (test,) = await validator.run_gates(tmp_path, baseline=baseline)

    assert not test.passed and not test.preexisting
    assert test.new_failures == ("tests/test_app.py::test_new", "tests/test_app.py::test_newer")
    assert not verdict([test])
    assert summarize([test]) == (
        "test: FAILED (exit 1, 2 new failures: tests/test_app.py::test_new, "
        "tests/test_app.py::test_newer)"
    )


async def test_fewer_failures_than_the_baseline_are_not_blamed(tmp_path: Path) -> None:
    validator = Validator(Gates(test=REPORT))
    _report(tmp_path, "test_a", "test_b")
    baseline = await validator.baseline(tmp_path, goal_id="g-1", sha="abc")
    _report(tmp_path, "test_b")

    (test,) = await validator.run_gates(tmp_path, baseline=baseline)
    assert test.preexisting and verdict([test])


async def test_a_gate_passing_now_that_failed_before_passes(tmp_path: Path) -> None:
    validator = Validator(Gates(test="test ! -f broken"))
    (tmp_path / "broken").touch()
    baseline = await validator.baseline(tmp_path, goal_id="g-1", sha="abc")
    assert not baseline.results[0].passed
    (tmp_path / "broken").unlink()

    (test,) = await validator.run_gates(tmp_path, baseline=baseline)
    assert test.passed and not test.preexisting and test.new_failures == ()
    assert summarize([test]) == "test: passed"


async def test_a_gate_that_passed_on_the_baseline_is_blamed_in_full(tmp_path: Path) -> None:
    validator = Validator(Gates(test="test -f report.txt || exit 0; cat report.txt; exit 1"))
    baseline = await validator.baseline(tmp_path, goal_id="g-1", sha="abc")
    _report(tmp_path, "test_x")

    (test,) = await validator.run_gates(tmp_path, baseline=baseline)
    assert not test.preexisting and test.new_failures == ("tests/test_app.py::test_x",)


async def test_failing_differently_from_the_baseline_is_blamed(tmp_path: Path) -> None:
    # The baseline's failures were recognised, now nothing is: it broke in another way.
    validator = Validator(Gates(test=REPORT))
    _report(tmp_path, "test_old")
    baseline = await validator.baseline(tmp_path, goal_id="g-1", sha="abc")
    (tmp_path / "report.txt").write_text("Segmentation fault (core dumped)\n")

    (test,) = await validator.run_gates(tmp_path, baseline=baseline)
    assert not test.preexisting and not verdict([test])


async def test_a_baseline_of_another_command_is_not_used(tmp_path: Path) -> None:
    _report(tmp_path, "test_old")
    baseline = await Validator(Gates(test=REPORT)).baseline(tmp_path, goal_id="g", sha="abc")

    other = Validator(Gates(test="cat report.txt; exit 2"))
    (test,) = await other.run_gates(tmp_path, baseline=baseline)
    assert not test.preexisting and test.new_failures == ("tests/test_app.py::test_old",)


HANG_OR_FAIL = "test -f hang && sleep 30; echo 'it broke'; exit 1"


async def test_a_timeout_is_blamed_unless_the_baseline_timed_out_too(tmp_path: Path) -> None:
    async def baseline(timeout: float) -> tuple[Validator, Baseline]:
        validator = Validator(Gates(test=HANG_OR_FAIL, timeout=timeout))
        return validator, await validator.baseline(tmp_path, goal_id="g", sha="abc")

    # A timeout the failing (not hanging) gate finishes within on this machine's load, and far
    # below the hang's 30 s.
    (validator, failed), _ = await long_enough(
        baseline, lambda ran: not ran[1].results[0].timed_out, first=1.0, limit=16.0
    )
    (tmp_path / "hang").touch()

    (test,) = await validator.run_gates(tmp_path, baseline=failed)
    assert test.timed_out and not test.preexisting and not verdict([test])

    hung = await validator.baseline(tmp_path, goal_id="g", sha="abc")
    assert hung.results[0].timed_out
    (test,) = await validator.run_gates(tmp_path, baseline=hung)
    assert test.timed_out and test.preexisting and verdict([test])
    assert summarize([test]) == "test: timed out on base branch too (not blamed)"


async def test_real_pytest_failures_are_read_and_judged(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_app.py").write_text(
        "import pytest\n\n"
        "def test_ok():\n    assert True\n\n"
        "def test_old():\n    assert 1 == 2\n\n"
        "@pytest.mark.parametrize('n', [1, 2])\n"
        "def test_param(n):\n    assert n == 1\n"
    )
    command = f"{sys.executable} -m pytest -q -p no:cacheprovider tests"
    validator = Validator(Gates(test=command))

    baseline = await validator.baseline(tmp_path, goal_id="g", sha="abc")
    (before,) = baseline.results
    assert before.exit_code == 1
    assert before.new_failures == (
        "tests/test_app.py::test_old",
        "tests/test_app.py::test_param[2]",
    )

    with (tests / "test_app.py").open("a") as f:
        f.write("\ndef test_new():\n    assert 'a' == 'b'\n")
    (test,) = await validator.run_gates(tmp_path, baseline=baseline)
    assert not test.passed and not test.preexisting
    assert test.new_failures == ("tests/test_app.py::test_new",)

    (tests / "test_broken.py").write_text("import no_such_module_here\n")
    (test,) = await validator.run_gates(tmp_path, baseline=baseline)
    assert "tests/test_broken.py" in test.new_failures


# -- checks ------------------------------------------------------------------------------------


async def test_file_exists_checks(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.py").write_text("x = 1\n")
    checks = [Check(kind="file_exists", path="src/x.py"), Check(kind="file_exists", path="nope.py")]

    present, missing = await Validator(Gates()).run_checks(tmp_path, checks)

    assert present.name == "check:file_exists:src/x.py" and present.passed
    assert missing.name == "check:file_exists:nope.py" and not missing.passed
    assert "does not exist" in missing.output_tail
    assert summarize([present]) == "check:file_exists:src/x.py: passed"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/etc/passwd", "absolute"),
        ("../outside.txt", "outside the worktree"),
        ("src/../../outside.txt", "outside the worktree"),
        ("link/outside.txt", "outside the worktree"),
        ("", "no path"),
    ],
)
async def test_file_exists_refuses_paths_outside_the_worktree(
    tmp_path: Path, path: str, why: str
) -> None:
    worktree = tmp_path / "worktree"
    (worktree / "src").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("secret\n")
    (worktree / "link").symlink_to(tmp_path)

    (result,) = await Validator(Gates()).run_checks(
        worktree, [Check(kind="file_exists", path=path)]
    )

    assert not result.passed and why in result.output_tail
    assert why in summarize([result])


async def test_command_checks(tmp_path: Path) -> None:
    long = "echo " + "word " * 30
    checks = [
        Check(kind="command", command="grep -q hello greeting.txt"),
        Check(kind="command", command="echo nope; exit 4"),
        Check(kind="command", command="sleep 30", timeout=0.5),
        Check(kind="command", command=long),
        Check(kind="command", command="  "),
        Check(kind="smell"),
    ]
    (tmp_path / "greeting.txt").write_text("hello\n")

    grep, nope, sleep, echo, blank, smell = await Validator(Gates()).run_checks(tmp_path, checks)

    assert grep.name == "check:command:grep -q hello greeting.txt" and grep.passed
    assert not nope.passed and nope.exit_code == 4 and "nope" in nope.output_tail
    assert sleep.timed_out and not sleep.passed
    assert echo.passed and echo.name.endswith("...") and len(echo.name) < 80
    assert echo.command == long
    assert not blank.passed and "no command" in blank.output_tail
    assert not smell.passed and "unknown check kind 'smell'" in smell.output_tail


# -- reporting ---------------------------------------------------------------------------------


def _result(name: str, **fields: object) -> GateResult:
    defaults: dict[str, object] = {"command": "x", "passed": False, "exit_code": 1, "duration": 1.0}
    return GateResult(name=name, **{**defaults, **fields})  # type: ignore[arg-type]


def test_summarize_lists_a_few_new_failures() -> None:
    many = tuple(f"t{i}" for i in range(8))
    assert summarize([_result("test", new_failures=many)]) == (
        "test: FAILED (exit 1, 8 new failures: t0, t1, t2, t3, t4 and 3 more)"
    )
    assert summarize([_result("test", new_failures=("t0",))]) == (
        "test: FAILED (exit 1, 1 new failure: t0)"
    )
    timed_out = _result("test", exit_code=None, timed_out=True, duration=600.2)
    assert summarize([timed_out]) == "test: TIMED OUT after 600s"
    assert summarize([]) == "no gates ran"


def test_verdict_accepts_passed_and_preexisting_results() -> None:
    assert verdict([_result("build", passed=True), _result("lint", preexisting=True)])
    assert not verdict([_result("build", passed=True), _result("test")])


async def test_judging_reads_baseline_ids_even_when_its_tail_was_cut(tmp_path: Path) -> None:
    # A stored baseline whose tail no longer shows the failures still carries their ids.
    old = _result("test", command=REPORT, new_failures=("tests/test_app.py::test_old",))
    baseline = Baseline(goal_id="g", sha="abc", results=(old,))
    _report(tmp_path, "test_old")

    (test,) = await Validator(Gates(test=REPORT)).run_gates(tmp_path, baseline=baseline)
    assert test.preexisting


# -- side by side, and fail-fast ---------------------------------------------------------------


def _gone(pid: int) -> bool:
    for _ in range(100):  # an orphan may take a moment to be reaped
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


async def test_parallel_gates_run_side_by_side(tmp_path: Path) -> None:
    # lint waits for a file that test writes: in order (lint first) it could only time out.
    gates = Gates(
        lint="while [ ! -e tested ]; do sleep 0.05; done; echo lint saw it",
        test="touch tested; echo tested",
        timeout=60,
        parallel=True,
    )
    lint, test = await Validator(gates).run_gates(tmp_path)

    assert (lint.name, test.name) == ("lint", "test")
    assert lint.passed and "lint saw it" in lint.output_tail
    assert test.passed


async def test_a_hanging_parallel_gate_is_killed_at_its_timeout_and_the_others_finish(
    tmp_path: Path,
) -> None:
    gates = Gates(
        build="echo built",
        lint="sleep 60 & echo $! > sleep.pid; wait",
        test="sh -c 'echo FAILED tests/t.py::test_x - boom; exit 1'",
        timeout=1,
        parallel=True,
    )
    build, lint, test = await Validator(gates).run_gates(tmp_path)

    assert build.passed
    assert lint.timed_out and not lint.passed and lint.exit_code is None
    assert test.exit_code == 1 and test.new_failures == ("tests/t.py::test_x",)
    assert _gone(int((tmp_path / "sleep.pid").read_text()))
    assert "lint: TIMED OUT after " in summarize([build, lint, test])


async def test_fail_fast_cancels_the_running_gates_and_kills_them(tmp_path: Path) -> None:
    # The build fails once the test gate's sleep has started, so the cancellation has a process
    # tree to kill.
    gates = Gates(
        build="while [ ! -s sleep.pid ]; do sleep 0.05; done; exit 2",
        test="sleep 60 & echo $! > sleep.pid.new; mv sleep.pid.new sleep.pid; wait",
        timeout=120,
        parallel=True,
        fail_fast=True,
    )
    build, test = await Validator(gates).run_gates(tmp_path)

    assert build.exit_code == 2 and not build.passed
    assert not test.passed and test.exit_code is None and not test.timed_out
    assert "not run" in test.output_tail and "build" in test.output_tail
    assert "test: FAILED (not run: build failed first (fail_fast))" in summarize([build, test])
    assert _gone(int((tmp_path / "sleep.pid").read_text()))


async def test_fail_fast_in_order_runs_nothing_after_a_blamed_failure(tmp_path: Path) -> None:
    gates = Gates(build="exit 1", test="touch tested", fail_fast=True)
    build, test = await Validator(gates).run_gates(tmp_path)

    assert not build.passed and not test.passed and test.exit_code is None
    assert not (tmp_path / "tested").exists()


async def test_fail_fast_goes_on_after_a_failure_the_baseline_excuses(tmp_path: Path) -> None:
    gates = Gates(lint="exit 1", test="touch tested", fail_fast=True)
    baseline = await Validator(Gates(lint="exit 1")).baseline(tmp_path, goal_id="g", sha="s")
    lint, test = await Validator(gates).run_gates(tmp_path, baseline=baseline)

    assert lint.preexisting and test.passed
    assert (tmp_path / "tested").exists()
    assert verdict([lint, test])


async def test_a_baseline_runs_every_gate_even_with_fail_fast(tmp_path: Path) -> None:
    gates = Gates(build="exit 1", test="touch tested", fail_fast=True, parallel=True)
    baseline = await Validator(gates).baseline(tmp_path, goal_id="g", sha="s")

    assert [r.exit_code for r in baseline.results] == [1, 0]
    assert (tmp_path / "tested").exists()
