"""Best-of-N: which candidates a task gets, running them side by side under one
:class:`~blitz.conductor.selection.Selection`, and tallying what came of them.

The engine starts :func:`explore` as one job and applies its :func:`tally` as it would one
attempt's report. The ranking itself is :mod:`blitz.conductor.selection`'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from blitz.conductor.goal import GoalRun
from blitz.conductor.selection import Selection
from blitz.conductor.spending import Spending
from blitz.domain import Attempt, AttemptState, Task, Usage
from blitz.events import Event, EventKind
from blitz.executors.base import AttemptReport, AttemptRequest, Executor, Outcome

RequestFor = Callable[[Attempt, Selection, int], AttemptRequest]
"""Builds one candidate's request: (attempt, its selection, how many share the budget)."""


@dataclass(frozen=True, slots=True)
class Exploration:
    """What a best-of-N job reports: each candidate's outcome, and the selection's verdicts."""

    results: list[AttemptReport | BaseException]
    selection: Selection


@dataclass(frozen=True, slots=True)
class Tally:
    """Best-of-N seen as one attempt: the report the task goes on with, what every candidate
    spent, what the judge spent (no attempt's: it is kept on the goal, as planning is), the
    error the router hears, whether a shutdown stopped them all, and the records of the
    candidates that did not win with the event that tells of them all."""

    report: AttemptReport
    usage: Usage
    judged: Usage
    error: str
    interrupted: bool
    losers: list[Attempt]
    event: Event


def backend_spec(spec: str) -> tuple[str, str]:
    """ "claude-code:sonnet" -> ("claude-code", "sonnet"); "codex" -> ("codex", "")."""
    backend, _, model = spec.strip().partition(":")
    return backend, model


def label(attempt: Attempt) -> str:
    name = f"{attempt.backend}:{attempt.model}" if attempt.model else attempt.backend
    return f"{name} #{attempt.candidate}" if attempt.candidate else name


def all_failed(reports: list[AttemptReport]) -> str:
    lines = [f"all {len(reports)} attempts failed:"]
    for r in reports:
        first = (r.attempt.verdict or r.error or r.outcome.value).splitlines()[0]
        lines.append(f"- {label(r.attempt)}: {first[:300]}")
    details = next((r.error for r in reports if r.outcome is Outcome.FAILED), "")
    return "\n".join(lines) + (f"\n\n{details}" if details else "")


_JUDGED = (Outcome.LOST, Outcome.FAILED, Outcome.CONFLICT)


def candidates(run: GoalRun, task: Task, backend: str) -> list[tuple[int, tuple[str, str]]]:
    """(candidate number, (backend, model)) of each attempt to start for a task: one plain
    attempt (number 0), or best-of-N spread over the goal's portfolio."""
    model = task.model or run.goal.model
    n = task.explore or run.goal.explore
    if n < 2:
        return [(0, (backend, model))]
    portfolio = run.goal.portfolio or (f"{backend}:{model}" if model else backend,)
    return [(i + 1, backend_spec(portfolio[i % len(portfolio)])) for i in range(n)]


async def explore(
    executor: Executor, request_for: RequestFor, run: GoalRun, task: Task, made: list[Attempt]
) -> Exploration:
    """Run best-of-N candidates side by side; the selection lets one of them integrate."""
    jobs: list[asyncio.Task[AttemptReport]] = []

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
    requests = [request_for(a, selection, len(made)) for a in made]
    jobs.extend(asyncio.ensure_future(executor.run(r)) for r in requests)
    try:
        results = await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        for job in jobs:
            job.cancel()
    for attempt in made:  # candidates cancelled before they could offer themselves
        if attempt.id not in selection.verdicts and not selection.done:
            selection.withdraw(attempt.id, "cancelled", label=label(attempt), cancelled=True)
    return Exploration(results=results, selection=selection)


def tally(
    run: GoalRun,
    task: Task,
    made: list[Attempt],
    result: Exploration,
    spending: Spending,
    *,
    draining: bool,
) -> Tally:
    """Every candidate's record and why the winner won; the task then goes on as the winner's
    attempt would (or fails with every candidate's reason)."""
    selection = result.selection
    now = run.journal.clock.time()
    reports: list[AttemptReport] = []
    for attempt, got in zip(made, result.results, strict=True):
        if isinstance(got, BaseException):
            cancelled = isinstance(got, asyncio.CancelledError)
            state = AttemptState.CANCELLED if cancelled else AttemptState.CRASHED
            error = "cancelled: another candidate won first" if cancelled else repr(got)
            got = AttemptReport(
                outcome=Outcome.CRASHED,
                attempt=attempt.evolve(
                    state=state,
                    error=error,
                    finished_at=now,
                    usage=spending.metered(attempt),  # what it spent before it was stopped
                ),
                error=error,
            )
        spending.forget(attempt.id)
        first_line = got.error.splitlines()[0] if got.error else ""
        verdict = selection.verdicts.get(attempt.id, first_line)
        reports.append(dataclasses.replace(got, attempt=got.attempt.evolve(verdict=verdict[:500])))
    usage = sum((r.attempt.usage for r in reports), Usage())
    judge = run.services.judge
    judged = judge.take_usage() if judge is not None else Usage()
    winner = next((r for r in reports if r.outcome is Outcome.SUCCEEDED), None)
    event = _explored(run, task, made, reports, winner, selection.summary())
    losers = [r.attempt for r in reports if r is not winner]
    outcomes = {r.outcome for r in reports}
    error = "" if winner else all_failed(reports)
    if winner is not None:
        report = winner
    elif outcomes <= {Outcome.CRASHED, Outcome.CONFIG, Outcome.UNAVAILABLE}:
        config = next((r for r in reports if r.outcome is Outcome.CONFIG), None)
        # Candidates whose provider is out: the task waits for it rather than crashing.
        waiting = next((r for r in reports if r.outcome is Outcome.UNAVAILABLE), None)
        report = (
            config
            or waiting
            or AttemptReport(outcome=Outcome.CRASHED, attempt=made[0], error=error)
        )
    elif conflict := next((r for r in reports if r.outcome is Outcome.CONFLICT), None):
        # Passing candidates that do not apply on the goal branch's new head: run the
        # exploration again from there.
        report = conflict
    else:
        # The recovery planner sees the most promising candidate's work.
        context = next((r for r in reports if r.outcome in _JUDGED), reports[0])
        report = dataclasses.replace(context, outcome=Outcome.FAILED, error=error)
    interrupted = draining and outcomes <= {Outcome.CRASHED}
    return Tally(report, usage, judged, error, interrupted, losers, event)


def _explored(
    run: GoalRun,
    task: Task,
    made: list[Attempt],
    reports: list[AttemptReport],
    winner: AttemptReport | None,
    summary: str,
) -> Event:
    return run.event(
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
