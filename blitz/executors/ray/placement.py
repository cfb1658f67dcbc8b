"""Which worker node an attempt goes to: the cluster's blitz worker nodes as Ray reports them,
and the choice among those that fit.

A node fits when it is alive, offers the attempt's backend and every label it needs, and has a
free slot once the attempts just sent there (that Ray has not started yet) are counted. Among
those, one that already holds the project's history is preferred (its sync is only the new
commits), then the most free slots. Ray itself still enforces the slots: each attempt's task asks
for its :func:`~blitz.executors.ray.resources.demand` on the chosen node.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from blitz.executors.ray.resources import Node, fits, node_of

BUSY = "every slot of the workers that can take it is busy"


def cluster_state() -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Ray's node list and each node's available resources (blocking: call it in a thread)."""
    import ray
    from ray._private import state

    return ray.nodes(), state.available_resources_per_node()


def worker_nodes(
    listed: Iterable[Mapping[str, Any]],
    free: Mapping[str, Mapping[str, float]],
    dead: Collection[str] = (),
) -> list[Node]:
    """The blitz worker nodes among Ray's, those in ``dead`` counted as not alive."""
    found = []
    for entry in listed:
        node_id = str(entry.get("NodeID", ""))
        made = node_of(
            node_id,
            str(entry.get("NodeManagerAddress", "")),
            bool(entry.get("Alive")) and node_id not in dead,
            entry.get("Resources") or {},
            free.get(node_id, {}),
        )
        if made is not None:
            found.append(made)
    return found


def choose(
    nodes: Iterable[Node],
    backend: str,
    labels: Iterable[str],
    *,
    starting: Mapping[str, int],
    holds: Callable[[str], bool],
) -> Node | None:
    """The node to run the attempt on; None when none can take it now. ``starting``: attempts
    sent to each node not started yet; ``holds``: whether a node holds the project's history."""
    needed = tuple(labels)

    def free(node: Node) -> int:
        return node.free_slots - starting.get(node.node_id, 0)

    able = [n for n in nodes if fits(n, backend, needed) and free(n) > 0]
    if not able:
        return None
    return max(able, key=lambda n: (holds(n.node_id), free(n)))
