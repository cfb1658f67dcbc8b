"""The API's response models, and their making from domain records.

Response models are built only here, from the domain's frozen records (request bodies are
:mod:`blitz.server.inputs`). docs/api.md describes the same shapes for the dashboard.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel

from blitz import progress
from blitz.domain import (
    Attempt,
    BreakerRecord,
    GateResult,
    Goal,
    Plan,
    Project,
    Recovery,
    Task,
    Usage,
)
from blitz.events import Event


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float

    @classmethod
    def of(cls, usage: Usage) -> UsageOut:
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cost_usd=usage.cost_usd,
        )


class GatesOut(BaseModel):
    build: str
    test: str
    typecheck: str
    lint: str
    timeout: float


class ProjectOut(BaseModel):
    id: str
    name: str
    path: str
    base_branch: str
    remote: str
    backend: str
    fallback_backend: str
    model: str
    max_parallel: int
    require_plan_approval: bool
    paused: bool
    pause_reason: str
    gates: GatesOut
    config_file: str
    usage: UsageOut

    @classmethod
    def of(cls, project: Project, *, config_file: str, usage: Usage) -> ProjectOut:
        g = project.gates
        return cls(
            id=project.id,
            name=project.name,
            path=project.path,
            base_branch=project.base_branch,
            remote=project.remote,
            backend=project.backend,
            fallback_backend=project.fallback_backend,
            model=project.model,
            max_parallel=project.max_parallel,
            require_plan_approval=project.require_plan_approval,
            paused=project.paused,
            pause_reason=project.pause_reason,
            gates=GatesOut(
                build=g.build, test=g.test, typecheck=g.typecheck, lint=g.lint, timeout=g.timeout
            ),
            config_file=config_file,
            usage=UsageOut.of(usage),
        )


class Progress(BaseModel):
    done: int
    total: int
    by_state: dict[str, int]

    @classmethod
    def of(cls, tasks: list[Task]) -> Progress:
        """:func:`blitz.progress.of`: the one definition the CLI uses too."""
        found = progress.of(tasks)
        return cls(done=found.done, total=found.total, by_state=dict(found.by_state))


class GoalOut(BaseModel):
    id: str
    project_id: str
    project: str
    title: str
    state: str
    branch: str
    base_branch: str
    backend: str
    error: str
    pr_url: str
    progress: Progress
    cost_usd: float
    created_at: float
    finished_at: float
    age_seconds: float
    publish_state: str  # "", "pending" (to be retried) or "published"
    publish_error: str
    publish_attempts: int
    follows: str  # the earlier goal this one continues, on its branch and pull request ("")


def _goal_fields(goal: Goal, project_name: str, tasks: list[Task], spent: Usage) -> dict[str, Any]:
    return {
        "id": goal.id,
        "project_id": goal.project_id,
        "project": project_name,
        "title": goal.title,
        "state": goal.state.value,
        "branch": goal.branch,
        "base_branch": goal.base_branch,
        "backend": goal.backend,
        "error": goal.error,
        "pr_url": goal.pr_url,
        "progress": Progress.of(tasks),
        "cost_usd": spent.cost_usd,
        "created_at": goal.created_at,
        "finished_at": goal.finished_at,
        "age_seconds": max(0.0, (goal.finished_at or time.time()) - goal.created_at),
        "publish_state": goal.publish_state,
        "publish_error": goal.publish_error,
        "publish_attempts": goal.publish_attempts,
        "follows": goal.follows,
    }


def goal_out(goal: Goal, project_name: str, tasks: list[Task], spent: Usage) -> GoalOut:
    """A goal as listed; ``spent`` is everything it spent (attempts, planning, recovery)."""
    return GoalOut(**_goal_fields(goal, project_name, tasks, spent))


class TaskOut(BaseModel):
    id: str
    goal_id: str
    title: str
    state: str
    depends_on: list[str]
    priority: int
    attempts: int
    crashes: int
    conflicts: int
    recoveries: int
    commit: str
    origin: str
    reason: str
    root_cause: str
    allow_empty: bool
    backend: str
    model: str
    position: int
    labels: list[str]  # worker labels its attempts need (a remote executor's nodes)

    @classmethod
    def of(cls, t: Task) -> TaskOut:
        return cls(**_task_fields(t))


def _task_fields(t: Task) -> dict[str, Any]:
    return {
        "id": t.id,
        "goal_id": t.goal_id,
        "title": t.title,
        "state": t.state.value,
        "depends_on": list(t.depends_on),
        "priority": t.priority,
        "attempts": t.attempts,
        "crashes": t.crashes,
        "conflicts": t.conflicts,
        "recoveries": t.recoveries,
        "commit": t.commit,
        "origin": t.origin,
        "reason": t.reason,
        "root_cause": t.root_cause,
        "allow_empty": t.allow_empty,
        "backend": t.backend,
        "model": t.model,
        "position": t.position,
        "labels": list(t.labels),
    }


class RecoveryOut(BaseModel):
    id: str
    task_id: str
    attempt_id: str
    root_cause: str
    action: str
    guidance: str
    new_tasks: list[str]
    created_at: float

    @classmethod
    def of(cls, r: Recovery) -> RecoveryOut:
        return cls(
            id=r.id,
            task_id=r.task_id,
            attempt_id=r.attempt_id,
            root_cause=r.root_cause,
            action=r.action.value,
            guidance=r.guidance,
            new_tasks=list(r.new_tasks),
            created_at=r.created_at,
        )


class GoalDetailOut(GoalOut):
    summary: str
    base_sha: str
    runner: str
    driven_here: bool
    explore: int
    model: str
    models: dict[str, str]  # by role, as the goal was started (or last resumed)
    usage: UsageOut
    planning_usage: UsageOut
    tasks: list[TaskOut]
    recoveries: list[RecoveryOut]
    attempts: list[AttemptOut]  # every attempt of every task, best-of-N candidates included


def goal_detail(
    goal: Goal,
    project_name: str,
    tasks: list[Task],
    spent: Usage,
    recoveries: list[Recovery],
    *,
    driven_here: bool,
    attempts: list[Attempt] | None = None,
) -> GoalDetailOut:
    return GoalDetailOut(
        **_goal_fields(goal, project_name, tasks, spent),
        summary=goal.summary,
        base_sha=goal.base_sha,
        runner=goal.runner,
        driven_here=driven_here,
        explore=goal.explore,
        model=goal.model,
        models=goal.model_map(),
        usage=UsageOut.of(spent),
        planning_usage=UsageOut.of(goal.usage),
        tasks=[TaskOut.of(t) for t in tasks],
        recoveries=[RecoveryOut.of(r) for r in recoveries],
        attempts=[AttemptOut.of(a) for a in attempts or ()],
    )


class CheckOut(BaseModel):
    kind: str
    path: str
    command: str
    timeout: float


class AttemptOut(BaseModel):
    id: str
    goal_id: str
    task_id: str
    number: int
    state: str
    backend: str
    model: str
    commit: str
    error: str
    started_at: float
    finished_at: float
    duration: float
    usage: UsageOut
    gates_passed: bool
    candidate: int
    selected: bool
    verdict: str  # best-of-N: why this candidate won or lost
    ref: str  # best-of-N: the git ref keeping this candidate's commit

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls(**_attempt_fields(a))


def _attempt_fields(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "goal_id": a.goal_id,
        "task_id": a.task_id,
        "number": a.number,
        "state": a.state.value,
        "backend": a.backend,
        "model": a.model,
        "commit": a.commit,
        "error": a.error,
        "started_at": a.started_at,
        "finished_at": a.finished_at,
        "duration": max(0.0, a.finished_at - a.started_at) if a.finished_at else 0.0,
        "usage": UsageOut.of(a.usage),
        "gates_passed": all(g.passed or g.preexisting for g in a.gates),
        "candidate": a.candidate,
        "selected": a.selected,
        "verdict": a.verdict,
        "ref": a.ref,
    }


class TaskDetailOut(TaskOut):
    instructions: str
    guidance: str
    files: list[str]
    checks: list[CheckOut]
    attempts_list: list[AttemptOut]
    recoveries_list: list[RecoveryOut]


def task_detail(t: Task, attempts: list[Attempt], recoveries: list[Recovery]) -> TaskDetailOut:
    return TaskDetailOut(
        **_task_fields(t),
        instructions=t.instructions,
        guidance=t.guidance,
        files=list(t.files),
        checks=[
            CheckOut(kind=c.kind, path=c.path, command=c.command, timeout=c.timeout)
            for c in t.checks
        ],
        attempts_list=[AttemptOut.of(a) for a in attempts],
        recoveries_list=[RecoveryOut.of(r) for r in recoveries if r.task_id == t.id],
    )


class GateOut(BaseModel):
    name: str
    command: str
    passed: bool
    exit_code: int | None
    duration: float
    output: str
    timed_out: bool
    preexisting: bool
    new_failures: list[str]
    reused: bool  # an earlier run's result on the same tree, command and set-up inputs

    @classmethod
    def of(cls, g: GateResult) -> GateOut:
        return cls(
            name=g.name,
            command=g.command,
            passed=g.passed,
            exit_code=g.exit_code,
            duration=g.duration,
            output=g.output_tail,
            timed_out=g.timed_out,
            preexisting=g.preexisting,
            new_failures=list(g.new_failures),
            reused=g.reused,
        )


class TranscriptLine(BaseModel):
    id: int
    ts: float
    message: str


class AttemptDetailOut(AttemptOut):
    summary: str
    base_sha: str
    diff_stat: str
    diff: str
    gates: list[GateOut]
    transcript: list[TranscriptLine]


def attempt_detail(a: Attempt, transcript: list[Event]) -> AttemptDetailOut:
    return AttemptDetailOut(
        **_attempt_fields(a),
        summary=a.summary,
        base_sha=a.base_sha,
        diff_stat=a.diff_stat,
        diff=a.diff,
        gates=[GateOut.of(g) for g in a.gates],
        transcript=[TranscriptLine(id=e.id, ts=e.ts, message=e.message) for e in transcript],
    )


class EventOut(BaseModel):
    id: int
    ts: float
    kind: str
    goal_id: str
    task_id: str
    attempt_id: str
    project_id: str
    message: str
    data: dict[str, Any]


def event_data(e: Event) -> dict[str, Any]:
    """An event as the JSON object of docs/api.md (not yet redacted)."""
    return {
        "id": e.id,
        "ts": e.ts,
        "kind": e.kind.value,
        "goal_id": e.goal_id,
        "task_id": e.task_id,
        "attempt_id": e.attempt_id,
        "project_id": e.project_id,
        "message": e.message,
        "data": dict(e.data),
    }


class BreakerOut(BaseModel):
    key: str
    state: str
    failures: int
    opened_at: float
    last_error: str
    retry_in: float | None

    @classmethod
    def of(cls, record: BreakerRecord, retry_in: float | None) -> BreakerOut:
        return cls(
            key=record.key,
            state=record.state.value,
            failures=record.failures,
            opened_at=record.opened_at,
            last_error=record.last_error,
            retry_in=retry_in,
        )


class ActionOut(BaseModel):
    goal_id: str
    action: str
    applied: Literal["engine", "queued"]


class HealthOut(BaseModel):
    status: Literal["ok", "draining"]
    version: str


# -- plans ---------------------------------------------------------------------------------------


def plan_data(plan: Plan) -> dict[str, Any]:
    """``plan`` in the plan-file format (what :func:`blitz.planner.parse_plan` reads back)."""
    tasks = []
    for t in plan.tasks:
        task: dict[str, Any] = {"id": t.id, "title": t.title, "instructions": t.instructions}
        if t.depends_on:
            task["depends_on"] = list(t.depends_on)
        if t.priority:
            task["priority"] = t.priority
        if t.files:
            task["files"] = list(t.files)
        if t.allow_empty:
            task["allow_empty"] = True
        if t.checks:
            task["checks"] = [
                {"kind": c.kind, "timeout": c.timeout}
                | ({"path": c.path} if c.path else {})
                | ({"command": c.command} if c.command else {})
                for c in t.checks
            ]
        for name in ("backend", "model"):
            if getattr(t, name):
                task[name] = getattr(t, name)
        if t.attempts:
            task["attempts"] = t.attempts
        if t.labels:
            task["labels"] = list(t.labels)
        tasks.append(task)
    return {"summary": plan.summary, "tasks": tasks}
