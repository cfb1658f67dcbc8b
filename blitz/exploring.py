"""Best-of-N in the engine: which candidates a task gets, running them side by side under one
:class:`~blitz.explore.Selection`, and recording what came of them.

These are the engine's (:class:`blitz.conductor.Engine` calls them); they live here to keep the
loop's module about the loop. The ranking itself is :mod:`blitz.explore`'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blitz import attempt as attempts
from blitz.domain import Attempt, AttemptState, Task, TaskState, Usage
from blitz.events import EventKind
from blitz.router import WorkItem

if TYPE_CHECKING:
    from blitz.conductor import Engine, GoalRun
    from blitz.explore import Selection


@dataclass(frozen=True, slots=True)
class Exploration:
    """What a best-of-N job reports: each candidate's outcome, and the selection's verdicts."""

    results: list[attempts.AttemptReport | BaseException]
    selection: Selection


def backend_spec(spec: str) -> tuple[str, str]:
    """ "claude-code:sonnet" -> ("claude-code", "sonnet"); "codex" -> ("codex", "")."""
    backend, _, model = spec.strip().partition(":")
    return backend, model


def label(attempt: Attempt) -> str:
    name = f"{attempt.backend}:{attempt.model}" if attempt.model else attempt.backend
    return f"{name} #{attempt.candidate}" if attempt.candidate else name


def all_failed(reports: list[attempts.AttemptReport]) -> str:
    lines = [f"all {len(reports)} attempts failed:"]
    for r in reports:
        first = (r.attempt.verdict or r.error or r.outcome.value).splitlines()[0]
        lines.append(f"- {label(r.attempt)}: {first[:300]}")
    details = next((r.error for r in reports if r.outcome is attempts.Outcome.FAILED), "")
    return "\n".join(lines) + (f"\n\n{details}" if details else "")


_JUDGED = (attempts.Outcome.LOST, attempts.Outcome.FAILED, attempts.Outcome.CONFLICT)


def candidates(run: GoalRun, task: Task, backend: str) -> list[tuple[int, tuple[str, str]]]:
    """(candidate number, (backend, model)) of each attempt to start for a task: one plain
    attempt (number 0), or best-of-N spread over the goal's portfolio."""
    model = task.model or run.goal.model
    n = task.explore or run.goal.explore
    if n < 2:
        return [(0, (backend, model))]
    portfolio = run.goal.portfolio or (f"{backend}:{model}" if model else backend,)
    return [(i + 1, backend_spec(portfolio[i % len(portfolio)])) for i in range(n)]


async def explore(engine: Engine, run: GoalRun, task: Task, made: list[Attempt]) -> Exploration:
    """Run best-of-N candidates side by side; the selection lets one of them integrate."""
    from blitz.explore import Selection

    jobs: list[asyncio.Task[attempts.AttemptReport]] = []

    def cancel_others() -> None:
        for job, attempt in zip(jobs, made, strict=True):
            if attempt.id != selection.winner and not job.done():
                job.cancel()

    selection = Selection(
        len(made),
        mode="first" if run.goal.explore_mode == "first" else "all",
        judge=run.services.judge,
        task_title=task.title,
        instructions=task.instructions,
        cancel_others=cancel_others,
    )
    contexts = [engine._context(run, task, a, selection=selection, share=len(made)) for a in made]
    jobs.extend(asyncio.ensure_future(attempts.run_attempt(c)) for c in contexts)
    try:
        results = await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        for job in jobs:
            job.cancel()
    for attempt in made:  # candidates cancelled before they could offer themselves
        if attempt.id not in selection.verdicts and not selection.done:
            selection.withdraw(attempt.id, "cancelled", label=label(attempt), cancelled=True)
    return Exploration(results=results, selection=selection)


def explored(
    engine: Engine,
    run: GoalRun,
    item: WorkItem,
    task_id: str,
    made: list[Attempt],
    result: Exploration | BaseException,
) -> None:
    """Record every best-of-N candidate and why the winner won; the task then goes on as
    the winner's attempt would (or fails with every candidate's reason)."""
    run.attempt_jobs.pop(task_id, None)
    task = run.tasks[task_id]
    if isinstance(result, BaseException):
        engine._job_lost(run, item, made, result)
        return
    selection = result.selection
    reports: list[attempts.AttemptReport] = []
    for attempt, got in zip(made, result.results, strict=True):
        if isinstance(got, BaseException):
            cancelled = isinstance(got, asyncio.CancelledError)
            state = AttemptState.CANCELLED if cancelled else AttemptState.CRASHED
            error = "cancelled: another candidate won first" if cancelled else repr(got)
            got = attempts.AttemptReport(
                outcome=attempts.Outcome.CRASHED,
                attempt=attempt.evolve(
                    state=state,
                    error=error,
                    finished_at=engine.clock.time(),
                    usage=engine._metered(attempt),  # what it spent before it was stopped
                ),
                error=error,
            )
        engine._meters.pop(attempt.id, None)
        first_line = got.error.splitlines()[0] if got.error else ""
        verdict = selection.verdicts.get(attempt.id, first_line)
        reports.append(dataclasses.replace(got, attempt=got.attempt.evolve(verdict=verdict[:500])))
    usage = sum((r.attempt.usage for r in reports), Usage())
    judge = run.services.judge
    if judge is not None:
        usage += judge.take_usage()
    if usage != Usage():
        engine._spent(run, usage)
    winner = next((r for r in reports if r.outcome is attempts.Outcome.SUCCEEDED), None)
    summary = selection.summary()
    explored = engine._event(
        run,
        EventKind.TASK_EXPLORED,
        summary.splitlines()[0] if summary else f"{len(made)} candidates",
        task=task,
        attempt_id=winner.attempt.id if winner else "",
        data={
            "summary": summary,
            "winner": winner.attempt.id if winner else "",
            "candidates": [
                {
                    "attempt": r.attempt.id,
                    "label": label(r.attempt),
                    "outcome": r.outcome.value,
                    "verdict": r.attempt.verdict,
                    "ref": r.attempt.ref,
                    "cost_usd": r.attempt.usage.cost_usd,
                }
                for r in reports
            ],
        },
    )
    losers = [r.attempt for r in reports if r is not winner]
    engine.store.write(*losers, events=[explored])
    outcomes = {r.outcome for r in reports}
    if winner is not None:
        outcome = attempts.Outcome.SUCCEEDED
    elif outcomes <= {attempts.Outcome.CRASHED, attempts.Outcome.CONFIG}:
        outcome = (
            attempts.Outcome.CONFIG
            if attempts.Outcome.CONFIG in outcomes
            else attempts.Outcome.CRASHED
        )
    else:
        outcome = attempts.Outcome.FAILED
    error = "" if winner else all_failed(reports)
    engine._breaker_changes(
        engine.router.done(item, outcome=attempts.ROUTER_OUTCOME[outcome], error=error)
    )
    if run.cancelled:
        engine._set_task(run, task.evolve(state=TaskState.CANCELLED, reason="cancelled"))
    elif winner is not None:
        engine._succeeded(run, task, winner.attempt)
        engine._unfed[run.goal.id] = run
        return
    elif engine._draining and outcomes <= {attempts.Outcome.CRASHED}:
        engine._requeue(run, task, "interrupted by shutdown; re-queued")
    elif outcome is attempts.Outcome.CONFIG:
        config = next(r for r in reports if r.outcome is attempts.Outcome.CONFIG)
        engine._requeue(run, task, f"waiting: {config.error}")
        engine.pause_project(run.project.id, config.error)
    elif outcome is attempts.Outcome.CRASHED:
        engine._crashed(run, task, error)
    elif conflict := next((r for r in reports if r.outcome is attempts.Outcome.CONFLICT), None):
        # Passing candidates that do not apply on the goal branch's new head: run the
        # exploration again from there.
        engine._conflict(run, task, conflict.attempt, conflict)
    else:
        # The recovery planner sees the most promising candidate's work.
        context = next((r for r in reports if r.outcome in _JUDGED), reports[0])
        engine._failed(run, task, context.attempt, error, context.messages)
    engine._settle(run)
