"""A goal's task graph: scheduling order and node status bookkeeping.

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
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence, Set

from blitz.dag.nodes import (
    ACTIVE,
    MAX_NODES,
    SATISFIED,
    TRANSITIONS,
    Node,
    NodeLike,
    NodeStatus,
)
from blitz.dag.validation import find_problems
from blitz.domain import IllegalTransition
from blitz.errors import PlanError

_S = NodeStatus  # short alias for the tables and checks below
_STATUS_VALUES = frozenset(status.value for status in NodeStatus)
_REWIRABLE = (_S.FAILED, _S.WAITING, _S.READY)  # targets of inject(before=...) and (replace=...)


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
        problems = find_problems(given, (), len(given), max_nodes) if check else []
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
        problems = find_problems(given, (), len(given), max_nodes) if check else []
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
        problems = find_problems(given, self._index, len(self) + len(given), self._max_nodes)
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
