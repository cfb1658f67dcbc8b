"""Records for the store tests with every field set and no two fields alike, so a field that is
dropped, swapped or mangled on its way through a database shows."""

from __future__ import annotations

from blitz.domain import (
    Attempt,
    AttemptState,
    Baseline,
    BreakerRecord,
    BreakerState,
    Check,
    GateResult,
    Gates,
    Goal,
    GoalState,
    Project,
    Recovery,
    RecoveryAction,
    Task,
    TaskState,
    Usage,
)
from blitz.events import Event, EventKind


def make_project(id: str = "p-1", **changes: object) -> Project:
    fields: dict[str, object] = {
        "id": id,
        "name": f"name-{id}",
        "path": f"/repos/{id}",
        "base_branch": "trunk",
        "remote": "origin",
        "gates": Gates(
            build="make", test="pytest -q", typecheck="mypy .", lint="ruff", timeout=42.5
        ),
        "backend": "claude-code",
        "max_parallel": 7,
        "paused": True,
        "pause_reason": "breaker open",
        "fallback_backend": "codex",
        "require_plan_approval": True,
        "model": "opus",
    }
    fields.update(changes)
    return Project(**fields)  # type: ignore[arg-type]


def make_goal(id: str = "g-1", project_id: str = "p-1", **changes: object) -> Goal:
    fields: dict[str, object] = {
        "id": id,
        "project_id": project_id,
        "title": "add rate limiting",
        "state": GoalState.RUNNING,
        "branch": f"blitz/{id}",
        "base_branch": "develop",
        "base_sha": "abc123",
        "backend": "codex",
        "summary": "a summary",
        "error": "an error",
        "pr_url": "https://github.test/pr/1",
        "created_at": 1000.25,
        "finished_at": 2000.5,
        "runner": "123@host",
        "max_parallel": 3,
        "usage": Usage(input_tokens=11, output_tokens=22, cached_tokens=33, cost_usd=0.5),
        "explore": 3,
        "explore_mode": "first",
        "portfolio": ("claude-code:sonnet", "embedded:openai:gpt-5", 'we"ird,spec'),
        "model": "sonnet",
    }
    fields.update(changes)
    return Goal(**fields)  # type: ignore[arg-type]


def make_task(id: str = "t1", goal_id: str = "g-1", **changes: object) -> Task:
    fields: dict[str, object] = {
        "id": id,
        "goal_id": goal_id,
        "title": f"title {id}",
        "instructions": "do it\nwell",
        # quotes, backslashes, commas and non-ASCII survive the JSON columns
        "depends_on": ("t0", 'we"ird', "back\\slash", 'a","b', "ünï"),
        "priority": 5,
        "checks": (
            Check(kind="file_exists", path="src/x.py"),
            Check(kind="command", command="pytest -k x", timeout=12.5),
        ),
        "files": ("src/x.py", "src/y.py"),
        "state": TaskState.FAILED,
        "attempts": 2,
        "crashes": 1,
        "conflicts": 4,
        "recoveries": 6,
        "commit": "deadbeef",
        "origin": "recovery:t0",
        "guidance": "try harder",
        "root_cause": "typo",
        "reason": "tests failed",
        "allow_empty": True,
        "backend": "claude-code",
        "model": "haiku",
        "explore": 9,
    }
    fields.update(changes)
    return Task(**fields)  # type: ignore[arg-type]


def gate_result(name: str, **changes: object) -> GateResult:
    fields: dict[str, object] = {
        "name": name,
        "command": f"run {name}",
        "passed": False,
        "exit_code": 3,
        "duration": 1.5,
        "output_tail": "FAILED test_x",
        "timed_out": True,
        "preexisting": True,
        "new_failures": ("tests/test_x.py::test_a", "tests/test_x.py::test_b"),
    }
    fields.update(changes)
    return GateResult(**fields)  # type: ignore[arg-type]


def make_attempt(
    id: str = "a-1", goal_id: str = "g-1", task_id: str = "t1", **changes: object
) -> Attempt:
    fields: dict[str, object] = {
        "id": id,
        "goal_id": goal_id,
        "task_id": task_id,
        "number": 2,
        "state": AttemptState.CRASHED,
        "backend": "embedded",
        "worktree": "/tmp/wt",
        "base_sha": "base1",
        "commit": "c0ffee",
        "error": "boom",
        "summary": "did things",
        "gates": (gate_result("test"), gate_result("lint", passed=True, exit_code=None)),
        "diff_stat": "1 file changed",
        "usage": Usage(input_tokens=10, output_tokens=20, cached_tokens=30, cost_usd=0.125),
        "started_at": 10.5,
        "finished_at": 20.75,
        "model": "gpt-5",
        "candidate": 2,
        "ref": "refs/blitz/attempts/g-1/t1/2",
        "selected": True,
        "verdict": "the smallest diff that passes",
    }
    fields.update(changes)
    return Attempt(**fields)  # type: ignore[arg-type]


def make_recovery(id: str = "r-1", goal_id: str = "g-1", **changes: object) -> Recovery:
    fields: dict[str, object] = {
        "id": id,
        "goal_id": goal_id,
        "task_id": "t1",
        "attempt_id": "a-1",
        "root_cause": "missing import",
        "action": RecoveryAction.INSERT,
        "guidance": "import it",
        "new_tasks": ("t1-fix", "t1-fix2"),
        "created_at": 99.5,
    }
    fields.update(changes)
    return Recovery(**fields)  # type: ignore[arg-type]


def make_breaker(key: str = "backend:codex") -> BreakerRecord:
    return BreakerRecord(
        key=key, state=BreakerState.HALF_OPEN, failures=4, opened_at=12.5, last_error="503"
    )


def make_baseline(goal_id: str = "g-1") -> Baseline:
    return Baseline(
        goal_id=goal_id, sha="basesha", results=(gate_result("build"), gate_result("test"))
    )


def event(kind: EventKind = EventKind.TASK_STARTED, **fields: object) -> Event:
    return Event(kind=kind, **fields)  # type: ignore[arg-type]
