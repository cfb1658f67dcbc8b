"""Checks a set of nodes before it becomes (part of) a graph: ids, unknown or duplicate
dependencies, size caps and cycles, every problem listed at once."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Container, Mapping, Sequence, Set

from blitz.dag.nodes import MAX_NODES, Node, NodeLike
from blitz.errors import PlanError

_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def validate(
    nodes: Sequence[Node], *, existing: Collection[str] = (), max_nodes: int = MAX_NODES
) -> None:
    """Raise PlanError listing every problem of ``nodes``, to be added to ``existing`` ids.

    Nodes may depend on each other in any order and on existing ids. Cycles are named with arrows
    from a node to one of its dependencies: ``cycle: a -> b -> a``.
    """
    known = existing if isinstance(existing, Set | Mapping) else set(existing)
    problems = find_problems(nodes, known, len(existing) + len(nodes), max_nodes)
    if not nodes and not existing:
        problems.insert(0, "the plan has no tasks")
    if problems:
        raise PlanError(problems)


def find_problems(
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
