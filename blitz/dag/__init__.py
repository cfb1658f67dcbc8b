"""The task graph of a goal: pure graph logic with no I/O.

``nodes`` (what a graph is made of and the legal status moves), ``validation`` (every problem
of a set of nodes, cycles named), ``graph`` (the :class:`Dag`: ready heap by priority,
completion, injection and rewiring, deadlock and blocked reasons, restore after a restart).
"""

from blitz.dag.graph import Dag
from blitz.dag.nodes import ACTIVE, MAX_NODES, SATISFIED, TRANSITIONS, Node, NodeLike, NodeStatus
from blitz.dag.validation import validate

__all__ = [
    "ACTIVE",
    "MAX_NODES",
    "SATISFIED",
    "TRANSITIONS",
    "Dag",
    "Node",
    "NodeLike",
    "NodeStatus",
    "validate",
]
