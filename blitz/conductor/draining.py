"""Draining: how a stopping engine lets its running attempts finish, then interrupts the rest.

Interrupted attempts are re-queued when their goal is resumed (see :mod:`.resume`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from blitz.conductor.goal import GoalRun


async def interrupt_attempts(runs: Mapping[str, GoalRun], grace: float) -> None:
    """Give the running attempts of ``runs`` ``grace`` seconds to end, cancel the others, and
    wait a little for them to remove their worktrees and report."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while _attempts_running(runs) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    for run in list(runs.values()):
        for job in list(run.attempt_jobs.values()):
            job.cancel()
    for _ in range(200):
        if not _attempts_running(runs):
            break
        await asyncio.sleep(0.025)
    await asyncio.sleep(0)


def _attempts_running(runs: Mapping[str, GoalRun]) -> bool:
    return any(run.attempt_jobs for run in runs.values())
