"""The local executor: runs each attempt in this process, on this event loop."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from blitz.conductor.attempt import run_attempt
from blitz.executors.base import AttemptReport, AttemptRequest


class LocalExecutor:
    """An :class:`~blitz.executors.base.Executor` that runs the attempt here and now."""

    def run(self, request: AttemptRequest) -> Coroutine[Any, Any, AttemptReport]:
        # The attempt's own coroutine, not one wrapped around it: one object less per task.
        return run_attempt(request)
