"""The request bodies the API accepts. They are strict: unknown fields are refused, so a typo is
an error rather than ignored. docs/api.md describes the same shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_Request):
    token: str


class ProjectIn(_Request):
    path: str = Field(description="Absolute path of the repository on the daemon's machine.")
    name: str = ""


class GatesIn(_Request):
    build: str | None = None
    test: str | None = None
    typecheck: str | None = None
    lint: str | None = None
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class ProjectPatch(_Request):
    """Settings to change; fields left out stay as they are."""

    name: str | None = Field(default=None, min_length=1)
    base_branch: str | None = Field(default=None, min_length=1)
    remote: str | None = None
    backend: str | None = Field(default=None, min_length=1)
    fallback_backend: str | None = None
    model: str | None = None
    max_parallel: int | None = Field(default=None, ge=1)
    require_plan_approval: bool | None = None
    gates: GatesIn | None = None


class PauseIn(_Request):
    reason: str = "paused by the user"


class ReasonIn(_Request):
    reason: str = ""


class PlanIn(_Request):
    """A plan in the plan-file format (docs/plan-format.md); checked by blitz.planner."""

    model_config = ConfigDict(extra="allow")
    summary: str = ""
    tasks: list[dict[str, Any]]


class ApproveIn(_Request):
    """An edited plan to run instead of the one planned: the plan itself (``summary``,
    ``tasks``), or the text of a plan file (``plan``); neither: run it as planned."""

    model_config = ConfigDict(extra="allow")
    summary: str | None = None
    tasks: list[dict[str, Any]] | None = None
    plan: str | None = Field(
        default=None,
        description="The edited plan as the text of a plan file (YAML or JSON), read as "
        "`blitz run --plan` reads one; instead of `summary` and `tasks`.",
    )


class GoalIn(_Request):
    project: str = Field(description="Project id or name.")
    title: str = Field(min_length=1)
    backend: str = ""
    max_parallel: int = Field(default=0, ge=0)
    explore: int = Field(default=0, ge=0, le=10, description="Attempts per task (best of N).")
    explore_mode: Literal["", "all", "first"] = Field(
        default="", description='"all": wait for every attempt; "first": the first that passes.'
    )
    portfolio: list[str] = Field(
        default_factory=list,
        description='Backends (and models) to spread the attempts over, e.g. "codex".',
    )
    plan: PlanIn | str | None = Field(
        default=None,
        description="A plan instead of planning: the plan itself, or the text of a plan file "
        "(YAML or JSON), read as `blitz run --plan` reads one.",
    )
    allow_dirty: bool = False
    follows: str = Field(
        default="",
        description="An earlier goal (its id) to continue: the new goal works on its branch "
        "and updates its pull request. Refused while that goal is unfinished.",
    )


class RerunIn(_Request):
    """How to run an ended goal again."""

    replan: bool = Field(
        default=False, description="Plan the goal afresh instead of running the plan it ran."
    )
    allow_dirty: bool = False


class BreakerResetIn(_Request):
    key: str = Field(min_length=1)
