"""The MCP server's tools and resources, defined once over an
:class:`~blitz.integrations.mcp.access.Access` (the daemon's API for ``blitz mcp``, its own
actions for ``/mcp``).

Every answer is structured (:mod:`.outputs`) and redacted (:func:`blitz.redact.redact_data`), the
MCP way out's one redaction step. What blitz refuses comes back as a tool error saying what was
wrong and what is valid (which tool lists the valid ids, which states allow the action);
arguments of the wrong shape are refused by the SDK against the tools' input schemas, naming
the field.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from pydantic import BaseModel, Field, ValidationError

from blitz.actions import Conflict, NotFound
from blitz.domain import GoalState
from blitz.errors import BlitzError, PlanError, UserError
from blitz.integrations.mcp.access import Access, Action, NoDaemon
from blitz.integrations.mcp.outputs import (
    ENDING_EVENTS,
    ActionResult,
    Event,
    Events,
    Goal,
    Goals,
    GoalStatus,
    Project,
    Projects,
)
from blitz.redact import redact, redact_data
from blitz.server.inputs import GoalIn
from blitz.server.schemas import AttemptOut, TaskDetailOut

NAME = "blitz"

INSTRUCTIONS = """\
blitz runs coding agents to completion on registered git repositories (projects): a goal is \
planned as a graph of tasks, each task is done by an agent, checked by the project's gates and \
committed, and the goal ends with a pull request. Start with list_projects (add_project \
registers a repository), then submit_goal; follow it with goal_status and goal_events (pass \
the last event id seen as `since`). A goal whose plan needs approval waits in \
awaiting_approval until approve_plan or reject_plan."""

M = TypeVar("M", bound=BaseModel)

GoalKey = Annotated[
    str,
    Field(min_length=1, description="The goal's id (g-...) or a unique prefix of it."),
]
TaskKey = Annotated[str, Field(min_length=1, description="The task's id, as goal_status shows.")]
ProjectKey = Annotated[
    str, Field(min_length=1, description="The project's name or id, as list_projects shows.")
]
RepoPath = Annotated[
    str, Field(min_length=1, description="The repository's absolute path on blitz's machine.")
]
Name = Annotated[str, Field(description="A name for it (default: the directory's).")]
Title = Annotated[
    str, Field(min_length=1, description="The goal: what to get done, in a sentence or more.")
]
Backend = Annotated[
    str,
    Field(description='The agent backend ("claude-code", "codex"...); default: the project\'s.'),
]
PlanText = Annotated[
    dict[str, Any] | str | None,
    Field(
        description="A plan instead of planning: the plan ({summary, tasks: [{id, title, "
        "instructions, depends_on...}]}, as in a plan file), or a plan file's text (YAML or JSON)."
    ),
]
Dirty = Annotated[
    bool, Field(description="Go ahead although the repository has uncommitted changes.")
]
Follows = Annotated[
    str,
    Field(
        description="An ended goal's id to continue: the new goal works on its branch and "
        "updates its pull request. Default: a new branch from the base branch."
    ),
]
Filter = Annotated[str, Field(description="Only this project's goals (name or id).")]
States = Annotated[list[GoalState], Field(description="Only goals in these states.")]
Limit = Annotated[int, Field(ge=1, le=500, description="At most this many, newest first.")]
Since = Annotated[int, Field(ge=0, description="Only events after this id (0: from the start).")]
EventLimit = Annotated[int, Field(ge=1, le=1000, description="At most this many.")]
Reason = Annotated[str, Field(description="Why, for the record.")]


def _clean(model: M) -> M:
    """``model`` with every string redacted."""
    return type(model).model_validate(redact_data(model.model_dump()))


def _refusal(exc: BlitzError, hint: str = "") -> ToolError:
    if isinstance(exc, NoDaemon):
        return ToolError(redact(str(exc)))
    if isinstance(exc, PlanError):
        problems = "; ".join(exc.problems)
        return ToolError(redact(f"{exc}" + (f" ({problems})" if problems else "")))
    if isinstance(exc, UserError):
        return ToolError(redact(f"{exc}" + (f"; {hint}" if hint else "")))
    return ToolError(redact(f"blitz could not do it: {exc}"))


async def _ask(call: Awaitable[M], hint: str = "") -> M:
    """``call``'s answer, redacted; what blitz refuses as a tool error carrying ``hint``."""
    try:
        return _clean(await call)
    except BlitzError as exc:
        raise _refusal(exc, hint) from exc


NO_GOAL = "list_goals shows the goals and their ids"
NO_PROJECT = "list_projects shows the projects (by name or id); add_project registers a repository"


def build(access: Access, *, version: str = "") -> MCPServer:
    """The MCP server of blitz over ``access``."""
    server: MCPServer = MCPServer(
        NAME,
        title="blitz",
        instructions=INSTRUCTIONS,
        version=version or importlib.metadata.version("blitz"),
        log_level="WARNING",
    )

    async def status(goal: str) -> GoalStatus:
        detail = await _ask(access.goal(goal), NO_GOAL)
        return GoalStatus.of_detail(detail)

    async def task_hint(goal: str) -> str:
        try:
            detail = await access.goal(goal)
        except BlitzError:
            return NO_GOAL
        ids = ", ".join(t.id for t in detail.tasks) or "none yet (the goal is being planned)"
        return f"goal {detail.id}'s tasks are: {ids}"

    async def act(goal: str, action: Action, *, task: str = "", reason: str = "") -> ActionResult:
        try:
            done = await access.act(goal, action, task=task, reason=reason)
        except NotFound as exc:
            hint = await task_hint(goal) if task and "task" in str(exc) else NO_GOAL
            raise _refusal(exc, hint) from exc
        except Conflict as exc:
            raise _refusal(exc, "goal_status shows the goal's state and tasks") from exc
        except BlitzError as exc:
            raise _refusal(exc) from exc
        return ActionResult.of(_clean(done))

    @server.tool()
    async def list_projects() -> Projects:
        """The repositories blitz works on (its projects)."""
        found = await _ask_list(access.list_projects())
        return Projects(projects=[Project.of(p) for p in found])

    @server.tool()
    async def add_project(path: RepoPath, name: Name = "") -> Project:
        """Register a git repository as a project (or answer the project it already is)."""
        return Project.of(await _ask(access.add_project(path, name)))

    @server.tool()
    async def submit_goal(
        project: ProjectKey,
        title: Title,
        backend: Backend = "",
        plan: PlanText = None,
        allow_dirty: Dirty = False,
        follows: Follows = "",
    ) -> GoalStatus:
        """Start a goal on a project: planned, run by agents, validated, committed, and ended
        with a pull request. Answers the new goal (its id is what the other tools take)."""
        try:
            request = GoalIn.model_validate(
                {"project": project, "title": title, "backend": backend, "plan": plan,
                 "allow_dirty": allow_dirty, "follows": follows}
            )  # fmt: skip
            detail = await access.submit_goal(request)
        except ValidationError as exc:
            raise ToolError(f"the plan is not a plan: {_errors(exc)}") from exc
        except NotFound as exc:
            raise _refusal(exc, NO_PROJECT) from exc
        except BlitzError as exc:
            raise _refusal(exc) from exc
        return GoalStatus.of_detail(_clean(detail))

    @server.tool()
    async def list_goals(
        project: Filter = "",
        state: States = [],  # noqa: B006 - never changed; the schema's default
        limit: Limit = 20,
    ) -> Goals:
        """Goals, newest first."""
        found = await _ask_list(access.list_goals(project, state, limit), NO_PROJECT)
        return Goals(goals=[Goal.of(g) for g in found])

    @server.tool()
    async def goal_status(goal: GoalKey) -> GoalStatus:
        """A goal's state, tasks, attempts and cost, and what may be done next."""
        return await status(goal)

    @server.tool()
    async def goal_events(goal: GoalKey, since: Since = 0, limit: EventLimit = 200) -> Events:
        """What happened to a goal, oldest first: every state change blitz made."""
        found = await _ask_list(access.events(goal, since, limit), NO_GOAL)
        events = [Event.of(e) for e in found]
        return Events(
            goal_id=found[0].goal_id if found else goal,
            events=events,
            last_id=events[-1].id if events else since,
            ended=any(e.kind in ENDING_EVENTS for e in events),
        )

    @server.tool()
    async def approve_plan(goal: GoalKey) -> ActionResult:
        """Run a goal whose plan waits for approval, as planned."""
        return await act(goal, Action.APPROVE)

    @server.tool()
    async def reject_plan(goal: GoalKey, reason: Reason = "") -> ActionResult:
        """End a goal whose plan waits for approval (it is cancelled)."""
        return await act(goal, Action.REJECT, reason=reason)

    @server.tool()
    async def cancel_goal(goal: GoalKey, reason: Reason = "") -> ActionResult:
        """Cancel a goal: queued tasks are dropped, running agents are stopped."""
        return await act(goal, Action.CANCEL, reason=reason)

    @server.tool()
    async def retry_task(goal: GoalKey, task: TaskKey) -> ActionResult:
        """Another attempt at a failed, skipped or cancelled task (reopens a failed goal)."""
        return await act(goal, Action.RETRY, task=task)

    @server.tool()
    async def skip_task(goal: GoalKey, task: TaskKey) -> ActionResult:
        """Drop a task; the tasks after it go on without it (reopens a failed goal)."""
        return await act(goal, Action.SKIP, task=task)

    @server.resource(
        "blitz://goals/{goal}",
        name="goal",
        description="A goal's status: state, tasks, attempts, cost, pull request (JSON).",
        mime_type="application/json",
    )
    async def goal_resource(goal: str) -> str:
        try:
            found = await status(goal)
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return json.dumps(found.model_dump(), indent=2)

    @server.resource(
        "blitz://goals/{goal}/tasks/{task}/diff",
        name="task diff",
        description="The change a task committed (its chosen attempt's diff).",
        mime_type="text/x-diff",
    )
    async def task_diff(goal: str, task: str) -> str:
        try:
            detail = await access.task(goal, task)
            attempt = _chosen(detail)
            if attempt is None:
                raise ResourceNotFoundError(f"task {task} of goal {goal} has no attempt yet")
            return redact((await access.attempt(goal, attempt.id)).diff)
        except NotFound as exc:
            raise ResourceNotFoundError(redact(f"{exc}; {NO_GOAL}")) from exc
        except BlitzError as exc:
            raise ResourceError(redact(str(exc))) from exc

    return server


async def _ask_list(call: Awaitable[list[M]], hint: str = "") -> list[M]:
    try:
        return [_clean(m) for m in await call]
    except BlitzError as exc:
        raise _refusal(exc, hint) from exc


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def _chosen(task: TaskDetailOut) -> AttemptOut | None:
    """The attempt whose change the task kept (its commit), else its latest one."""
    attempts = task.attempts_list
    if task.commit:
        for a in attempts:
            if a.commit == task.commit:
                return a
    return attempts[-1] if attempts else None
