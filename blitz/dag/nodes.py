"""What the task graph is made of: nodes, their statuses and the legal moves between them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

MAX_NODES = 100_000
"""Default cap on the number of nodes in one graph."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One task as the graph sees it: its id, what it waits for, and how urgent it is."""

    id: str
    depends_on: tuple[str, ...] = ()
    priority: int = 0  # higher runs first; ties go to the node added first


class NodeLike(Protocol):
    """Anything with a node's three attributes (a :class:`Node`, or a stored task)."""

    @property
    def id(self) -> str: ...
    @property
    def depends_on(self) -> tuple[str, ...]: ...
    @property
    def priority(self) -> int: ...


class NodeStatus(StrEnum):
    WAITING = "waiting"  # some dependency is not satisfied yet
    READY = "ready"  # queued to run
    RUNNING = "running"
    DONE = "done"  # succeeded; satisfies its dependents
    FAILED = "failed"  # does not satisfy its dependents; may be retried
    SKIPPED = "skipped"  # work dropped on purpose; satisfies its dependents
    BLOCKED = "blocked"  # a dependency can never finish; does not satisfy its dependents
    REPLACED = "replaced"  # new nodes took over its dependents


_S = NodeStatus  # short alias for the tables and checks below

TRANSITIONS: Mapping[NodeStatus, frozenset[NodeStatus]] = {
    _S.WAITING: frozenset({_S.READY, _S.DONE, _S.SKIPPED, _S.BLOCKED, _S.REPLACED}),
    _S.READY: frozenset({_S.RUNNING, _S.WAITING, _S.DONE, _S.SKIPPED, _S.REPLACED}),
    _S.RUNNING: frozenset({_S.READY, _S.DONE, _S.FAILED, _S.SKIPPED}),
    _S.FAILED: frozenset({_S.READY, _S.WAITING, _S.SKIPPED, _S.REPLACED}),
    _S.DONE: frozenset(),
    _S.SKIPPED: frozenset(),
    _S.BLOCKED: frozenset(),
    _S.REPLACED: frozenset(),
}
"""Legal node transitions. WAITING/READY -> DONE exists only for resume reconciliation; READY and
FAILED -> WAITING happen when nodes are injected before a node."""

SATISFIED = frozenset({_S.DONE, _S.SKIPPED})
"""Statuses that let dependents run."""

ACTIVE = frozenset({_S.WAITING, _S.READY, _S.RUNNING})
"""Statuses of nodes that still have to settle before the graph is finished."""
