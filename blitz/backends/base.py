"""The agent backend interface.

A backend takes one task in one worktree and makes the changes the task asks for. It does not
commit, validate or integrate: the conductor does that. A backend reports the outcome as an
:class:`AgentResult`; it raises only for bugs. Outcomes:

* ``ok=True``: the agent says it finished (the gates still judge the work).
* ``ok=False, crashed=False``: the agent gave up or produced wrong work -> recovery.
* ``ok=False, crashed=True``: the machinery broke (process died, provider outage) -> retried.
* ``ok=False, config_error="..."``: the user must fix something (a rejected API key, a spend cap,
  a missing CLI): the project is paused with that message; nothing is retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from blitz.domain import Usage


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRequest:
    goal_id: str
    goal: str  # the goal as the user wrote it
    task_id: str
    title: str
    instructions: str
    worktree: Path
    attempt: int = 1  # 1 for the first attempt of this task
    candidate: int = 0  # 1..N for a best-of-N candidate, 0 for a plain attempt
    guidance: str = ""  # recovery's advice for this retry
    previous_failure: str = ""  # a short account of what went wrong last time
    timeout: float = 1800.0
    model: str = ""  # "provider:model" for this attempt ("" = the backend's default)
    budget_usd: float | None = None  # the most this attempt may spend (None = no cap)
    # Called with each model call's usage as it is spent, so what an attempt spent is counted
    # even when it is cancelled before it returns (a best-of-N candidate that lost the race).
    on_usage: Callable[[Usage], None] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentResult:
    ok: bool
    summary: str = ""
    error: str = ""
    crashed: bool = False
    config_error: str = ""  # set when the user must act; the project is paused with it
    messages: tuple[str, ...] = ()  # the last messages of the agent, for failure context
    usage: Usage = field(default_factory=Usage)


MessageSink = Callable[[str], Awaitable[None]]
"""Receives agent messages as they happen (shown live, stored as agent.message events)."""


class AgentBackend(Protocol):
    name: str

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        """Do the task's work in ``request.worktree``."""
        ...
