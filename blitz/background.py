"""Background tasks: stopping one for sure.

A loop running beside the daemon (the notifier, the event hub's poll, the workers' watch, a
Slack thread's follower) is stopped by cancelling its task and waiting until it has ended. Two
traps make that wait forever or lie, and this is the one place that steps around them:

- ``with suppress(CancelledError): await task`` also swallows the *caller's* own cancellation
  (a stop given a deadline never returns at it);
- Python 3.11's ``asyncio.wait_for`` returns the awaited result when the cancel and that result
  arrive in the same turn of the loop, dropping the cancel: a ``while True`` loop waiting with it
  goes on, and the stop waits for it forever (a daemon's shutdown did, in CI). Bounded waits in
  blitz use ``asyncio.timeout`` instead (ruff bans ``asyncio.wait_for`` in ``blitz/``).
"""

from __future__ import annotations

import asyncio
from typing import Any


async def stop(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and return once it has ended; a failure it ended with is raised here. A
    cancellation of the caller still propagates (the task has been asked to stop either way)."""
    if task is None:
        return
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and (failure := task.exception()) is not None:
        raise failure
