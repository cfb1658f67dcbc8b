"""Planning: a goal becomes a :class:`~blitz.domain.Plan`; a failure becomes a
:class:`~blitz.domain.RecoveryPlan`.

The :class:`Planner` protocol is what the engine calls. This module also reads declarative plan
files (YAML or JSON, see ``docs/plan-format.md``) into plans, turning every problem into one
:class:`~blitz.errors.PlanError` that lists them all. Graph rules (cycles, unknown dependencies,
size) are checked by :func:`blitz.dag.validate`, which :func:`check_plan` applies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blitz import dag
from blitz.domain import (
    Attempt,
    Check,
    GateResult,
    Plan,
    Recovery,
    RecoveryAction,
    RecoveryPlan,
    Task,
    TaskSpec,
    TaskState,
    Usage,
)
from blitz.errors import PlanError
from blitz.executors.ray.resources import check_name

Reasked = Callable[[str], None]
"""Told, in one line, each time a model planner asks again because an answer would not do
(``the answer repeated itself; asking again, 2 of 4``): a slow local model's re-asks are
minutes a person watching should see."""


class PlanningFailed(PlanError):
    """A model planner gave up: no answer would do. ``usage`` is what its calls cost, charged
    to the goal like any planning (a failed plan is not a free one)."""

    def __init__(self, problems: list[str], usage: Usage) -> None:
        super().__init__(problems)
        self.usage = usage


def spent(exc: BaseException) -> Usage:
    """What the planning that ended in ``exc`` cost (nothing known: an empty usage)."""
    return exc.usage if isinstance(exc, PlanningFailed) else Usage()


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRequest:
    goal_id: str
    goal: str
    repo: Path
    gates: dict[str, str] = field(default_factory=dict)  # the project's validation commands
    max_tasks: int = 200
    # Backend specs ("codex", "claude-code:sonnet") a task may be routed to; shown to a model
    # planner so it names only those. Empty: tasks keep the goal's backend and model.
    backends: tuple[str, ...] = ()
    # A follow-up goal: what the earlier goals it continues did (blitz.followups); ``repo`` is
    # then their branch as they left it. "" for a goal of its own.
    earlier: str = ""
    on_reask: Reasked | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryRequest:
    """Everything known about a failure: what the planner needs to find its root cause."""

    goal_id: str
    goal: str
    task: Task
    attempt: Attempt
    error: str  # one paragraph: what went wrong
    gates: tuple[GateResult, ...] = ()
    diff: str = ""
    messages: tuple[str, ...] = ()  # the agent's last messages
    earlier: tuple[Recovery, ...] = ()  # recoveries already tried for this task
    task_ids: tuple[str, ...] = ()  # ids already in the goal (new tasks must not reuse them)
    dependents: tuple[str, ...] = ()  # the tasks that depend on the failed one
    backends: tuple[str, ...] = ()  # the routes its tasks may take, as PlanRequest.backends
    # A task a recovery replaced -> the tasks in its place now: a new task that depends on it
    # depends on them (a small model named the task it knew, not what replaced it).
    replaced: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    on_reask: Reasked | None = field(default=None, compare=False, repr=False)


def replacements(tasks: Mapping[str, Task]) -> dict[str, tuple[str, ...]]:
    """Each task a recovery replaced -> the tasks in its place now: the last of those its
    recoveries added (none of the others depends on them), each replaced in turn by its own."""
    added: dict[str, list[Task]] = {}
    for t in tasks.values():
        if t.origin.startswith("recovery:"):
            added.setdefault(t.origin.removeprefix("recovery:"), []).append(t)

    def now(task_id: str, seen: frozenset[str]) -> tuple[str, ...]:
        task = tasks.get(task_id)
        if task is None or task.state is not TaskState.REPLACED or task_id in seen:
            return (task_id,)
        new = added.get(task_id, [])
        needed = {d for t in new for d in t.depends_on}
        last = [t.id for t in new if t.id not in needed]
        return tuple(dict.fromkeys(i for t in last for i in now(t, seen | {task_id})))

    return {t.id: now(t.id, frozenset()) for t in tasks.values() if t.state is TaskState.REPLACED}


FAILURE_SHOWN = 1_500
"""Characters of each failed gate's output (its end) in :func:`plain_retry`'s guidance."""


def plain_retry(request: RecoveryRequest, why: str) -> RecoveryPlan:
    """The recovery made when a planner has none to give (``why``: every answer of a model was
    unusable): the task again, its next agent shown how the last attempt failed (the error and
    the end of each gate that failed anew), which is the least a diagnosis would have said."""
    lines = [f"The previous attempt failed: {request.error or request.attempt.error or '?'}"]
    for gate in request.gates:
        if gate.passed or gate.preexisting:
            continue
        lines.append(f"`{gate.command}` ({gate.name}) failed; the end of its output:")
        tail = gate.output_tail.rstrip()[-FAILURE_SHOWN:]
        lines.append(tail or "(no output)")
    return RecoveryPlan(
        root_cause=f"{why}; the task is tried again with its failure shown",
        action=RecoveryAction.RETRY,
        guidance="\n".join(lines),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    plan: Plan
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    recovery: RecoveryPlan
    usage: Usage = field(default_factory=Usage)


class Planner(Protocol):
    name: str

    async def plan(self, request: PlanRequest) -> Planned: ...

    async def recover(self, request: RecoveryRequest) -> Recovered: ...


# -- plan files ------------------------------------------------------------------------------

MAX_ATTEMPTS = 10
"""The most best-of-N attempts a plan may ask for one task: each is a full agent run."""


class _CheckModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["file_exists", "command"]
    path: str = ""
    command: str = ""
    timeout: float = Field(default=300.0, gt=0)


class _TaskModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    instructions: str = ""
    depends_on: list[str] = Field(default_factory=list)
    priority: int = 0
    checks: list[_CheckModel] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    allow_empty: bool = False
    backend: str = ""
    model: str = ""
    attempts: int | None = Field(default=None, strict=True)  # strict: `true` is not 1
    labels: list[str] = Field(default_factory=list)


class _PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: str = ""
    tasks: list[_TaskModel]


class _RecoveryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root_cause: str
    action: RecoveryAction
    guidance: str = ""
    tasks: list[_TaskModel] = Field(default_factory=list)


def _specs(models: Sequence[_TaskModel]) -> tuple[TaskSpec, ...]:
    """The tasks as specs; PlanError listing what is wrong with any of them."""
    problems = [p for m in models for p in _task_problems(m)]
    if problems:
        raise PlanError(problems)
    return tuple(_spec(m) for m in models)


def _task_problems(model: _TaskModel) -> list[str]:
    """What the schema cannot say against one task. Backend and model names are not checked
    here: which exist depends on the configuration, and the engine checks them."""
    problems = []
    for c in model.checks:
        if c.kind == "file_exists" and not c.path:
            problems.append(f"task {model.id!r}: a file_exists check needs a 'path'")
        if c.kind == "command" and not c.command:
            problems.append(f"task {model.id!r}: a command check needs a 'command'")
    if model.attempts is not None and not 1 <= model.attempts <= MAX_ATTEMPTS:
        problems.append(
            f"task {model.id!r}: attempts must be from 1 to {MAX_ATTEMPTS}, not {model.attempts}"
        )
    for label in model.labels:
        try:
            check_name("label", label)
        except ValueError as exc:
            problems.append(f"task {model.id!r}: {exc}")
    return problems


def _spec(model: _TaskModel) -> TaskSpec:
    return TaskSpec(
        id=model.id,
        title=model.title,
        instructions=model.instructions or model.title,
        depends_on=tuple(model.depends_on),
        priority=model.priority,
        checks=tuple(
            Check(kind=c.kind, path=c.path, command=c.command, timeout=c.timeout)
            for c in model.checks
        ),
        files=tuple(model.files),
        allow_empty=model.allow_empty,
        backend=model.backend.strip(),
        model=model.model.strip(),
        attempts=model.attempts or 0,
        labels=tuple(dict.fromkeys(model.labels)),
    )


def _problems(exc: ValidationError, data: Any) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        # Name the task by its id rather than its index when we can.
        if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
            try:
                tid = data["tasks"][loc[1]].get("id")
            except (KeyError, IndexError, TypeError, AttributeError):
                tid = None
            if tid:
                where = f"task {tid!r}" + (
                    "." + ".".join(str(p) for p in loc[2:]) if loc[2:] else ""
                )
        problems.append(f"{where}: {err['msg']}")
    return problems


def parse_plan(data: Any, *, max_tasks: int = dag.MAX_NODES) -> Plan:
    """Turn already-decoded plan data (a mapping, or a bare list of tasks) into a checked Plan."""
    if isinstance(data, list):
        data = {"tasks": data}
    if not isinstance(data, dict):
        raise PlanError(["a plan must be a mapping with a 'tasks' list (or a list of tasks)"])
    try:
        model = _PlanModel.model_validate(data)
    except ValidationError as exc:
        raise PlanError(_problems(exc, data)) from exc
    plan = Plan(summary=model.summary, tasks=_specs(model.tasks))
    check_plan(plan.tasks, max_tasks=max_tasks)
    return plan


def parse_recovery(data: Any) -> RecoveryPlan:
    """Turn decoded recovery data into a RecoveryPlan (graph rules are checked on injection)."""
    if not isinstance(data, dict):
        raise PlanError(["a recovery plan must be a mapping with 'root_cause' and 'action'"])
    try:
        model = _RecoveryModel.model_validate(data)
    except ValidationError as exc:
        raise PlanError(_problems(exc, data)) from exc
    tasks = _specs(model.tasks)
    if model.action in (RecoveryAction.REPLACE, RecoveryAction.INSERT) and not tasks:
        raise PlanError([f"recovery action {model.action.value!r} needs at least one task"])
    return RecoveryPlan(
        root_cause=model.root_cause, action=model.action, guidance=model.guidance, tasks=tasks
    )


def check_plan(
    tasks: Sequence[TaskSpec], *, existing: Sequence[str] = (), max_tasks: int = dag.MAX_NODES
) -> None:
    """Apply the DAG rules to a plan's tasks; raise PlanError listing every problem."""
    dag.validate(
        [dag.Node(id=t.id, depends_on=t.depends_on, priority=t.priority) for t in tasks],
        existing=existing,
        max_nodes=max_tasks,
    )


def load_plan_file(path: Path, *, max_tasks: int = dag.MAX_NODES) -> Plan:
    """Read a YAML or JSON plan file (chosen by extension; YAML otherwise)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PlanError([f"plan file {path} does not exist"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError([f"cannot read plan file {path}: {exc}"]) from exc
    syntax: Literal["YAML", "JSON"] = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        return parse_plan_text(text, syntax=syntax, max_tasks=max_tasks)
    except PlanError as exc:
        raise PlanError([f"{path}: {p}" for p in exc.problems]) from exc


def parse_plan_text(
    text: str, *, syntax: Literal["YAML", "JSON"] = "YAML", max_tasks: int = dag.MAX_NODES
) -> Plan:
    """The checked Plan written in ``text``, the content of a plan file: YAML (JSON is YAML
    too) or JSON. A syntax error says where (line and column)."""
    try:
        data = json.loads(text) if syntax == "JSON" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PlanError([f"not valid {syntax}: {_syntax_problem(exc)}"]) from exc
    if data is None:
        raise PlanError(["the plan is empty"])
    return parse_plan(data, max_tasks=max_tasks)


def _syntax_problem(exc: json.JSONDecodeError | yaml.YAMLError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return str(exc)
    context = getattr(exc, "context", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" + (
        f" ({context})" if context else ""
    )


class FilePlanner:
    """Plans from a plan file given by the user; recovery is delegated to another planner."""

    name = "file"

    def __init__(self, plan: Plan, recovery: Planner) -> None:
        self._plan = plan
        self._recovery = recovery

    async def plan(self, request: PlanRequest) -> Planned:
        return Planned(plan=self._plan)

    async def recover(self, request: RecoveryRequest) -> Recovered:
        return await self._recovery.recover(request)
