"""Running goals through the Ray executor on the test cluster (tests/ray_cluster.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from blitz.app import App
from blitz.conductor import Engine
from blitz.events import Event
from blitz.executors.base import AttemptReport, AttemptRequest, Executor
from blitz.executors.ray.executor import RayExecutor
from blitz.router import Router


class Labelled:
    """The executor with the labels each task needs set on its requests: what dispatch does from
    a plan task's ``labels:`` (wired on another branch of this issue), done here by task id."""

    def __init__(self, inner: RayExecutor, labels: Mapping[str, tuple[str, ...]]) -> None:
        self.inner = inner
        self.labels = labels

    async def run(self, request: AttemptRequest) -> AttemptReport:
        labels = self.labels.get(request.task.id, ())
        return await self.inner.run(dataclasses.replace(request, labels=labels))


def ray_engine(app: App, executor: Executor, **options: Any) -> Engine:
    """``app``'s engine, its attempts run by ``executor`` (the conductor loop unchanged)."""
    board = app.breakers
    return Engine(
        store=app.store,
        clock=app.clock,
        router=Router(board, global_limit=app.settings.max_parallel),
        breakers=board,
        services=lambda project, goal: dataclasses.replace(
            app.services(project, goal), executor=executor
        ),
        fault=app.fault,
        lease=app.settings.lease_seconds,
        **options,
    )


def placed_on(events: list[Event]) -> dict[str, str]:
    """Attempt id -> the node its ``attempt.placed`` event names."""
    return {e.attempt_id: e.data["node"] for e in events if e.kind == "attempt.placed"}
