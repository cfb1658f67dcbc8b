"""What a worker node offers and what an attempt needs, as Ray custom resources.

A ``blitz worker`` node advertises ``blitz_slot`` (its attempt slots) and, for each backend usable
there and each of its labels, a resource of the same amount as its slots. One attempt asks for
one of each it needs, so Ray places it only on a node with a free slot, its backend and every
label it requires. Pure functions over plain data: no Ray import here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SLOT = "blitz_slot"
"""One attempt slot on a worker node."""

_BACKEND = "blitz_backend_"
_LABEL = "blitz_label_"

WORKER_HOME_ENV = "BLITZ_WORKER_HOME"
"""Where a worker node keeps its cache repositories, worktrees and baselines (set by
``blitz worker`` in the environment of the node's Ray processes)."""

KEEP_WORKERS_ENV = "RAY_num_workers_soft_limit"
"""Ray's setting (read by a node's raylet from its environment) of how many idle worker
processes the node keeps: Ray's default is the node's CPU count, and it kills idle workers past
it after a second."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(kind: str, name: str) -> str:
    """``name`` when it can be a backend or label name; a ValueError saying why not."""
    if not _NAME.match(name):
        raise ValueError(
            f"{kind} {name!r} is not a valid name (letters, digits, '_', '.', '-'; at most 64)"
        )
    return name


def backend_resource(name: str) -> str:
    return _BACKEND + check_name("backend", name)


def label_resource(label: str) -> str:
    return _LABEL + check_name("label", label)


def node_resources(slots: int, backends: Iterable[str], labels: Iterable[str]) -> dict[str, float]:
    """The custom resources a worker node with these slots, backends and labels advertises."""
    if slots < 1:
        raise ValueError(f"a worker needs at least one attempt slot, not {slots}")
    offered = {SLOT: float(slots)}
    offered.update({backend_resource(b): float(slots) for b in backends})
    offered.update({label_resource(lab): float(slots) for lab in labels})
    return offered


def node_settings(slots: int, cpus: int | None = None) -> dict[str, str]:
    """Ray's settings for a worker node with ``slots`` attempt slots and ``cpus`` CPUs (default:
    this machine's), as environment variables of its processes.

    An attempt asks for no CPU, so Ray counts its worker process against the node's CPUs only:
    with more slots than CPUs, the workers of one wave of attempts past the CPU count were
    killed a second after it ended, and each next wave started new Python processes, every one
    importing Ray and blitz again (seconds of CPU each, all at the wave's start). The node keeps
    one worker per slot on top of the CPUs' (an explicit setting in the environment wins)."""
    count = cpus if cpus is not None else (os.cpu_count() or 1)
    return {KEEP_WORKERS_ENV: str(slots + max(1, count))}


def demand(backend: str, labels: Iterable[str] = ()) -> dict[str, float]:
    """The resources one attempt with this backend and these required labels asks for."""
    wanted = {SLOT: 1.0, backend_resource(backend): 1.0}
    wanted.update({label_resource(lab): 1.0 for lab in labels})
    return wanted


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One worker node as blitz sees it."""

    node_id: str
    address: str  # the node's IP address
    alive: bool
    slots: int
    free_slots: int
    backends: tuple[str, ...]
    labels: tuple[str, ...]


def node_of(
    node_id: str, address: str, alive: bool, total: Mapping[str, float], free: Mapping[str, float]
) -> Node | None:
    """A worker node from its total and available resources; None for a Ray node that is not a
    blitz worker (no slots: the head of a cluster started by hand, say)."""
    slots = int(total.get(SLOT, 0))
    if slots < 1:
        return None
    return Node(
        node_id=node_id,
        address=address,
        alive=alive,
        slots=slots,
        free_slots=int(free.get(SLOT, 0)) if alive else 0,
        backends=tuple(sorted(k[len(_BACKEND) :] for k in total if k.startswith(_BACKEND))),
        labels=tuple(sorted(k[len(_LABEL) :] for k in total if k.startswith(_LABEL))),
    )


def fits(node: Node, backend: str, labels: Iterable[str] = ()) -> bool:
    """Whether ``node`` could ever run an attempt with this backend and labels (slots aside)."""
    return node.alive and backend in node.backends and set(labels) <= set(node.labels)


def why_not(nodes: Iterable[Node], backend: str, labels: Iterable[str] = ()) -> str:
    """Why no node can take such an attempt now ("" when one can)."""
    needed = sorted(set(labels))
    alive = [n for n in nodes if n.alive]
    if not alive:
        return "no blitz worker is connected to the cluster"
    able = [n for n in alive if fits(n, backend, needed)]
    if not able:
        with_backend = [n for n in alive if backend in n.backends]
        if not with_backend:
            return f"no worker offers the backend {backend!r}"
        missing = sorted(set(needed) - set().union(*(set(n.labels) for n in with_backend)))
        wanted = ", ".join(needed)
        if missing:
            return f"no worker with the backend {backend!r} has the labels {wanted}"
        return f"no single worker has the backend {backend!r} and every label of {wanted}"
    if not any(n.free_slots > 0 for n in able):
        total = sum(n.slots for n in able)
        return f"every slot of the workers that can take it is busy ({total} in all)"
    return ""
