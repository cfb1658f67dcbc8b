"""A goal's task graph: validation, scheduling order and node status bookkeeping.

Pure graph logic with no I/O, so the conductor drives it and tests exercise it exhaustively. Built
for 100,000 nodes: nodes live in parallel lists indexed by insertion order, each node counts its
unsatisfied dependencies, and ready nodes wait in a heap, so a scheduling call costs O(log n) plus
the degree of the node it touches. Only :meth:`Dag.block_unreachable` and :meth:`Dag.order` scan
the whole graph.

Invariants:

* the graph is acyclic and every dependency names a node of the graph;
* ``j`` is in ``_deps[i]`` exactly when ``i`` is in ``_dependents[j]``;
* ``_unmet[i]`` counts the dependencies of ``i`` that are neither DONE nor SKIPPED;
* a WAITING node has ``_unmet > 0``; a READY or RUNNING node has ``_unmet == 0``;
* every READY node has an entry in the heap; entries of nodes that left READY are dropped when
  they come to the top, and ``_queued`` keeps a node from having two entries at once.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, deque
from collections.abc import Collection, Container, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from blitz.domain import IllegalTransition
from blitz.errors import PlanError

MAX_NODES = 100_000
"""Default cap on the number of nodes in one graph."""

_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


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

_STATUS_VALUES = frozenset(status.value for status in NodeStatus)
_REWIRABLE = (_S.FAILED, _S.WAITING, _S.READY)  # targets of inject(before=...) and (replace=...)


def validate(
    nodes: Sequence[Node], *, existing: Collection[str] = (), max_nodes: int = MAX_NODES
) -> None:
    """Raise PlanError listing every problem of ``nodes``, to be added to ``existing`` ids.

    Nodes may depend on each other in any order and on existing ids. Cycles are named with arrows
    from a node to one of its dependencies: ``cycle: a -> b -> a``.
    """
    known = existing if isinstance(existing, Set | Mapping) else set(existing)
    problems = _problems(nodes, known, len(existing) + len(nodes), max_nodes)
    if not nodes and not existing:
        problems.insert(0, "the plan has no tasks")
    if problems:
        raise PlanError(problems)


def _problems(
    nodes: Sequence[NodeLike], existing: Container[str], total: int, max_nodes: int
) -> list[str]:
    problems: list[str] = []
    if total > max_nodes:
        problems.append(f"the plan has {total} tasks; the limit is {max_nodes}")
    first: dict[str, int] = {}  # id -> position of its first occurrence
    duplicates: set[str] = set()
    for position, node in enumerate(nodes):
        if not node.id:
            problems.append(f"task #{position + 1} has an empty id")
            continue
        if not _ID.fullmatch(node.id):
            problems.append(
                f"task id {node.id!r} is invalid: use 1-64 characters from A-Z, a-z, 0-9, "
                "'.', '_' and '-'"
            )
        if node.id in existing:
            problems.append(f"task id {node.id!r} already exists")
        elif node.id not in first:
            first[node.id] = position
        elif node.id not in duplicates:
            duplicates.add(node.id)
            problems.append(f"duplicate task id {node.id!r}")
    for node in nodes:
        deps = node.depends_on
        if not deps:
            continue
        if node.id in deps:
            problems.append(f"task {node.id!r} depends on itself")
        unknown = [dep for dep in deps if dep not in first and dep not in existing]
        problems.extend(
            f"task {node.id!r} depends on unknown task {dep!r}"
            for dep in dict.fromkeys(unknown)
            if dep != node.id
        )
        if len(deps) > 1 and len(set(deps)) != len(deps):
            tally = Counter(deps)
            problems.extend(
                f"task {node.id!r} lists dependency {dep!r} more than once"
                for dep, n in tally.items()
                if n > 1
            )
    problems.extend("cycle: " + " -> ".join(cycle) for cycle in _cycles(nodes, first))
    return problems


def _cycles(nodes: Sequence[NodeLike], first: Mapping[str, int]) -> list[list[str]]:
    """One cycle per strongly connected component (Tarjan, iterative); self-loops left out."""
    edges = [
        [first[dep] for dep in node.depends_on if dep in first and dep != node.id]
        if first.get(node.id) == position
        else []
        for position, node in enumerate(nodes)
    ]
    # Most plans list every task after its dependencies: then no edge points forward, so there
    # is no cycle, and one pass over the edges saves the search.
    if all(max(targets, default=-1) < position for position, targets in enumerate(edges)):
        return []
    index = [-1] * len(edges)
    low = [0] * len(edges)
    on_stack = [False] * len(edges)
    stack: list[int] = []
    found: list[list[int]] = []
    counter = 0
    for root in range(len(edges)):
        if index[root] >= 0:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]
        while work:
            v, next_edge = work[-1]
            if next_edge < len(edges[v]):
                work[-1] = (v, next_edge + 1)
                w = edges[v][next_edge]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(_cycle_within(component, edges))
    found.sort()
    return [[nodes[i].id for i in (*cycle, cycle[0])] for cycle in found]


def _cycle_within(component: list[int], edges: list[list[int]]) -> list[int]:
    """Walk edges inside a strongly connected component until a node repeats."""
    members = set(component)
    path: list[int] = []
    position: dict[int, int] = {}
    v = min(component)
    while v not in position:
        position[v] = len(path)
        path.append(v)
        v = next(w for w in edges[v] if w in members)
    cycle = path[position[v] :]
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]


class Dag:
    """The task graph of one goal and the status of every node in it."""

    __slots__ = (
        "_block_roots",
        "_counts",
        "_dependents",
        "_deps",
        "_heap",
        "_ids",
        "_index",
        "_max_nodes",
        "_priority",
        "_queued",
        "_status",
        "_unmet",
    )

    def __init__(
        self, nodes: Iterable[NodeLike] = (), *, max_nodes: int = MAX_NODES, check: bool = True
    ) -> None:
        """Build a graph whose nodes all start WAITING or READY; raise PlanError if invalid.

        ``check=False`` skips the validation for nodes that were just validated (the plan that
        :func:`validate` accepted), as :meth:`restore` does for a graph read back."""
        self._max_nodes = max_nodes
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._priority: list[int] = []
        self._deps: list[tuple[int, ...]] = []
        self._dependents: list[list[int]] = []
        self._status: list[NodeStatus] = []
        self._unmet: list[int] = []
        self._queued = bytearray()
        self._heap: list[tuple[int, int]] = []  # (-priority, index): smallest runs first
        self._counts = dict.fromkeys(NodeStatus, 0)
        self._block_roots: dict[int, str] = {}  # a BLOCKED node -> the failure behind it
        given = list(nodes)
        problems = _problems(given, (), len(given), max_nodes) if check else []
        if problems:
            raise PlanError(problems)
        self._append(given, {})

    @classmethod
    def restore(
        cls,
        nodes: Iterable[NodeLike],
        statuses: Mapping[str, NodeStatus],
        *,
        max_nodes: int = MAX_NODES,
        check: bool = True,
    ) -> Dag:
        """Rebuild a graph after a restart. RUNNING nodes are queued again, WAITING and READY are
        recomputed from the dependencies, and nodes missing from ``statuses`` count as WAITING.

        ``check=False`` skips the full graph validation (cycles and all) for a graph that was
        validated when it was made, such as one read back from blitz's own store; unknown ids
        and statuses are still refused."""
        given = list(nodes)
        problems = _problems(given, (), len(given), max_nodes) if check else []
        ids = {node.id for node in given}
        if statuses.keys() <= ids and set(map(type, statuses.values())) <= {NodeStatus}:
            dag = cls(max_nodes=max_nodes)  # the usual case, checked in bulk
            dag._append(given, statuses)
            return dag
        known: dict[str, NodeStatus] = {}
        for id, value in statuses.items():
            if id not in ids:
                problems.append(f"a status is given for unknown task {id!r}")
            elif value not in _STATUS_VALUES:
                problems.append(f"task {id!r} has an unknown status {value!r}")
            else:
                known[id] = NodeStatus(value)
        if problems:
            raise PlanError(problems)
        dag = cls(max_nodes=max_nodes)
        dag._append(given, known)
        return dag

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id: object) -> bool:
        return id in self._index

    def __repr__(self) -> str:
        counts = ", ".join(f"{status}={n}" for status, n in self._counts.items() if n)
        return f"<Dag {len(self)} nodes: {counts}>"

    def status(self, id: str) -> NodeStatus:
        return self._status[self._lookup(id)]

    def node(self, id: str) -> Node:
        """The node as it stands now (injections may have rewired its dependencies)."""
        i = self._lookup(id)
        return Node(
            id=id,
            depends_on=tuple(self._ids[d] for d in self._deps[i]),
            priority=self._priority[i],
        )

    def dependents(self, id: str) -> tuple[str, ...]:
        """The ids of the nodes that depend on ``id``."""
        return tuple(self._ids[d] for d in self._dependents[self._lookup(id)])

    def pop_ready(self, limit: int | None = None) -> list[str]:
        """Take up to ``limit`` READY nodes (all if None), highest priority first; they run."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        popped: list[str] = []
        while self._heap and (limit is None or len(popped) < limit):
            _, i = heapq.heappop(self._heap)
            self._queued[i] = False
            if self._status[i] is _S.READY:
                self._set(i, _S.RUNNING)
                popped.append(self._ids[i])
        return popped

    def peek_ready_count(self) -> int:
        return self._counts[_S.READY]

    def running_count(self) -> int:
        return self._counts[_S.RUNNING]

    def counts(self) -> dict[NodeStatus, int]:
        """How many nodes have each status (every status is present)."""
        return dict(self._counts)

    def requeue(self, id: str) -> None:
        """Put a RUNNING node back in the queue (an integration conflict, a resumed run)."""
        self._set(self._check(id, "requeue", (_S.RUNNING,)), _S.READY)

    def complete(self, id: str) -> list[str]:
        """Mark a node DONE and return the dependents that became READY, in priority order.

        WAITING and READY nodes may be completed too: on resume, the goal branch may already carry
        a node's work."""
        i = self._check(id, "complete", (_S.RUNNING, _S.READY, _S.WAITING))
        self._set(i, _S.DONE)
        return self._release(i)

    def fail(self, id: str) -> None:
        self._set(self._check(id, "fail", (_S.RUNNING,)), _S.FAILED)

    def retry(self, id: str) -> None:
        """Queue a FAILED node again (or let it wait, if a dependency is not satisfied)."""
        i = self._check(id, "retry", (_S.FAILED,))
        self._set(i, _S.READY if self._unmet[i] == 0 else _S.WAITING)

    def skip(self, id: str) -> list[str]:
        """Drop a node's work on purpose; its dependents go on without it. Returns the dependents
        that became READY. Skipping a RUNNING node leaves stopping its attempt to the caller."""
        i = self._check(id, "skip", (_S.WAITING, _S.READY, _S.RUNNING, _S.FAILED))
        self._set(i, _S.SKIPPED)
        return self._release(i)

    def inject(
        self, nodes: Sequence[Node], *, before: str | None = None, replace: str | None = None
    ) -> list[str]:
        """Add nodes while the graph runs and return the new nodes that are READY at once.

        New nodes may depend on existing nodes and on each other. The *sinks* are the new nodes no
        other new node depends on. ``before=T`` makes T depend on the sinks as well (a FAILED T is
        retried once they are done); ``replace=T`` marks T REPLACED and puts the sinks in T's place
        in its dependents. On any problem the graph is left unchanged: PlanError for the nodes,
        IllegalTransition if T may not be rewired, KeyError if T is unknown.
        """
        if before is not None and replace is not None:
            raise ValueError("inject takes before or replace, not both")
        target: int | None = None
        if before is not None:
            target = self._check(before, "inject before", _REWIRABLE)
        elif replace is not None:
            target = self._check(replace, "replace", _REWIRABLE)
        given = list(nodes)
        problems = _problems(given, self._index, len(self) + len(given), self._max_nodes)
        if not given:
            problems.append("there are no tasks to inject")
        for node in given:
            for dep in dict.fromkeys(node.depends_on):
                j = self._index.get(dep)
                if j is not None and j == target and replace is not None:
                    problems.append(f"task {node.id!r} depends on {dep!r}, which it replaces")
                elif j is not None and self._status[j] is _S.REPLACED:
                    problems.append(f"task {node.id!r} depends on {dep!r}, which was replaced")
        if problems:
            raise PlanError(problems)
        depended = {dep for node in given for dep in node.depends_on}
        sinks = [node.id for node in given if node.id not in depended]
        if target is not None:
            # The sinks will be dependencies of T (before) or of T's dependents (replace): if any
            # of those is already an ancestor of a sink, the new edges would close a cycle.
            goals = {target} if before is not None else set(self._dependents[target])
            cycle = self._path_to(goals, sinks, {node.id: node for node in given})
            if cycle:
                raise PlanError(["cycle: " + " -> ".join(cycle)])
        ready = self._append(given, {})
        sink_indices = tuple(self._index[id] for id in sinks)
        if target is not None and before is not None:
            self._deps[target] += sink_indices
            for s in sink_indices:
                self._dependents[s].append(target)
            self._unmet[target] += len(sink_indices)  # new nodes are never satisfied yet
            if self._status[target] is not _S.WAITING:
                self._set(target, _S.WAITING)
        elif target is not None:
            for d in self._dependents[target]:
                self._deps[d] = tuple(
                    s for dep in self._deps[d] for s in (sink_indices if dep == target else (dep,))
                )
                for s in sink_indices:
                    self._dependents[s].append(d)
                self._unmet[d] += len(sink_indices) - 1  # T never satisfied them; sinks don't yet
            self._dependents[target] = []
            self._set(target, _S.REPLACED)
        return self._sorted_ids(ready)

    def finished(self) -> bool:
        """True when no node is WAITING, READY or RUNNING."""
        return not any(self._counts[status] for status in ACTIVE)

    def deadlocked(self) -> bool:
        """True when nodes wait but nothing runs or is ready: they wait on nodes that cannot
        finish (FAILED, BLOCKED or REPLACED)."""
        counts = self._counts
        return counts[_S.WAITING] > 0 and counts[_S.READY] == 0 and counts[_S.RUNNING] == 0

    def block_unreachable(self) -> dict[str, str]:
        """Mark BLOCKED every WAITING node that depends, directly or not, on a FAILED, BLOCKED or
        REPLACED node, and return why for each: ``{id: "depends on failed task 'b'"}``.

        FAILED nodes count as final here: call this when no retry will come, typically when
        :meth:`deadlocked` is true, after which the graph is finished. Reasons name the blocked
        dependency and the root of its chain, never the whole chain."""
        roots = [i for i, status in enumerate(self._status) if status in (_S.FAILED, _S.REPLACED)]
        roots += [i for i, status in enumerate(self._status) if status is _S.BLOCKED]
        queue = deque(roots)  # direct failures first, so they win over longer chains
        reasons: dict[str, str] = {}
        while queue:
            i = queue.popleft()
            for d in self._dependents[i]:
                if self._status[d] is not _S.WAITING:
                    continue
                reason, root = self._blame(i)
                self._set(d, _S.BLOCKED)
                self._block_roots[d] = root
                reasons[self._ids[d]] = reason
                queue.append(d)
        return reasons

    def order(self) -> list[str]:
        """All ids in a topological order (dependencies first); among nodes free to go next, the
        one added first goes first, so an already ordered plan keeps its order."""
        missing = [len(deps) for deps in self._deps]
        heap = [i for i, n in enumerate(missing) if n == 0]  # ascending, so already a heap
        result: list[str] = []
        while heap:
            i = heapq.heappop(heap)
            result.append(self._ids[i])
            for d in self._dependents[i]:
                missing[d] -= 1
                if missing[d] == 0:
                    heapq.heappush(heap, d)
        return result

    def _lookup(self, id: str) -> int:
        try:
            return self._index[id]
        except KeyError:
            raise KeyError(f"unknown task {id!r}") from None

    def _check(self, id: str, verb: str, allowed: tuple[NodeStatus, ...]) -> int:
        """The index of ``id`` if its status is one of ``allowed``, else IllegalTransition."""
        i = self._lookup(id)
        if self._status[i] not in allowed:
            raise IllegalTransition(
                f"cannot {verb} task {id!r}: it is {self._status[i]}, not {' or '.join(allowed)}"
            )
        return i

    def _set(self, i: int, new: NodeStatus) -> None:
        old = self._status[i]
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(f"task {self._ids[i]!r} cannot go from {old} to {new}")
        self._status[i] = new
        self._counts[old] -= 1
        self._counts[new] += 1
        if new is _S.READY:
            self._enqueue(i)

    def _enqueue(self, i: int) -> None:
        if not self._queued[i]:
            self._queued[i] = True
            heapq.heappush(self._heap, (-self._priority[i], i))

    def _release(self, i: int) -> list[str]:
        """Tell the dependents of a node that just got satisfied; return those now READY."""
        ready = []
        for d in self._dependents[i]:
            self._unmet[d] -= 1
            if self._unmet[d] == 0 and self._status[d] is _S.WAITING:
                self._set(d, _S.READY)
                ready.append(d)
        return self._sorted_ids(ready)

    def _sorted_ids(self, indices: list[int]) -> list[str]:
        indices.sort(key=lambda i: (-self._priority[i], i))
        return [self._ids[i] for i in indices]

    def _append(self, nodes: Sequence[NodeLike], statuses: Mapping[str, NodeStatus]) -> list[int]:
        """Add validated nodes; keep the given final statuses and settle every other node as
        WAITING or READY. Returns the indices of the new READY nodes."""
        start = len(self._ids)
        index, dependents, status_of = self._index, self._dependents, self._status
        ids = [node.id for node in nodes]
        index.update(zip(ids, range(start, start + len(ids)), strict=True))
        self._ids += ids
        self._priority += [node.priority for node in nodes]
        dependents += [[] for _ in ids]
        self._queued += bytes(len(ids))
        new_deps = [tuple([index[dep] for dep in node.depends_on]) for node in nodes]
        self._deps += new_deps
        for i, deps in enumerate(new_deps, start):
            for dep in deps:
                dependents[dep].append(i)
        if statuses:
            given = [statuses.get(id, _S.WAITING) for id in ids]
            status_of += [_S.WAITING if status in ACTIVE else status for status in given]
        else:
            status_of += [_S.WAITING] * len(ids)
        satisfied = SATISFIED
        unmet = [
            len([dep for dep in deps if status_of[dep] not in satisfied]) if deps else 0
            for deps in new_deps
        ]
        self._unmet += unmet
        ready = []
        for i, missing in enumerate(unmet, start):
            if missing == 0 and status_of[i] is _S.WAITING:
                status_of[i] = _S.READY
                self._enqueue(i)
                ready.append(i)
        counts = self._counts
        for status, n in Counter(status_of[start:]).items():
            counts[status] += n
        return ready

    def _blame(self, i: int) -> tuple[str, str]:
        """Why a dependent of node ``i`` is blocked, and the root cause to hand further down."""
        id, status = self._ids[i], self._status[i]
        if status is _S.BLOCKED:
            root = self._block_roots.get(i)
            if root is not None:
                return f"depends on blocked task {id!r} ({root})", root
        reason = f"depends on {status} task {id!r}"
        return reason, reason

    def _path_to(self, goals: Set[int], starts: list[str], new: Mapping[str, Node]) -> list[str]:
        """A cycle ``goal -> start -> ... -> goal`` if some goal is an ancestor of a start
        (following dependencies through new and existing nodes), else an empty list."""
        if not goals:
            return []
        parent: dict[str, str | None] = dict.fromkeys(starts)
        queue = deque(starts)
        while queue:
            current = queue.popleft()
            node = new.get(current)
            if node is not None:
                deps: Iterable[str] = node.depends_on
            else:
                i = self._index[current]
                if i in goals:
                    path: list[str] = []
                    step: str | None = current
                    while step is not None:
                        path.append(step)
                        step = parent[step]
                    return [current, *reversed(path)]
                deps = (self._ids[d] for d in self._deps[i])
            for dep in deps:
                if dep not in parent:
                    parent[dep] = current
                    queue.append(dep)
        return []
