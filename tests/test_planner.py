"""Plan files (YAML and JSON) into plans: per-task routing and best-of-N attempts, the problems
reported for them, and the examples in docs/plan-format.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from blitz.domain import RecoveryAction, TaskSpec
from blitz.errors import PlanError
from blitz.planner import MAX_ATTEMPTS, load_plan_file, parse_plan, parse_recovery

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plan-format.md"

ROUTED = """\
summary: Add rate limiting
tasks:
  - id: limiter
    title: Add a token-bucket limiter
    backend: claude-code
    model: opus
    attempts: 3
  - id: docs
    title: Document the limits
    depends_on: [limiter]
    backend: " embedded "
    model: openai:gpt-5-mini
  - id: plain
    title: Nothing routed
"""


def problems(data: Any) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(data)
    return info.value.problems


def test_a_yaml_plan_routes_tasks_and_asks_for_attempts(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(ROUTED)

    limiter, docs, plain = load_plan_file(path).tasks

    assert (limiter.backend, limiter.model, limiter.attempts) == ("claude-code", "opus", 3)
    assert (docs.backend, docs.model, docs.attempts) == ("embedded", "openai:gpt-5-mini", 0)
    assert plain == TaskSpec(id="plain", title="Nothing routed", instructions="Nothing routed")


def test_a_json_plan_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(yaml.safe_load(ROUTED)))
    yaml_path = tmp_path / "plan.yml"
    yaml_path.write_text(ROUTED)
    assert load_plan_file(path) == load_plan_file(yaml_path)


def test_backend_names_are_left_to_the_engine() -> None:
    [task] = parse_plan([{"id": "a", "title": "A", "backend": "no-such-agent"}]).tasks
    assert task.backend == "no-such-agent"


@pytest.mark.parametrize("attempts", [1, MAX_ATTEMPTS])
def test_attempts_at_the_bounds_are_accepted(attempts: int) -> None:
    [task] = parse_plan([{"id": "a", "title": "A", "attempts": attempts}]).tasks
    assert task.attempts == attempts


@pytest.mark.parametrize("attempts", [0, -1, MAX_ATTEMPTS + 1, 100])
def test_attempts_out_of_range_name_the_task(attempts: int) -> None:
    assert problems([{"id": "risky", "title": "R", "attempts": attempts}]) == [
        f"task 'risky': attempts must be from 1 to {MAX_ATTEMPTS}, not {attempts}"
    ]


@pytest.mark.parametrize("attempts", [True, "3", 2.5, 2.0])
def test_attempts_must_be_an_integer(attempts: object) -> None:
    [problem] = problems([{"id": "risky", "title": "R", "attempts": attempts}])
    assert problem.startswith("task 'risky'.attempts: ")
    assert "integer" in problem


def test_every_task_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        yaml.safe_dump(
            [
                {"id": "a", "title": "A", "attempts": 0},
                {"id": "b", "title": "B", "checks": [{"kind": "command"}], "attempts": 11},
                {"id": "c", "title": "C", "attempts": 2},
            ]
        )
    )
    with pytest.raises(PlanError) as info:
        load_plan_file(path)
    assert info.value.problems == [
        f"{path}: task 'a': attempts must be from 1 to {MAX_ATTEMPTS}, not 0",
        f"{path}: task 'b': a command check needs a 'command'",
        f"{path}: task 'b': attempts must be from 1 to {MAX_ATTEMPTS}, not 11",
    ]


def test_routing_keys_are_strings_and_typos_are_errors() -> None:
    assert problems([{"id": "a", "title": "A", "backend": 3}]) == [
        "task 'a'.backend: Input should be a valid string"
    ]
    [typo] = problems([{"id": "a", "title": "A", "atempts": 2}])
    assert typo.startswith("task 'a'.atempts: ")


def test_recovery_tasks_take_routing_and_attempts_too() -> None:
    recovery = parse_recovery(
        {
            "root_cause": "too hard for the small model",
            "action": "replace",
            "tasks": [{"id": "redo", "title": "Redo", "model": "opus", "attempts": 2}],
        }
    )
    assert recovery.action is RecoveryAction.REPLACE
    [task] = recovery.tasks
    assert (task.backend, task.model, task.attempts) == ("", "opus", 2)
    with pytest.raises(PlanError, match="task 'redo': attempts must be from 1 to 10, not 0"):
        parse_recovery(
            {
                "root_cause": "x",
                "action": "insert",
                "tasks": [{"id": "redo", "title": "Redo", "attempts": 0}],
            }
        )


def test_the_documented_examples_parse() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    plans = [yaml.safe_load(b) for b in blocks]
    recoveries = [p for p in plans if isinstance(p, dict) and "action" in p]
    tasks = [t for p in plans if p not in recoveries for t in parse_plan(p).tasks]
    for recovery in recoveries:
        parse_recovery(recovery)
    # The documentation shows every routing key in use.
    assert any(t.backend for t in tasks) and any(t.model for t in tasks)
    assert any(t.attempts > 1 for t in tasks)
