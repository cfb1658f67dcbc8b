"""Which ``blitz worker`` nodes the cluster has, as blitz sees them: their slots (free and in
all), backends and labels from their Ray resources, the attempts each runs, and when the daemon
last saw each alive.

:func:`cluster_nodes` reads Ray's node table and each node's available resources
(:mod:`.placement`, as the executor does) in the process connected to the cluster (the daemon once
its executor started, or ``blitz workers``); the rest is plain data. Ray itself is imported only
by the functions that talk to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from blitz.executors.ray.placement import cluster_state, worker_nodes
from blitz.executors.ray.resources import Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Worker:
    """One worker node with what runs on it and when it was last seen alive."""

    node: Node
    attempts: tuple[str, ...]  # running attempt ids placed there
    last_seen: float  # wall-clock time the daemon last saw it alive (0: never)


def cluster_nodes() -> list[Node]:
    """The cluster's worker nodes, live ones first, read in a process connected to it
    (``ray.init`` done; blocking: call it in a thread)."""
    found = worker_nodes(*cluster_state())
    return sorted(found, key=lambda n: (not n.alive, n.address, n.node_id))


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
