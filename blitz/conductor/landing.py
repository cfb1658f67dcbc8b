"""Landing an attempt whose work part ran elsewhere (a remote worker): its commit, already
fetched into the project's repository, integrated into the goal branch by the same code as a
local attempt's (:func:`blitz.conductor.attempt.integrate_commit`), or offered to its best-of-N
selection. A worktree is made only when it is needed: to rebase onto work that landed
meanwhile, or to judge a candidate; most landings fast-forward the goal branch without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from blitz.conductor.attempt import STATES, compete, integrate_commit
from blitz.errors import RunError
from blitz.executors.base import AttemptReport, AttemptRequest, Outcome, worktree_name

_LANDED = ("summary", "usage", "diff", "diff_stat", "gates", "base_sha", "worktree")


async def land(ctx: AttemptRequest, made: AttemptReport) -> AttemptReport:
    """Integrate an attempt whose work part ran elsewhere (``run_attempt(integrate=False)``):
    ``made`` is its SUCCEEDED report, its commit already fetched into ``ctx.workspace``. The same
    integration as a local attempt's (rebase onto the moved goal branch, re-validate with
    ``ctx.validator``, put on the branch; a best-of-N candidate goes to its selection), in a
    worktree of its own at the commit. A candidate's report may be FAILED with a commit (its
    gates failed there): its work is kept as a ref and offered as failed, as a local
    candidate's. Never raises except on cancellation."""
    ws = ctx.workspace
    assert ws is not None
    sha, base = made.attempt.commit, made.attempt.base_sha
    passed = made.outcome is Outcome.SUCCEEDED
    found: dict[str, object] = {k: getattr(made.attempt, k) for k in _LANDED}
    held = contextlib.AsyncExitStack()

    def report(
        outcome: Outcome, error: str = "", retry_after: float | None = None, **changes: object
    ) -> AttemptReport:
        final = ctx.attempt.evolve(
            state=STATES[outcome], error=error, finished_at=ctx.now(), **found, **changes
        )
        return AttemptReport(
            outcome=outcome,
            attempt=final,
            error=error,
            messages=made.messages,
            retry_after=retry_after,
        )

    try:
        if ctx.selection is not None and not sha:
            return await compete(
                ctx, Path(), None, base, True, made.attempt.gates, report, found, Path()
            )
        if not sha:
            ctx.fault("before_store_write")
            return report(Outcome.SUCCEEDED)

        async def worktree(at: str) -> Path:  # made only when needed: most landings need none
            path = await ws.add_worktree(worktree_name(ctx.goal.id, ctx.attempt.id), at)
            held.push_async_callback(ws.remove_worktree, path)
            return path

        marker = Path(held.enter_context(tempfile.TemporaryDirectory())) / "setup"
        if ctx.selection is not None:
            gates = made.attempt.gates
            return await compete(
                ctx, await worktree(sha), sha, base, passed, gates, report, found, marker
            )
        return await integrate_commit(ctx, worktree, sha, base, report, found, marker)
    except (RunError, OSError) as exc:
        if ctx.selection is not None:
            ctx.selection.withdraw(ctx.attempt.id, str(exc))
        return report(Outcome.CRASHED, f"{type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(held.aclose())
