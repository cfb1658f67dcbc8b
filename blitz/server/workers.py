"""``GET /api/workers``: the cluster's ``blitz worker`` nodes (slots, backends, labels, running
attempts, when the daemon last saw each alive), and the daemon's watch that records it.

With the local executor there are no workers: attempts run in the daemon, and the answer says
so. With the ray executor the daemon looks at the cluster every :data:`WATCH_INTERVAL` seconds
(and at every request), so a node that died shows when it was last seen alive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel

from blitz import background
from blitz.executors.ray.membership import Roster, Worker, cluster_nodes
from blitz.server.problems import Problem

if TYPE_CHECKING:
    from blitz.app import App
    from blitz.executors.ray.resources import Node
    from blitz.server.host import Host

log = logging.getLogger(__name__)

WATCH_INTERVAL = 10.0
"""Seconds between the daemon's looks at the cluster's nodes."""

LOCAL_NOTE = "the local executor runs every attempt in the daemon's process: there are no workers"


class WorkerOut(BaseModel):
    """One ``blitz worker`` node (``blitz workers``)."""

    node_id: str
    address: str  # the node's IP address
    alive: bool
    slots: int
    free_slots: int
    backends: list[str]  # usable there (CLI and key present on that machine)
    labels: list[str]
    attempts: list[str]  # ids of the attempts running there
    last_seen: float  # when the daemon last saw it alive (0: not yet)

    @classmethod
    def of(cls, worker: Worker) -> WorkerOut:
        n = worker.node
        return cls(
            node_id=n.node_id,
            address=n.address,
            alive=n.alive,
            slots=n.slots,
            free_slots=n.free_slots,
            backends=list(n.backends),
            labels=list(n.labels),
            attempts=list(worker.attempts),
            last_seen=worker.last_seen,
        )


class WorkersOut(BaseModel):
    executor: str  # "local" or "ray"
    address: str  # the cluster's address ("" for the local executor)
    note: str  # what the list means ("" when it speaks for itself)
    workers: list[WorkerOut]


class WorkerWatch:
    """The daemon's view of the cluster's workers: it looks every ``interval`` seconds while
    the ray executor runs, and records when each node was last seen alive."""

    def __init__(self, app: App, *, interval: float = WATCH_INTERVAL) -> None:
        self.app = app
        self.interval = interval
        self.roster = Roster()
        self._task: asyncio.Task[None] | None = None
        name, options = app.settings.executor_options()
        self.executor = name
        self.address = str(options.get("address", ""))

    async def look(self) -> list[Node]:
        """The cluster's worker nodes now (recorded as seen)."""
        nodes_of = getattr(self.app.executor, "nodes", None)  # the ray executor asks its driver
        nodes = await nodes_of() if nodes_of is not None else await asyncio.to_thread(cluster_nodes)
        self.roster.saw(nodes, time.time())
        return nodes

    def start(self) -> None:
        if self.executor == "ray" and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await background.stop(task)

    async def _watch(self) -> None:
        while True:
            try:
                await self.look()
            except Exception as exc:  # the cluster may be briefly away: look again later
                log.debug("looking at the cluster's workers failed: %r", exc)
            await asyncio.sleep(self.interval)

    async def snapshot(self) -> WorkersOut:
        if self.executor != "ray":
            return WorkersOut(executor=self.executor, address="", note=LOCAL_NOTE, workers=[])
        try:
            nodes = await self.look()
        except Exception as exc:
            raise Problem(503, f"cannot read the Ray cluster at {self.address}: {exc}") from exc
        # The ray executor's running attempts, by node (RayExecutor.placements()).
        placed = getattr(self.app.executor, "placements", None)
        placements: dict[str, str] = placed() if placed is not None else {}
        workers = self.roster.workers(nodes, placements)
        note = "" if workers else "no blitz worker has joined the cluster (`blitz worker`)"
        return WorkersOut(
            executor="ray",
            address=self.address,
            note=note,
            workers=[WorkerOut.of(w) for w in workers],
        )


def routes(router: APIRouter, host: Host) -> None:
    """Add ``GET /api/workers`` (docs/api.md) to ``router``."""

    @router.get("/api/workers", response_model=WorkersOut)
    async def list_workers() -> WorkersOut:
        return await host.workers.snapshot()
