"""A worker node's Ray worker processes started and warm before its first attempt.

An attempt runs in a Ray worker process of the daemon's Ray job. A node starts those processes
when attempts arrive, and each new one imports Ray and blitz's attempt modules (about 3 CPU
seconds), so a goal's first wave on a node that just joined paid for one per slot, all at once
on the node's cores. The daemon's driver (:mod:`~blitz.executors.ray.driver_main`) instead warms
each worker node as soon as it sees it: one :func:`warm` task per slot, pinned there, each in a
process of its own (they wait for each other), importing what an attempt needs. The node keeps
them idle (``RAY_num_workers_soft_limit``, :func:`~blitz.executors.ray.resources.node_settings`)
and Ray reuses them for the job's attempts.

:func:`warm` runs on the node; :class:`Warmer`, in the driver, watches the cluster for nodes to
warm and remembers the processes each one started (``warmed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

WARM_MODULES = (
    "blitz.executors.ray.remote",
    "blitz.executors.ray.slots",
    "blitz.executors.ray.baselines",
    "blitz.conductor.attempt",
    "blitz.gatecache",
    "blitz.pool",
    "blitz.validation",
    "blitz.envsetup",
    "blitz.workspace",
    "blitz.backends.options",
    "blitz.backends.registry",
    "blitz.backends.sandboxed",
    "blitz.settings",
    "blitz.confinement",
    "blitz.breaker",
    "blitz.llm.usage",
    "blitz.proxy",  # the node's model proxy, made for every attempt (it loads pydantic-ai)
    "platformdirs",  # where blitz's settings look for the home, read for every attempt
)
"""What an attempt's Ray task imports as it runs (besides its backend's module): a profile of
a 4-node goal (py-spy, every process) found the first attempt in each warmed process still
importing ``blitz.proxy`` (about 1.7 CPU-s) and ``platformdirs``."""

WAIT = 60.0
"""Seconds a warm-up task waits for the node's others to start (each holds its process until
then, so that each gets one of its own); past it, it ends with what started."""

POLL = 5.0
"""Seconds between two looks at the cluster for nodes not warmed yet."""

TRIES = 3
"""Warm-ups tried on one node before it is left to start its processes as attempts come."""

STALE = 3600.0
"""Seconds after which a warm-up's meeting place on the node is removed by the next one."""


def warm(round_id: str, count: int, backends: tuple[str, ...], wait: float = WAIT) -> int:
    """The body of one warm-up Ray task: import what an attempt needs (and the modules of the
    node's ``backends``), then wait until ``count`` tasks of this round have each done so in a
    process of its own (at most ``wait`` seconds). Returns this process's id."""
    from blitz.backends.registry import FACTORIES
    from blitz.executors.ray.remote import home

    for name in WARM_MODULES:
        importlib.import_module(name)
    for backend in backends:
        target = FACTORIES.get(backend)
        if target is not None:  # a missing SDK: the attempt will say so, as it would have
            with contextlib.suppress(ImportError):
                importlib.import_module(target.partition(":")[0])
    rounds = home() / "warm"
    here = rounds / round_id
    here.mkdir(parents=True, exist_ok=True)
    _clean(rounds, keep=round_id)
    (here / str(os.getpid())).touch()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and sum(1 for _ in here.iterdir()) < count:
        time.sleep(0.05)
    return os.getpid()


def _clean(rounds: Path, keep: str) -> None:
    """Remove earlier warm-ups' meeting places older than :data:`STALE`."""
    now = time.time()
    for place in rounds.iterdir():
        try:
            if place.name != keep and now - place.stat().st_mtime > STALE:
                shutil.rmtree(place, ignore_errors=True)
        except OSError:
            pass


class Warmer:
    """In the driver: warms each live worker node once (``slots`` processes), as it appears.

    ``launch(node_id, round_id, count, backends)`` starts one warm-up task pinned to the node and
    returns what to await for its process id."""

    def __init__(self, launch: Callable[[str, str, int, tuple[str, ...]], Any]) -> None:
        self._launch = launch
        self.warmed: dict[str, list[int]] = {}  # node id -> the processes its warm-up started
        self._tries: dict[str, int] = {}
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def watch(self, poll: float = POLL) -> None:
        """Look at the cluster every ``poll`` seconds and warm the nodes not warmed yet."""
        from blitz.executors.ray import placement

        while True:
            try:
                nodes = placement.worker_nodes(*await asyncio.to_thread(placement.cluster_state))
            except Exception:  # the cluster is briefly unreachable: look again later
                nodes = []
            for node in nodes:
                tried = self._tries.get(node.node_id, 0)
                if not node.alive or node.node_id in self.warmed or node.node_id in self._busy:
                    continue
                if tried >= TRIES:
                    continue
                self._tries[node.node_id] = tried + 1
                self._busy.add(node.node_id)
                task = asyncio.create_task(self._warm(node.node_id, node.slots, node.backends))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(poll)

    async def _warm(self, node_id: str, slots: int, backends: tuple[str, ...]) -> None:
        round_id = uuid.uuid4().hex[:12]
        try:
            started = [self._launch(node_id, round_id, slots, backends) for _ in range(slots)]
            pids = await asyncio.gather(*started)
            self.warmed[node_id] = sorted(set(pids))
        except Exception:  # the node went away, or its processes could not start: try later
            pass
        finally:
            self._busy.discard(node_id)
