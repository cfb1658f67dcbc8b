from __future__ import annotations

from blitz.domain import (
    Attempt,
    AttemptState,
    GateResult,
    Goal,
    GoalState,
    Recovery,
    RecoveryAction,
    Task,
    TaskState,
    Usage,
)
from blitz.pr import describe, pr_title


def _gate(name: str, passed: bool, *, preexisting: bool = False) -> GateResult:
    return GateResult(
        name=name,
        command=f"make {name}",
        passed=passed,
        exit_code=0 if passed else 1,
        duration=1.0,
        preexisting=preexisting,
    )


def _goal(title: str = "Add rate limiting to the API") -> Goal:
    return Goal(
        id="g-1234abcd",
        project_id="p-1",
        title=title,
        state=GoalState.FINISHING,
        branch="blitz/add-rate-limiting-1234abcd",
        summary="Token-bucket limiter in front of every handler.",
    )


def _rich_case() -> str:
    goal = _goal()
    tasks = [
        Task(
            id="limiter",
            goal_id=goal.id,
            title="Write the limiter",
            state=TaskState.SUCCEEDED,
            attempts=1,
            commit="0123456789abcdef0123456789abcdef01234567",
        ),
        Task(
            id="wire",
            goal_id=goal.id,
            title="Wire it in",
            state=TaskState.REPLACED,
            attempts=2,
            reason="replaced by wire-a, wire-b",
        ),
        Task(
            id="wire-a",
            goal_id=goal.id,
            title="Wire the REST handlers",
            state=TaskState.SUCCEEDED,
            attempts=1,
            commit="abcdef0123456789",
            origin="recovery:wire",
        ),
        Task(
            id="docs",
            goal_id=goal.id,
            title="Document it",
            state=TaskState.SKIPPED,
            reason="recovery said skip: docs site is generated elsewhere",
        ),
        Task(id="bench", goal_id=goal.id, title="Benchmark", state=TaskState.FAILED, attempts=1),
    ]
    attempts = [
        Attempt(
            id="a1",
            goal_id=goal.id,
            task_id="limiter",
            number=1,
            state=AttemptState.SUCCEEDED,
            gates=(_gate("build", True), _gate("test", True)),
            usage=Usage(input_tokens=1000, output_tokens=200, cached_tokens=500, cost_usd=0.25),
        ),
        Attempt(
            id="a2",
            goal_id=goal.id,
            task_id="wire",
            number=1,
            state=AttemptState.FAILED,
            gates=(_gate("build", False),),
            usage=Usage(input_tokens=2000, output_tokens=300, cost_usd=0.5),
        ),
        Attempt(
            id="a3",
            goal_id=goal.id,
            task_id="wire",
            number=2,
            state=AttemptState.FAILED,
            gates=(_gate("build", True), _gate("test", False)),
            usage=Usage(input_tokens=500, output_tokens=100, cost_usd=0.1),
        ),
        Attempt(
            id="a4",
            goal_id=goal.id,
            task_id="wire-a",
            number=1,
            state=AttemptState.SUCCEEDED,
            gates=(_gate("build", True), _gate("lint", False, preexisting=True)),
            usage=Usage(input_tokens=10, output_tokens=5, cached_tokens=3, cost_usd=0.05),
        ),
        Attempt(
            id="a5",
            goal_id=goal.id,
            task_id="bench",
            number=1,
            state=AttemptState.FAILED,
            error="benchmark harness missing",
        ),
    ]
    recoveries = [
        Recovery(
            id="r1",
            goal_id=goal.id,
            task_id="wire",
            attempt_id="a3",
            root_cause="the handlers live in two modules\nwith different | signatures",
            action=RecoveryAction.REPLACE,
            new_tasks=("wire-a", "wire-b"),
        ),
    ]
    return describe(goal=goal, tasks=tasks, attempts=attempts, recoveries=recoveries)


def _row(body: str, task_id: str) -> str:
    return next(line for line in body.splitlines() if line.startswith(f"| `{task_id}` |"))


def test_describe_rich_case_has_every_section() -> None:
    body = _rich_case()
    lines = body.splitlines()

    assert lines[0] == "# blitz: Add rate limiting to the API"
    assert "Demo" not in body
    assert "Token-bucket limiter in front of every handler." in body
    assert "2 tasks succeeded, 1 skipped, 1 failed, 1 replaced; 1 recovery." in body
    for heading in (
        "## Goal",
        "## Summary",
        "## Tasks",
        "## Recoveries",
        "## Skipped and failed tasks",
        "## Cost",
    ):
        assert heading in lines
    assert lines[-1].startswith("<sub>Opened by blitz for goal `g-1234abcd`")


def test_describe_task_rows_show_commit_gates_and_attempts() -> None:
    body = _rich_case()

    assert _row(body, "limiter") == (
        "| `limiter` | Write the limiter | succeeded | `0123456` | build ✓ test ✓ | 1 |"
    )
    # The gates shown are those of the last attempt, not the first.
    assert _row(body, "wire") == "| `wire` | Wire it in | replaced | — | build ✓ test ✗ | 2 |"
    assert _row(body, "wire-a").endswith("| `abcdef0` | build ✓ lint ✗ (pre-existing) | 1 |")
    assert _row(body, "docs") == "| `docs` | Document it | skipped | — | — | 0 |"
    assert _row(body, "bench") == "| `bench` | Benchmark | **failed** | — | — | 1 |"
    assert "*pre-existing*: the gate fails on the base branch too" in body


def test_describe_recoveries_and_left_out_tasks() -> None:
    body = _rich_case()

    assert (
        "| `wire` Wire it in | the handlers live in two modules with different \\| signatures "
        "| replace | `wire-a`, `wire-b` |"
    ) in body.splitlines()
    assert (
        "- `docs` Document it (skipped): recovery said skip: docs site is generated elsewhere"
        in body
    )
    # Without a recorded reason the last attempt's error explains the failure.
    assert "- `bench` Benchmark (failed): benchmark harness missing" in body
    # Replaced tasks are accounted for by the recoveries, not listed as left out.
    assert "(replaced)" not in body


def test_describe_sums_cost_over_attempts() -> None:
    body = _rich_case()

    assert "| 3,510 | 605 | 503 | $0.90 |" in body.splitlines()
    assert "Agent attempts only (5 attempts)" in body


def test_describe_scripted_run_says_so_at_the_top() -> None:
    goal = _goal()
    body = describe(goal=goal, tasks=[], attempts=[], recoveries=[], scripted=True)
    head = "\n".join(body.splitlines()[:4])

    assert "Demo run" in head
    assert "scripted planner" in head and "scripted backend" in head
    assert "0 tasks succeeded, 0 skipped, 0 failed; 0 recoveries." in body
    assert "| 0 | 0 | 0 | $0.00 |" in body


def test_describe_escapes_table_cells() -> None:
    goal = _goal(title="Fix a | b\nand more")
    task = Task(
        id="t|1",
        goal_id=goal.id,
        title="pipes | and\nnewlines\r\nhere",
        state=TaskState.SUCCEEDED,
        commit="feedfacecafe",
    )
    attempt = Attempt(
        id="a1", goal_id=goal.id, task_id="t|1", number=1, gates=(_gate("te|st", True),)
    )
    body = describe(goal=goal, tasks=[task], attempts=[attempt], recoveries=[])
    row = next(line for line in body.splitlines() if line.startswith("| `t"))

    assert row == (
        "| `t\\|1` | pipes \\| and newlines here | succeeded | `feedfac` | te\\|st ✓ | 1 |"
    )
    # Every table row still has exactly six cells once escaped pipes are discounted.
    assert row.replace("\\|", "").count("|") == 7
    assert body.splitlines()[0] == "# blitz: Fix a | b and more"


def test_describe_marks_small_costs_and_long_cells() -> None:
    goal = _goal()
    task = Task(id="t1", goal_id=goal.id, title="x" * 500, state=TaskState.SUCCEEDED)
    attempt = Attempt(id="a1", goal_id=goal.id, task_id="t1", number=1, usage=Usage(cost_usd=0.004))
    body = describe(goal=goal, tasks=[task], attempts=[attempt], recoveries=[])

    assert "< $0.01" in body
    row = next(line for line in body.splitlines() if line.startswith("| `t1`"))
    assert "x" * 199 + "…" in row and "x" * 200 not in row


def test_pr_title_is_one_short_line() -> None:
    assert pr_title(_goal()) == "blitz: Add rate limiting to the API"
    long = pr_title(_goal(title="Refactor   the\nstorage layer " + "very " * 30))
    assert len(long) <= 72
    assert long.startswith("blitz: Refactor the storage layer very")
    assert long.endswith("…")
    assert "\n" not in long
