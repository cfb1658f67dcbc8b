"""Which ``blitz worker`` nodes the cluster has, as blitz sees them: their slots (free and in
all), backends and labels from their Ray resources, the attempts each runs, and when the daemon
last saw each alive.

:func:`cluster_nodes` reads Ray's node table and each node's available resources in the process
connected to the cluster (the daemon once its executor started, or ``blitz workers``); the rest is
plain data. Ray itself is imported only by the functions that talk to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from blitz.executors.ray.resources import Node, node_of


@dataclass(frozen=True, slots=True, kw_only=True)
class Worker:
    """One worker node with what runs on it and when it was last seen alive."""

    node: Node
    attempts: tuple[str, ...]  # running attempt ids placed there
    last_seen: float  # wall-clock time the daemon last saw it alive (0: never)


def nodes_of(
    table: Iterable[Mapping[str, Any]], free: Mapping[str, Mapping[str, float]]
) -> list[Node]:
    """The blitz worker nodes of Ray's node table (``ray.nodes()``) with each live node's
    available resources (by hex node id); Ray nodes with no slot (a bare head) left out."""
    found = []
    for entry in table:
        node_id = str(entry.get("NodeID", ""))
        alive = bool(entry.get("Alive", False))
        total = entry.get("Resources") or {}
        node = node_of(
            node_id, str(entry.get("NodeManagerAddress", "")), alive, total, free.get(node_id, {})
        )
        if node is not None:
            found.append(node)
    return sorted(found, key=lambda n: (not n.alive, n.address, n.node_id))


def cluster_nodes() -> list[Node]:
    """The cluster's worker nodes, read in a process connected to it (``ray.init`` done)."""
    import ray
    from ray._private.state import available_resources_per_node  # Ray's DeveloperAPI

    return nodes_of(ray.nodes(), available_resources_per_node())


class Roster:
    """When each node was last seen alive, as the process watching the cluster records it."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def saw(self, nodes: Iterable[Node], now: float) -> None:
        for node in nodes:
            if node.alive:
                self._seen[node.node_id] = now

    def workers(self, nodes: Iterable[Node], placements: Mapping[str, str]) -> list[Worker]:
        """``nodes`` with their running attempts (``placements``: attempt id -> node id)."""
        by_node: dict[str, list[str]] = {}
        for attempt, node_id in sorted(placements.items()):
            by_node.setdefault(node_id, []).append(attempt)
        return [
            Worker(
                node=n,
                attempts=tuple(by_node.get(n.node_id, ())),
                last_seen=self._seen.get(n.node_id, 0.0),
            )
            for n in nodes
        ]
