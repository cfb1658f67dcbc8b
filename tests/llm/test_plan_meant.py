"""A model's plan as meant: a task touching only the tests of a module one other task changes is
folded into that task (:func:`~blitz.llm.plan_answers.fold_tests_into_code`: the tests of new
code go in the task that writes it; a small model planned them apart, its code landed untested
and its "test" was a copy of the function in the test file), and one that cannot be folded
depends on the code's task (:func:`~blitz.llm.plan_answers.code_before_tests`), and a task's
backend and model are among those offered (:func:`~blitz.llm.plan_answers.offered_routes`; a
small model wrote ``"model": "default"`` and the goal failed on an unknown model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blitz.domain import Check, TaskSpec
from blitz.errors import PlanError
from blitz.llm.plan_answers import (
    code_before_tests,
    distinct_ids,
    fold_tests_into_code,
    offered_routes,
)
from blitz.testing.model_server import ModelServer

from . import model_for
from .planner_helpers import json_reply, local_planner, plan_request, recovery_request

PYTEST = Check(kind="command", command="python -m pytest -q")


def spec(id: str, *files: str, depends_on: tuple[str, ...] = ()) -> TaskSpec:
    return TaskSpec(id=id, title=id, files=files, depends_on=depends_on)


def after(tasks: tuple[TaskSpec, ...]) -> dict[str, tuple[str, ...]]:
    return {t.id: t.depends_on for t in code_before_tests(tasks)}


def test_a_test_task_follows_the_task_changing_what_it_tests() -> None:
    # What Qwen2.5-Coder-1.5B planned in bench/local_model.py.
    tasks = (spec("add-slugify", "textutil.py"), spec("add-test", "test_textutil.py"))
    assert after(tasks) == {"add-slugify": (), "add-test": ("add-slugify",)}


def test_the_usual_test_file_names_of_several_languages() -> None:
    for test, code in (
        ("tests/test_limiter.py", "src/app/limiter.py"),
        ("pkg/limiter_test.go", "pkg/limiter.go"),
        ("src/limiter.test.ts", "src/limiter.ts"),
        ("spec/limiter.spec.js", "lib/limiter.js"),
    ):
        assert after((spec("code", code), spec("tests", test)))["tests"] == ("code",), test


def test_unrelated_tasks_and_one_task_with_both_stay_as_planned() -> None:
    tasks = (
        spec("both", "textutil.py", "test_textutil.py"),
        spec("other", "test_parser.py"),
        spec("docs", "README.md", "test.py"),  # "test.py" tests no module
        spec("tested", "test_.py"),
    )
    assert code_before_tests(tasks) == tasks


def test_no_cycle_is_made_and_dependencies_already_there_are_kept() -> None:
    # The code's task already needs the tests' task: adding the reverse would make a cycle.
    tasks = (
        spec("tests", "test_calc.py"),
        spec("code", "calc.py", depends_on=("tests",)),
        spec("more", "test_calc.py", depends_on=("code",)),
    )
    assert after(tasks) == {"tests": (), "code": ("tests",), "more": ("code",)}


def test_a_test_task_is_folded_into_the_one_task_changing_what_it_tests() -> None:
    # What Qwen2.5-Coder-1.5B planned in bench/local_model.py (session 16).
    tasks = (
        TaskSpec(id="add-slugify", title="Add slugify", instructions="Add it.",
                 files=("textutil.py",), depends_on=("setup",), labels=("py",),
                 checks=(PYTEST,)),
        TaskSpec(id="add-test", title="Test slugify", instructions="Test it.",
                 files=("test_textutil.py",), depends_on=("add-slugify", "fixtures"), priority=2,
                 checks=(Check(kind="file_exists", path="test_textutil.py"), PYTEST)),
        spec("docs", "README.md", depends_on=("add-test",)),
        spec("setup", "setup.cfg"),
        spec("fixtures", "conftest.py"),
    )  # fmt: skip

    folded = {t.id: t for t in fold_tests_into_code(tasks)}

    assert list(folded) == ["add-slugify", "docs", "setup", "fixtures"]
    one = folded["add-slugify"]
    assert one.files == ("textutil.py", "test_textutil.py")
    assert one.instructions == "Add it.\n\nTest slugify: Test it."
    assert one.depends_on == ("setup", "fixtures")
    assert (one.priority, one.labels, one.title) == (2, ("py",), "Add slugify")
    assert one.checks == (PYTEST, Check(kind="file_exists", path="test_textutil.py"))  # each once
    assert folded["docs"].depends_on == ("add-slugify",)  # it needed the tests: now their task


def test_what_cannot_be_folded_is_ordered_after_the_code_instead() -> None:
    tasks = (
        spec("code-a", "calc.py"),
        spec("code-b", "parse.py"),
        spec("both-tests", "test_calc.py", "test_parse.py"),  # the modules of two tasks
        spec("mixed", "test_calc.py", "notes.md"),  # not only tests
        spec("again", "calc.py"),
    )
    folded = {t.id: t.depends_on for t in fold_tests_into_code(tasks)}
    assert folded == {
        "code-a": (),
        "code-b": (),
        "both-tests": ("again", "code-a", "code-b"),
        "mixed": ("again", "code-a"),
        "again": (),
    }


def test_a_fold_that_would_make_a_cycle_is_not_made() -> None:
    tasks = (
        spec("tests", "test_calc.py"),
        spec("code", "calc.py", depends_on=("tests",)),  # the code needs the tests' task
        spec("other", "other.py", depends_on=("code",)),
        spec("late", "test_calc.py", depends_on=("other",)),  # folding would need itself
    )
    folded = fold_tests_into_code(tasks)
    assert [t.id for t in folded] == ["tests", "code", "other", "late"]  # nothing folded
    assert folded[3].depends_on == ("other", "code")  # ordered after the code instead


async def planned(fake: ModelServer, repo: Path, *tasks: dict[str, str | list[str]]) -> Any:
    """The plan the planner returns for a model that answers with ``tasks``."""
    fake.add(json_reply({"summary": "Add slugify", "tasks": list(tasks)}))
    async with model_for(fake, "llamacpp") as model:
        return (await local_planner(model, output_mode="prompted").plan(plan_request(repo))).plan


async def test_the_planner_returns_the_plan_as_meant(fake: ModelServer, repo: Path) -> None:
    plan = await planned(
        fake,
        repo,
        {
            "id": "add-slugify",
            "title": "Add it",
            "instructions": "Add it.",
            "files": ["textutil.py"],
        },
        {
            "id": "add-test",
            "title": "Test it",
            "instructions": "Test it.",
            "files": ["test_textutil.py"],
        },
    )
    [task] = plan.tasks  # the tests' task folded into the code's
    assert (task.id, task.files) == ("add-slugify", ("textutil.py", "test_textutil.py"))
    assert task.instructions == "Add it.\n\nTest it: Test it."


async def test_a_recovery_task_s_route_reads_as_a_plan_task_s(
    fake: ModelServer, repo: Path
) -> None:
    # What Qwen2.5-Coder-1.5B answered in bench/local_model.py (session 16): new tasks with
    # "model": "python"; the attempt then failed on the unknown model and the goal stopped.
    task = {"id": "add-test-slugify", "title": "Test slugify", "instructions": "Test it."}
    answer = {"root_cause": "untested", "action": "insert"}
    fake.add(json_reply({**answer, "tasks": [{**task, "model": "python"}]}))
    fake.add(json_reply({**answer, "tasks": [{**task, "backend": "codex", "model": "gpt-x"}]}))
    fake.add(json_reply({**answer, "tasks": [{**task, "backend": "codex"}]}))
    async with model_for(fake, "llamacpp") as model:
        planner = local_planner(model, output_mode="prompted")
        alone = (await planner.recover(recovery_request())).recovery
        offered = (await planner.recover(recovery_request(backends=("codex",)))).recovery

    [new] = alone.tasks
    assert (new.backend, new.model) == ("", "")  # nothing else offered: the goal's own
    [new] = offered.tasks  # a pair not offered is sent back, then one offered is kept
    assert (new.backend, new.model) == ("codex", "")
    assert "backend 'codex' with model 'gpt-x' is not one of the choices" in fake.requests[2].text


def routed(backend: str, model: str) -> TaskSpec:
    return TaskSpec(id="t", title="t", backend=backend, model=model)


def test_a_placeholder_or_any_name_when_nothing_was_offered_reads_as_the_goal_s_own() -> None:
    for backend, model in (("", "default"), ("Default", "none"), ("codex", "gpt-5")):
        [task] = offered_routes([routed(backend, model)], ())
        assert (task.backend, task.model) == ("", ""), (backend, model)
    [task] = offered_routes([routed("default", "auto")], ("codex",))
    assert (task.backend, task.model) == ("", "")


def test_an_offered_pair_is_kept_and_any_other_is_sent_back() -> None:
    offered = ("codex", "claude-code:sonnet")
    tasks = [routed("codex", ""), routed("claude-code", "sonnet")]
    assert offered_routes(tasks, offered) == tuple(tasks)
    # A model offered, alone: the goal's own backend with it (the engine checks the pair).
    assert offered_routes([routed("", "sonnet")], offered) == (routed("", "sonnet"),)
    with pytest.raises(PlanError) as raised:
        offered_routes([routed("claude-code", "opus"), routed("", "gpt-5")], offered)
    first, second = raised.value.problems
    assert "backend 'claude-code' with model 'opus' is not one of the choices" in first
    assert "'codex', 'claude-code:sonnet'" in first and "leave both empty" in first
    assert "backend '' with model 'gpt-5'" in second


async def test_the_planner_reads_a_placeholder_model_as_none(fake: ModelServer, repo: Path) -> None:
    # What Qwen2.5-Coder-1.5B planned in bench/local_model.py: the goal failed after planning.
    plan = await planned(
        fake,
        repo,
        {"id": "add-slugify", "title": "Add it", "instructions": "Add it.", "model": "default"},
    )
    [task] = plan.tasks
    assert (task.backend, task.model) == ("", "")
    assert len(fake.requests) == 1


def test_tasks_sharing_an_id_are_two_tasks_the_later_under_a_fresh_id() -> None:
    # Qwen2.5-Coder-1.5B planned a rename as two tasks both called rename-compute-total.
    answer = {
        "summary": "Rename",
        "tasks": [
            {"id": "rename", "title": "In shop.py"},
            {"id": "rename-2", "title": "Taken already"},
            {"id": "rename", "title": "In report.py", "depends_on": ["rename"]},
        ],
    }
    tasks = distinct_ids(answer)["tasks"]
    assert [(t["id"], t["title"]) for t in tasks] == [
        ("rename", "In shop.py"),
        ("rename-2", "Taken already"),
        ("rename-3", "In report.py"),
    ]
    assert tasks[2]["depends_on"] == ["rename"]  # on the first, as written
    assert distinct_ids({"summary": "s", "tasks": tasks}) == {"summary": "s", "tasks": tasks}
