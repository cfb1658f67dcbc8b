"""The local executor: runs each attempt in this process, on this event loop."""

from __future__ import annotations

from blitz.conductor.attempt import run_attempt
from blitz.executors.base import AttemptReport, AttemptRequest


class LocalExecutor:
    """An :class:`~blitz.executors.base.Executor` that runs the attempt here and now."""

    async def run(self, request: AttemptRequest) -> AttemptReport:
        return await run_attempt(request)
