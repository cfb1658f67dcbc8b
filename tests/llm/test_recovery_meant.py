"""A recovery plan read as its model meant it (:func:`blitz.llm.plan_answers.meant`): what small
models write that the graph rules would send back, taken without a re-ask."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from blitz.domain import RecoveryAction, RecoveryPlan, Task, TaskSpec, TaskState
from blitz.llm.plan_answers import meant
from blitz.llm.plan_output import PlanOutput, RecoveryOutput
from blitz.planner import replacements

EXISTING = ("add-slugify", "add-test", "add-slugify-2")


def insert(*tasks: TaskSpec, action: RecoveryAction = RecoveryAction.INSERT) -> RecoveryPlan:
    return RecoveryPlan(root_cause="x", action=action, tasks=tasks)


def test_a_new_task_named_like_an_existing_one_gets_the_first_free_id() -> None:
    # What Qwen2.5-Coder-1.5B wrote in bench/local_model.py: the recovery of the failed
    # add-test inserts "add-slugify" (the task to do again), which the goal has already.
    again = TaskSpec(id="add-slugify", title="Add slugify again")
    then = TaskSpec(id="check", title="Check it", depends_on=("add-slugify", "add-test"))

    taken = meant(insert(again, then, action=RecoveryAction.RETRY), EXISTING)

    assert taken.action is RecoveryAction.INSERT
    assert [t.id for t in taken.tasks] == ["add-slugify-3", "check"]
    # The recovery's own task follows the renamed one; an existing task stays as named.
    assert taken.tasks[1].depends_on == ("add-slugify-3", "add-test")
    assert taken.tasks[0].title == "Add slugify again"


FAILED = Task(id="add-slugify", goal_id="g", title="Add a function slugify(text) to textutil.py")


def test_a_retry_that_restates_the_failed_task_is_a_retry() -> None:
    # What Qwen2.5-Coder-1.5B answered in bench/local_model.py (session 21): a retry given the
    # failed task again, its checks weaker. Read as an insert, the copy ran first without the
    # task's `pytest` check, and the task itself again after it.
    again = TaskSpec(id="add-slugify", title="Add a function slugify(text) to textutil.py")
    plan = RecoveryPlan(
        root_cause="stuck", action=RecoveryAction.RETRY, guidance="import it", tasks=(again,)
    )

    taken = meant(plan, EXISTING, FAILED)

    assert taken == RecoveryPlan(
        root_cause="stuck", action=RecoveryAction.RETRY, guidance="import it"
    )
    # Named otherwise, with the same title: the same task.
    renamed = replace(
        again, id="slugify-again", title=" add a function SLUGIFY(text) to textutil.py"
    )
    assert meant(replace(plan, tasks=(renamed,)), EXISTING, FAILED).tasks == ()


def test_an_insert_keeps_its_other_tasks_when_it_restates_the_failed_one() -> None:
    again = TaskSpec(id="add-slugify", title="Again")
    first = TaskSpec(id="fixture", title="Add a fixture")
    then = TaskSpec(id="docs", title="Document it", depends_on=("fixture", "add-slugify"))
    plan = RecoveryPlan(root_cause="x", action=RecoveryAction.RETRY, tasks=(first, again, then))

    taken = meant(plan, EXISTING, FAILED)

    # The failed task runs after the inserted ones anyway: a dependency on it is dropped.
    assert taken.action is RecoveryAction.INSERT
    assert taken.tasks == (first, replace(then, depends_on=("fixture",)))
    # A replacement given the task again keeps it (renamed: it takes the task's place).
    replaced = meant(replace(plan, action=RecoveryAction.REPLACE), EXISTING, FAILED)
    assert [t.id for t in replaced.tasks] == ["fixture", "add-slugify-3", "docs"]


def test_new_ids_are_left_as_they_are() -> None:
    plan = insert(TaskSpec(id="fixture", title="Add a fixture", depends_on=("add-test",)))
    assert meant(plan, EXISTING) == plan
    assert meant(plan) == plan


def test_a_recovery_given_a_task_s_fields_beside_its_own_is_read_without_them() -> None:
    # What Qwen2.5-Coder-1.5B answered in bench/local_model.py, re-asked twice for it.
    answer = {
        "root_cause": "done already",
        "action": "skip",
        "tasks": [],
        "allow_empty": False,
        "backend": "",
        "model": "",
        "attempts": None,
    }
    assert RecoveryOutput.model_validate(answer) == RecoveryOutput(
        root_cause="done already", action="skip"
    )
    with pytest.raises(ValidationError, match="surprise"):
        RecoveryOutput.model_validate({**answer, "surprise": 1})


def test_an_answer_in_its_schema_s_shape_is_read_as_the_values_inside() -> None:
    # What Qwen2.5-Coder-1.5B answered in bench/local_model.py when asked for prompted JSON,
    # the schema shown above the question: its values inside the schema's "properties".
    task = {"id": "rename", "title": "Rename compute_total", "instructions": "In shop.py..."}
    plan = {"summary": "Rename it", "tasks": [task]}
    echoed = {"additionalProperties": False, "properties": plan, "type": "object"}
    assert PlanOutput.model_validate(echoed) == PlanOutput.model_validate(plan)
    recovery = {"root_cause": "a typo", "action": "retry", "guidance": "fix the typo"}
    assert RecoveryOutput.model_validate({"properties": recovery}) == RecoveryOutput(
        root_cause="a typo", action="retry", guidance="fix the typo"
    )
    # An answer with its own fields and a stray "properties" is sent back, not unwrapped.
    with pytest.raises(ValidationError, match="properties"):
        PlanOutput.model_validate({**plan, "properties": plan})


def test_a_task_replaced_is_in_its_replacements_place_however_often_replaced() -> None:
    def made(id: str, origin: str = "plan", *after: str, replaced: bool = False) -> Task:
        state = TaskState.REPLACED if replaced else TaskState.PENDING
        return Task(id=id, goal_id="g", title=id, origin=origin, depends_on=after, state=state)

    tasks = {
        t.id: t
        for t in (
            made("code", replaced=True),
            made("fixture", "recovery:code"),  # code's replacement: fixture, then code-2
            made("code-2", "recovery:code", "fixture", replaced=True),
            made("code-3", "recovery:code-2"),  # code-2's: two tasks, neither needs the other
            made("docs", "recovery:code-2"),
            made("test"),
        )
    }

    assert replacements(tasks) == {"code": ("code-3", "docs"), "code-2": ("code-3", "docs")}


def test_a_new_task_that_depends_on_a_replaced_task_depends_on_its_replacement() -> None:
    # What Qwen2.5-Coder-1.5B answered in bench/local_model.py (session 21): the recovery of a
    # later task added one depending on test-textutil, which a recovery had replaced; the engine
    # refused the plan and the goal failed with its recoveries left.
    new = TaskSpec(id="slugify-again", title="Add it", depends_on=("test-textutil", "add-test"))
    plan = RecoveryPlan(root_cause="x", action=RecoveryAction.INSERT, tasks=(new,))

    taken = meant(plan, EXISTING, replaced={"test-textutil": ("test-textutil-replace",)})

    assert taken.tasks[0].depends_on == ("test-textutil-replace", "add-test")
    assert meant(plan, EXISTING, replaced={}) == plan
