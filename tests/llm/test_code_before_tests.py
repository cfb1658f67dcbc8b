"""A model's plan as meant (:func:`blitz.llm.plan_prompts.code_before_tests`): a task touching
the tests of a module another task changes depends on that task. Small models plan a function
and its tests as two tasks run side by side, and the tests' task fails alone."""

from __future__ import annotations

from pathlib import Path

from blitz.domain import TaskSpec
from blitz.llm.plan_prompts import code_before_tests
from blitz.testing.model_server import ModelServer

from . import model_for
from .planner_helpers import json_reply, local_planner, plan_request


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


async def test_the_planner_returns_the_plan_as_meant(fake: ModelServer, repo: Path) -> None:
    answer = {
        "summary": "Add slugify",
        "tasks": [
            {
                "id": "add-slugify",
                "title": "Add it",
                "instructions": "Add slugify().",
                "files": ["textutil.py"],
            },
            {
                "id": "add-test",
                "title": "Test it",
                "instructions": "Test slugify().",
                "files": ["test_textutil.py"],
            },
        ],
    }
    fake.add(json_reply(answer))
    async with model_for(fake, "llamacpp") as model:
        planned = await local_planner(model, output_mode="prompted").plan(plan_request(repo))
    assert [t.depends_on for t in planned.plan.tasks] == [(), ("add-slugify",)]
