"""What the MCP tools need from blitz, one method each, in the API's own shapes.

Two ways in implement it: :class:`~blitz.integrations.mcp.remote.RemoteAccess` (the daemon's
HTTP API, for ``blitz mcp``) and :class:`~blitz.integrations.mcp.local.LocalAccess` (the
daemon's own actions, for ``/mcp``). Both answer the API's response models
(:mod:`blitz.server.schemas`) and refuse with the same :class:`~blitz.errors.UserError`\\ s:
:class:`~blitz.actions.NotFound` (no such goal, project or task),
:class:`~blitz.actions.Conflict` (not now), :class:`NoDaemon` (nobody to ask), or a plain
UserError saying what was wrong with the request.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from blitz.errors import UserError

if TYPE_CHECKING:
    from blitz.domain import GoalState
    from blitz.server.inputs import GoalIn
    from blitz.server.schemas import (
        ActionOut,
        AttemptDetailOut,
        EventOut,
        GoalDetailOut,
        GoalOut,
        ProjectOut,
        TaskDetailOut,
    )


class NoDaemon(UserError):
    """No blitz daemon answers (not running, another URL), or it refused the token."""


class Action(StrEnum):
    """What a person may ask of a goal (:mod:`blitz.actions`)."""

    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RETRY = "retry"
    SKIP = "skip"


class Access(Protocol):
    """blitz as the MCP tools see it."""

    async def list_projects(self) -> list[ProjectOut]: ...

    async def add_project(self, path: str, name: str) -> ProjectOut:
        """Register the repository at ``path`` (absolute, on the daemon's machine), or answer
        the project it already is."""
        ...

    async def submit_goal(self, request: GoalIn) -> GoalDetailOut: ...

    async def list_goals(
        self, project: str, states: list[GoalState], limit: int
    ) -> list[GoalOut]: ...

    async def goal(self, key: str) -> GoalDetailOut: ...

    async def events(self, key: str, after: int, limit: int) -> list[EventOut]:
        """The goal's events after the id ``after``, oldest first."""
        ...

    async def task(self, key: str, task: str) -> TaskDetailOut: ...

    async def attempt(self, key: str, attempt: str) -> AttemptDetailOut:
        """One attempt, with the diff it committed."""
        ...

    async def act(self, key: str, action: Action, *, task: str = "", reason: str = "") -> ActionOut:
        """Apply ``action`` to the goal (``task``: for retry and skip)."""
        ...

    async def aclose(self) -> None: ...
