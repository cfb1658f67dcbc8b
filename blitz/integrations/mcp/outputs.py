"""The structured output of the MCP tools: compact pydantic models a calling model reads, built
from the API's response models (:mod:`blitz.server.schemas`) whichever way in answered them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from blitz.server.schemas import (
    ActionOut,
    AttemptOut,
    EventOut,
    GoalDetailOut,
    GoalOut,
    ProjectOut,
    TaskOut,
)

ENDED = frozenset({"succeeded", "failed", "cancelled"})
"""Goal states that end a goal."""

ENDING_EVENTS = frozenset({"goal.succeeded", "goal.failed", "goal.cancelled"})


class Project(BaseModel):
    id: str
    name: str
    path: str
    base_branch: str
    backend: str
    require_plan_approval: bool
    paused: bool
    pause_reason: str
    cost_usd: float

    @classmethod
    def of(cls, p: ProjectOut) -> Project:
        return cls(
            id=p.id,
            name=p.name,
            path=p.path,
            base_branch=p.base_branch,
            backend=p.backend,
            require_plan_approval=p.require_plan_approval,
            paused=p.paused,
            pause_reason=p.pause_reason,
            cost_usd=p.usage.cost_usd,
        )


class Projects(BaseModel):
    projects: list[Project]


class Goal(BaseModel):
    """A goal as listed."""

    id: str
    project: str
    title: str
    state: str
    ended: bool
    branch: str
    pr_url: str = Field(description="The pull request (or where its description was written).")
    error: str
    tasks_done: int
    tasks_total: int
    cost_usd: float

    @classmethod
    def fields_of(cls, g: GoalOut) -> dict[str, object]:
        return {
            "id": g.id,
            "project": g.project,
            "title": g.title,
            "state": g.state,
            "ended": g.state in ENDED,
            "branch": g.branch,
            "pr_url": g.pr_url,
            "error": g.error,
            "tasks_done": g.progress.done,
            "tasks_total": g.progress.total,
            "cost_usd": g.cost_usd,
        }

    @classmethod
    def of(cls, g: GoalOut) -> Goal:
        return cls.model_validate(cls.fields_of(g))


class Goals(BaseModel):
    goals: list[Goal]


class Task(BaseModel):
    id: str
    title: str
    state: str
    depends_on: list[str]
    attempts: int
    commit: str
    reason: str = Field(description="Why it failed or was skipped.")

    @classmethod
    def of(cls, t: TaskOut) -> Task:
        return cls(
            id=t.id,
            title=t.title,
            state=t.state,
            depends_on=t.depends_on,
            attempts=t.attempts,
            commit=t.commit,
            reason=t.reason,
        )


class Attempt(BaseModel):
    id: str
    task_id: str
    number: int
    state: str
    backend: str
    model: str
    commit: str
    error: str
    duration: float
    cost_usd: float

    @classmethod
    def of(cls, a: AttemptOut) -> Attempt:
        return cls(
            id=a.id,
            task_id=a.task_id,
            number=a.number,
            state=a.state,
            backend=a.backend,
            model=a.model,
            commit=a.commit,
            error=a.error,
            duration=a.duration,
            cost_usd=a.usage.cost_usd,
        )


class GoalStatus(Goal):
    """A goal with its plan, tasks, attempts and cost, and what may be done next."""

    summary: str = Field(description="The plan's summary.")
    input_tokens: int
    output_tokens: int
    tasks: list[Task]
    attempts: list[Attempt]
    next: str = Field(description="What to do next, in a sentence.")

    @classmethod
    def of_detail(cls, g: GoalDetailOut) -> GoalStatus:
        return cls.model_validate(
            {
                **Goal.fields_of(g),
                "summary": g.summary,
                "input_tokens": g.usage.input_tokens,
                "output_tokens": g.usage.output_tokens,
                "tasks": [Task.of(t) for t in g.tasks],
                "attempts": [Attempt.of(a) for a in g.attempts],
                "next": _next(g),
            }
        )


def _next(g: GoalDetailOut) -> str:
    failed = [t.id for t in g.tasks if t.state == "failed"]
    match g.state:
        case "awaiting_approval":
            return "the plan waits for approval: approve_plan runs it, reject_plan ends the goal"
        case "succeeded":
            return f"done: the pull request is {g.pr_url}" if g.pr_url else "done"
        case "failed":
            retry = f"; retry_task on {', '.join(failed)} tries again" if failed else ""
            return f"the goal failed ({g.error or 'see goal_events'}){retry}"
        case "cancelled":
            return "the goal was cancelled"
        case _:
            return "running: goal_events (since the last id seen) follows it, cancel_goal stops it"


class Event(BaseModel):
    id: int
    ts: float
    kind: str
    task_id: str
    message: str

    @classmethod
    def of(cls, e: EventOut) -> Event:
        return cls(id=e.id, ts=e.ts, kind=e.kind, task_id=e.task_id, message=e.message)


class Events(BaseModel):
    goal_id: str
    events: list[Event]
    last_id: int = Field(description="Pass it as `since` to get the events after these.")
    ended: bool = Field(description="Whether one of these events ended the goal.")


class ActionResult(BaseModel):
    goal_id: str
    action: str
    applied: str = Field(
        description='"engine": done now; "queued": stored for the process driving the goal.'
    )

    @classmethod
    def of(cls, a: ActionOut) -> ActionResult:
        return cls(goal_id=a.goal_id, action=a.action, applied=a.applied)
