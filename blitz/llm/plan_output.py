"""What the planning model answers: typed plans and recovery plans, mirroring
``docs/plan-format.md``; the schemas the model is asked to fill."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from blitz.planner import MAX_ATTEMPTS


class CheckOutput(BaseModel):
    """An acceptance check run after the project's gates."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["file_exists", "command"]
    path: str = Field(default="", description="file_exists: a path relative to the repository root")
    command: str = Field(
        default="", description="command: a shell command run in the task's worktree; exit 0 passes"
    )
    timeout: float = Field(default=300.0, gt=0, description="seconds a command may take")


class TaskOutput(BaseModel):
    """One task, done by one coding agent that sees only its title and instructions."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="unique; 1-64 letters, digits, '.', '_' or '-', e.g. 'add-limiter'")
    title: str = Field(description="one line; becomes the commit message")
    instructions: str = Field(
        description="self-contained: what to change, where, and how to tell it is done"
    )
    depends_on: list[str] = Field(
        default_factory=list, description="ids of tasks whose changes this task needs"
    )
    priority: int = Field(default=0, description="higher runs first among ready tasks")
    files: list[str] = Field(
        default_factory=list, description="files the task is expected to touch (a hint)"
    )
    checks: list[CheckOutput] = Field(default_factory=list)
    allow_empty: bool = Field(
        default=False, description="true only if the task may rightly change no file"
    )
    backend: str = Field(
        default="",
        description="empty for the goal's agent; else a backend the instructions offer, for a "
        "task another agent does better",
    )
    model: str = Field(
        default="",
        description="empty for the default model; else the model the instructions pair with "
        "the backend: a cheaper one for a routine, mechanical task, a stronger one for a hard one",
    )
    attempts: int | None = Field(
        default=None,
        description=f"omit for most tasks; 2 or 3 (at most {MAX_ATTEMPTS}) for a risky task: "
        "that many agents try it side by side and the best passing result is kept",
    )

    @model_validator(mode="before")
    @classmethod
    def _titled(cls, data: Any) -> Any:
        """A task the model gave no title (small models forget it) is titled from its
        instructions' first sentence, else from its id; the schema still asks for one."""
        if isinstance(data, dict) and not data.get("title"):
            title = derived_title(str(data.get("instructions") or ""), str(data.get("id") or ""))
            if title:
                return {**data, "title": title}
        return data


TITLE_CHARS = 72
"""The longest title made up for a task given none (a commit subject's usual limit)."""


def derived_title(instructions: str, task_id: str) -> str:
    """A one-line title from a task's instructions (their first sentence), else its id."""
    sentence = re.split(r"(?<=[.!?])\s|\n", instructions.strip(), maxsplit=1)[0].rstrip(".")
    if not sentence:
        sentence = re.sub(r"[-_.]+", " ", task_id).strip().capitalize()
    if len(sentence) > TITLE_CHARS:
        sentence = sentence[: TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return sentence


def unwrapped(data: Any, fields: Any) -> Any:
    """An answer that echoes its JSON schema's shape with the values inside (``{"properties":
    {"summary": ..., "tasks": [...]}, "additionalProperties": false}``: what Qwen2.5-Coder-1.5B
    wrote when asked for prompted JSON, the schema shown above the question) read as the
    values; any other answer as it is."""
    if not isinstance(data, dict) or set(fields) & set(data):
        return data
    inner = data.get("properties")
    if isinstance(inner, dict) and set(fields) & set(inner):
        return inner
    return data


class PlanOutput(BaseModel):
    """The plan for the goal: a summary and the tasks."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="one or two sentences for the pull request")
    tasks: list[TaskOutput]

    @model_validator(mode="before")
    @classmethod
    def _values(cls, data: Any) -> Any:
        return unwrapped(data, cls.model_fields)


class RecoveryOutput(BaseModel):
    """The diagnosis of a failed task and what to do about it."""

    model_config = ConfigDict(extra="forbid")

    root_cause: str = Field(description="why the task failed, in a sentence or two")
    action: Literal["retry", "insert", "replace", "skip", "abort"]
    guidance: str = Field(
        default="", description="retry and insert: advice added to the failed task's instructions"
    )
    tasks: list[TaskOutput] = Field(
        default_factory=list, description="insert and replace: the new tasks; otherwise empty"
    )

    @model_validator(mode="before")
    @classmethod
    def _without_task_fields(cls, data: Any) -> Any:
        """A recovery given a task's fields beside its own (``allow_empty``, ``backend``...:
        small models mix the task format in) is read without them; other unknown keys are
        still sent back."""
        data = unwrapped(data, cls.model_fields)
        if not isinstance(data, dict):
            return data
        stray = (set(TaskOutput.model_fields) - set(cls.model_fields)) & set(data)
        return {k: v for k, v in data.items() if k not in stray} if stray else data
