"""Publishing: once every task of a goal is settled, push its branch and open its pull
request (the services' publisher does both), then say how the goal ended.

Publishing is a step that can be retried, never a reason to fail work that is done. A push or a
pull request that fails is retried with backoff on the engine's clock (1 s, 2 s, 4 s ... at most
a minute apart) for ``Services.publish_retry_for`` seconds; the goal's ``publish_state`` is
"pending" meanwhile. If it still fails, a goal whose tasks all succeeded ends ``succeeded`` with
publishing pending: ``blitz resume``, a daemon's start and ``blitz publish`` try again. A
configuration error (a token or a remote's credentials refused) is not retried: its message says
what to fix. Publishing is idempotent (:mod:`blitz.publish`), so trying again is safe.
"""

from __future__ import annotations

from collections.abc import Iterator

from blitz.conductor.goal import End, GoalRun
from blitz.conductor.outcomes import failed_or_held
from blitz.conductor.services import GoalReport, Published
from blitz.domain import PUBLISH_PENDING, PUBLISHED, Goal, GoalState
from blitz.errors import UserError
from blitz.events import Event, EventKind
from blitz.redact import redact

PENDING = PUBLISH_PENDING
"""A goal's ``publish_state`` while publishing is to be retried (:data:`blitz.domain.PUBLISHED`
once it pushed)."""

FIRST_DELAY, MAX_DELAY = 1.0, 60.0
"""Seconds before the first retry, and the most between two (the delay doubles)."""


def pending(goal: Goal) -> bool:
    """Whether ``goal`` succeeded but is still to be published (resume and a daemon's start
    take it on)."""
    return goal.state is GoalState.SUCCEEDED and goal.publish_state == PENDING


def delays(retry_for: float) -> Iterator[float]:
    """The waits before each retry: doubling from :data:`FIRST_DELAY` up to :data:`MAX_DELAY`,
    for as long as their sum stays within ``retry_for`` seconds."""
    delay, total = FIRST_DELAY, 0.0
    while total + delay <= retry_for:
        yield delay
        total += delay
        delay = min(delay * 2, MAX_DELAY)


async def publish(run: GoalRun) -> Published:
    """The publishing job: everything recorded so far is flushed first; a failure is retried
    with backoff (see the module), and the last one is raised."""
    store = run.journal.store
    await store.flush()
    if run.services.publish is None:
        return Published()
    waits = delays(run.services.publish_retry_for)
    while True:
        report = GoalReport(
            project=run.project,
            goal=run.goal,
            tasks=tuple(run.tasks.values()),
            attempts=tuple(store.load_attempts(run.goal.id)),
            recoveries=tuple(store.load_recoveries(run.goal.id)),
            scripted=run.services.scripted,
        )
        try:
            published: Published = await run.services.publish(report)
            return published
        except UserError:
            raise  # a person must fix it first
        except Exception as exc:
            wait = None if run.cancelled else next(waits, None)
            if wait is None:
                raise
            run.goal = failed(run, exc)
            run.journal.write(run.goal, events=[failure_event(run, exc, retry_in=wait)])
        await run.journal.clock.sleep(wait)


def failed(run: GoalRun, exc: BaseException) -> Goal:
    """The goal with this failed try at publishing counted."""
    return run.goal.evolve(
        publish_state=PENDING,
        publish_error=describe(exc),
        publish_attempts=run.goal.publish_attempts + 1,
    )


def describe(exc: BaseException) -> str:
    """What went wrong, redacted: git's and GitHub's messages may quote a remote's URL."""
    return redact(str(exc) or type(exc).__name__)


def failure_event(run: GoalRun, exc: BaseException, *, retry_in: float | None) -> Event:
    """The event of a failed try: when it is tried again, or that it is left pending."""
    error = describe(exc)
    tries = run.goal.publish_attempts
    if retry_in is not None:
        message = f"publishing failed (try {tries}), trying again in {retry_in:g} s: {error}"
    else:
        message = f"publishing failed (try {tries}); left pending for `blitz publish`: {error}"
    return run.event(
        EventKind.PUBLISH_FAILED,
        message,
        data={"error": error, "attempts": tries, "retry_in": retry_in},
    )


def published(run: GoalRun, result: Published | BaseException) -> End:
    """How the goal ends after publishing: failed if any task did; otherwise succeeded, with
    publishing pending if it failed."""
    failed_tasks = failed_or_held(run.tasks)
    events = []
    if isinstance(result, BaseException):
        if failed_tasks:
            error = f"publishing failed: {describe(result)}"
            return End(GoalState.FAILED, error, (run.event(EventKind.GOAL_FAILED, error),))
        run.goal = failed(run, result)
        return End(GoalState.SUCCEEDED, "", (failure_event(run, result, retry_in=None),))
    if result.pushed:
        events.append(run.event(EventKind.PR_PUSHED, f"pushed {run.goal.branch}"))
    if result.pr_url:
        url = result.pr_url
        events.append(run.event(EventKind.PR_OPENED, url, data={"url": url}))
    if result.description_path:
        path = result.description_path
        events.append(run.event(EventKind.PR_WRITTEN, path, data={"path": path}))
    run.goal = run.goal.evolve(
        pr_url=result.pr_url or result.description_path,
        publish_state=PUBLISHED if result.pushed else "",
        publish_error="",
    )
    if failed_tasks:
        error = f"{len(failed_tasks)} task(s) did not succeed: "
        error += ", ".join(t.id for t in failed_tasks)
        return End(GoalState.FAILED, error, tuple(events))
    return End(GoalState.SUCCEEDED, "", tuple(events))
