"""Which worker node an attempt goes to: the cluster's blitz worker nodes as Ray reports them,
and the choice among those that fit.

A node fits when it is alive, offers the attempt's backend and every label it needs, and has a
free slot by the executor's own count: its slots less the attempts this executor placed there that
have not ended. Ray's view of a node's free resources lags the attempts just started or ended on
it by up to a second or so, long enough to pile a wave of attempts onto one node while another
stands idle; the executor's count does not lag. Among the nodes that fit, the one with the most
free slots is chosen, and of those one that already holds the project's history (its sync is
only the new commits). Ray itself still enforces the slots: each attempt's task asks for its
:func:`~blitz.executors.ray.resources.demand` on the chosen node, so an attempt sent to a node
whose slots another driver holds waits there for one.
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
    load: Mapping[str, int],
    holds: Callable[[str], bool],
) -> Node | None:
    """The node to run the attempt on; None when none can take it now. ``load``: the attempts
    this executor placed on each node that have not ended; ``holds``: whether a node holds the
    project's history."""
    needed = tuple(labels)
    able = [n for n in nodes if fits(n, backend, needed) and free(n, load) > 0]
    if not able:
        return None
    return max(able, key=lambda n: (free(n, load), holds(n.node_id)))


def free(node: Node, load: Mapping[str, int]) -> int:
    """``node``'s free slots by the executor's count (none on a node that is not alive)."""
    return node.slots - load.get(node.node_id, 0) if node.alive else 0
