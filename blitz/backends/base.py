"""The agent backend interface.

A backend takes one task in one worktree and makes the changes the task asks for. It does not
commit, validate or integrate: the conductor does that. A backend reports the outcome as an
:class:`AgentResult`; it raises only for bugs. Outcomes:

* ``ok=True``: the agent says it finished (the gates still judge the work).
* ``ok=False, crashed=False``: the agent gave up or produced wrong work -> recovery.
* ``ok=False, crashed=True``: the machinery broke (process died) -> retried.
* ``ok=False, unavailable=True``: the model provider is down, overloaded or rate-limited -> the
  task waits ``retry_after`` seconds (or for the provider's breaker) and runs again; this is not
  the task's crash.
* ``ok=False, config_error="..."``: the user must fix something (a rejected API key, a spend cap,
  a missing CLI): the project is paused with that message; nothing is retried.

:attr:`AgentResult.outcome` names which of these a result is (:class:`Outcome`).
:func:`task_prompt` is the task as every agent is given it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from blitz.domain import Usage
from blitz.redact import redact


@dataclass(frozen=True, slots=True)
class GateCommand:
    """One of the project's gates, or a task's acceptance check, as an agent may run it before
    it finishes."""

    name: str  # build, typecheck, lint, test; or ACCEPTANCE
    command: str


ACCEPTANCE = "acceptance"
"""The name of a task's acceptance check that is a command, among the gates of a request."""


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
    allow_empty: bool = True  # False: the task must change a file (an attempt that does not fails)
    files: tuple[str, ...] = ()  # the files the plan expects the task to touch (a hint)
    previous_failure: str = ""  # a short account of what went wrong last time
    timeout: float = 1800.0
    model: str = ""  # "provider:model" for this attempt ("" = the backend's default)
    budget_usd: float | None = None  # the most this attempt may spend (None = no cap)
    # The project's gates that passed on the goal's base, in the order they run: the change is
    # judged by them after the run, so an agent may run them first; each may take gate_timeout.
    gates: tuple[GateCommand, ...] = ()
    gate_timeout: float = 600.0
    # Called with each model call's usage as it is spent, so what an attempt spent is counted
    # even when it is cancelled before it returns (a best-of-N candidate that lost the race).
    on_usage: Callable[[Usage], None] | None = None


class Outcome(StrEnum):
    """How an attempt's run ended, which decides what happens next."""

    SUCCEEDED = "succeeded"  # the agent says it finished; the gates judge the work
    FAILED = "failed"  # the work was wrong or given up: recovery
    CRASHED = "crashed"  # the machinery broke: retried
    UNAVAILABLE = "unavailable"  # the provider is out: the task waits, then runs again
    CONFIG_ERROR = "config_error"  # the user must act: the project is paused


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentResult:
    ok: bool
    summary: str = ""
    error: str = ""
    crashed: bool = False
    config_error: str = ""  # set when the user must act; the project is paused with it
    messages: tuple[str, ...] = ()  # the last messages of the agent, for failure context
    usage: Usage = field(default_factory=Usage)
    # What the run says of its model provider, for the provider's circuit breaker: True it
    # answered (whatever it said), False it failed (an outage), None it was never reached.
    reached: bool | None = None
    # The run ended because its model provider is out (the task waits, it did not fail), for
    # ``retry_after`` seconds (None: until the provider's breaker lets it).
    unavailable: bool = False
    retry_after: float | None = None

    @property
    def outcome(self) -> Outcome:
        if self.ok:
            return Outcome.SUCCEEDED
        if self.config_error:
            return Outcome.CONFIG_ERROR
        if self.unavailable:
            return Outcome.UNAVAILABLE
        return Outcome.CRASHED if self.crashed else Outcome.FAILED

    def redacted(self) -> AgentResult:
        """This result with every secret blitz knows taken out of its texts."""
        return dataclasses.replace(
            self,
            error=redact(self.error),
            summary=redact(self.summary),
            config_error=redact(self.config_error),
        )

    @classmethod
    def configuration(cls, message: str) -> AgentResult:
        """A result saying the user must fix ``message`` (the project is paused with it)."""
        return cls(ok=False, error=message, config_error=message)

    @classmethod
    def outage(cls, message: str, retry_after: float | None) -> AgentResult:
        """A result saying the provider is out: wait ``retry_after`` seconds, then run again."""
        return cls(ok=False, error=message, unavailable=True, retry_after=retry_after)


MessageSink = Callable[[str], Awaitable[None]]
"""Receives agent messages as they happen (shown live, stored as agent.message events)."""


class AgentBackend(Protocol):
    name: str

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        """Do the task's work in ``request.worktree``."""
        ...


def provider_of(backend: AgentBackend) -> str:
    """The model provider a backend calls (``anthropic``, ``openai``...), "" when it calls none
    or does not say. Backends that call one say so in a ``provider`` attribute; wrappers
    (``inner``) are looked through."""
    seen: object | None = backend
    while seen is not None:
        provider = getattr(seen, "provider", None)
        if isinstance(provider, str):
            return provider
        seen = getattr(seen, "inner", None)
    return ""


def task_prompt(request: AgentRequest, *, before: str = "", after: str = "") -> str:
    """The task as an agent is given it: what to do, the goal it serves, and on a retry what
    went wrong and recovery's advice; ``before`` and ``after`` are a backend's own words."""
    parts = [before] if before else []
    parts.append(f"Task {request.task_id}: {request.title}")
    if request.instructions.strip():
        parts.append(request.instructions.strip())
    parts.append(f"This task is one step towards the goal: {request.goal.strip()}")
    if request.attempt > 1:
        retry = f"This is attempt {request.attempt} at this task."
        if request.previous_failure.strip():
            retry += f" The previous attempt failed:\n{request.previous_failure.strip()}"
        parts.append(retry)
    if request.guidance.strip():
        parts.append(f"Advice for this attempt:\n{request.guidance.strip()}")
    if request.gates:
        listed = "\n".join(f"- {gate.name}: `{gate.command}`" for gate in request.gates)
        parts.append(
            "When you finish, your change is checked with these commands (run them yourself"
            f" first to see what they say):\n{listed}"
        )
    if after:
        parts.append(after)
    return "\n\n".join(parts)


def trim(text: str, limit: int) -> str:
    """``text`` at most about ``limit`` characters: its start and its end, where errors show."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters ...]\n{text[-half:]}"


def excerpt(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with "..." when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def lowest(*values: float | None) -> float | None:
    """The smallest of the values that are set; None when none is."""
    given = [v for v in values if v is not None]
    return min(given) if given else None
