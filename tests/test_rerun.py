"""The plan a goal ran, read back from its tasks for running it again (blitz.rerun.plan_of):
recovery's tasks left out, dependencies on them traced back to the planned tasks behind them, and
the result a plan the DAG rules accept."""

from __future__ import annotations

from blitz.domain import Check, Goal, Task, TaskState
from blitz.planner import check_plan
from blitz.rerun import plan_of

GOAL = Goal(id="g-1", project_id="p-1", title="Do it", summary="the plan's summary")


def task(
    id: str, *depends_on: str, origin: str = "plan", position: int = 0, **more: object
) -> Task:
    return Task(
        id=id,
        goal_id="g-1",
        title=f"title {id}",
        depends_on=depends_on,
        origin=origin,
        position=position,
        **more,  # type: ignore[arg-type]
    )


def deps(tasks: list[Task]) -> dict[str, tuple[str, ...]]:
    plan = plan_of(GOAL, tasks)
    assert plan is not None
    check_plan(plan.tasks)
    return {t.id: t.depends_on for t in plan.tasks}


def test_a_plan_untouched_by_recovery_comes_back_as_it_was() -> None:
    tasks = [
        task("b", "a", position=1, priority=3, files=("x.py",), backend="codex", explore=2),
        task(
            "a", position=0, instructions="do a", checks=(Check(kind="file_exists", path="a.txt"),)
        ),
        task("c", "a", "b", position=2, allow_empty=True, model="sonnet"),
    ]
    plan = plan_of(GOAL, tasks)
    assert plan is not None and plan.summary == "the plan's summary"
    assert [t.id for t in plan.tasks] == ["a", "b", "c"]  # plan order
    a, b, c = plan.tasks
    assert (a.instructions, a.checks) == ("do a", (Check(kind="file_exists", path="a.txt"),))
    assert (b.depends_on, b.priority, b.files, b.backend, b.attempts) == (
        ("a",),
        3,
        ("x.py",),
        "codex",
        2,
    )
    assert (c.depends_on, c.allow_empty, c.model) == (("a", "b"), True, "sonnet")


def test_work_inserted_before_a_task_is_left_out_with_its_place_in_the_graph() -> None:
    # recovery inserted prep before flaky: flaky waited for prep, prep for what flaky waited for
    tasks = [
        task("base", position=0),
        task("flaky", "prep", position=1, state=TaskState.SUCCEEDED),
        task("after", "flaky", position=2),
        task("prep", "base", origin="recovery:flaky", position=3),
    ]
    assert deps(tasks) == {"base": (), "flaky": ("base",), "after": ("flaky",)}


def test_a_replaced_task_stands_again_where_its_replacement_stood() -> None:
    # recovery replaced broken by fix1 -> fix2; after waited for fix2 instead of broken
    tasks = [
        task("base", position=0),
        task("broken", "base", position=1, state=TaskState.REPLACED),
        task("after", "fix2", position=2),
        task("fix1", "base", origin="recovery:broken", position=3),
        task("fix2", "fix1", origin="recovery:broken", position=4),
    ]
    assert deps(tasks) == {"base": (), "broken": ("base",), "after": ("broken", "base")}


def test_a_goal_that_ended_before_its_plan_has_none() -> None:
    assert plan_of(GOAL, []) is None
    assert plan_of(GOAL, [task("x", origin="recovery:gone")]) is None
