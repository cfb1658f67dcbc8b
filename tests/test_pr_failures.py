"""A failed task in the pull request description: the failing test ids and the first assertion
on view, the gate's whole output (as kept) one click away in a ``<details>`` block."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from blitz.domain import Attempt, AttemptState, GateResult, Goal, GoalState, Task, TaskState
from blitz.failures import first_assertion, parse_failures
from blitz.pr import describe

TEST_FILE = """
from calc import add


def test_add():
    assert add(1, 2) == 3


def test_add_negative():
    assert add(-1, -2) == -3


def test_sub():
    assert 1 - 1 == 0
"""


def pytest_output(tmp_path: Path) -> tuple[int, str]:
    """A real pytest run of two failing tests and one passing, as a gate would see it."""
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (tmp_path / "test_calc.py").write_text(TEST_FILE)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_calc.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def failed_goal(gate: GateResult, reason: str) -> str:
    goal = Goal(id="g-1", project_id="p-1", title="Add", state=GoalState.FINISHING, branch="b")
    task = Task(
        id="add",
        goal_id=goal.id,
        title="Fix add",
        state=TaskState.FAILED,
        attempts=1,
        reason=reason,
    )
    attempt = Attempt(
        id="a1",
        goal_id=goal.id,
        task_id="add",
        number=1,
        state=AttemptState.FAILED,
        gates=(gate,),
    )
    return describe(goal=goal, tasks=[task], attempts=[attempt], recoveries=[])


def test_a_failed_task_names_its_failing_tests_and_first_assertion(tmp_path: Path) -> None:
    code, output = pytest_output(tmp_path)
    assert code == 1
    gate = GateResult(
        name="test",
        command="pytest -q",
        passed=False,
        exit_code=code,
        duration=1.0,
        output_tail=output,
        new_failures=tuple(sorted(parse_failures(output))),
    )
    body = failed_goal(gate, f"gate test failed (exit 1): pytest -q\n{output[-1500:]}")
    entry = body.split("## Skipped and failed tasks", 1)[1].split("## Cost", 1)[0].strip()
    lines = entry.splitlines()
    assert lines[0] == "- `add` Fix add (failed): gate test failed (exit 1): pytest -q"
    assert lines[1] == (
        "  - `test`: 2 failing tests: `test_calc.py::test_add`, `test_calc.py::test_add_negative`"
    )
    assert lines[2] == "  - first assertion: `assert -1 == 3`"
    assert lines[3] == "  <details><summary>output of test (exit 1): pytest -q</summary>"
    # The whole output, as pytest wrote it, in a fenced block inside the details.
    block = re.search(r"  ```text\n(.*?)\n  ```\n\n  </details>", entry, re.S)
    assert block is not None
    kept = "\n".join(line.removeprefix("  ") for line in block[1].splitlines())
    assert kept == output.strip("\n")


def test_a_failure_without_gates_keeps_its_whole_reason_a_click_away() -> None:
    gate = GateResult(name="test", command="make test", passed=True, exit_code=0, duration=1.0)
    reason = "the agent gave up\nTraceback (most recent call last):\n  ```odd``` fence\nboom"
    body = failed_goal(gate, reason)
    assert "- `add` Fix add (failed): the agent gave up\n" in body
    assert "<details><summary>the whole reason</summary>" in body
    assert "  ````text\n  the agent gave up\n" in body  # a fence longer than any inside
    assert "  boom\n  ````\n" in body


def test_first_assertion_of_each_runner() -> None:
    assert first_assertion("E       assert -1 == 3\nE        +  where -1 = add(1, 2)") == (
        "assert -1 == 3"
    )
    unittest = "FAIL: test_x (t.T.test_x)\nTraceback...\nAssertionError: -1 != 3\n"
    assert first_assertion(unittest) == "AssertionError: -1 != 3"
    assert first_assertion("--- FAIL: TestAdd\n    calc_test.go:9: add(1, 2) = -1\n") == (
        "calc_test.go:9: add(1, 2) = -1"
    )
    assert first_assertion("  ● adds\n    Expected: 3\n    Received: -1\n") == "Expected: 3"
    assert first_assertion("compiling...\nall fine\n") == ""
