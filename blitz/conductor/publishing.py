"""Publishing: once every task of a goal is settled, push its branch and open its pull
request (the services' publisher does both), then say how the goal ended."""

from __future__ import annotations

from blitz.conductor.goal import End, GoalRun, failed_or_held
from blitz.conductor.services import GoalReport, Published
from blitz.domain import GoalState
from blitz.events import EventKind


async def publish(run: GoalRun) -> Published:
    """The publishing job: everything recorded so far is flushed first."""
    store = run.journal.store
    await store.flush()
    if run.services.publish is None:
        return Published()
    report = GoalReport(
        project=run.project,
        goal=run.goal,
        tasks=tuple(run.tasks.values()),
        attempts=tuple(store.load_attempts(run.goal.id)),
        recoveries=tuple(store.load_recoveries(run.goal.id)),
        scripted=run.services.scripted,
    )
    published: Published = await run.services.publish(report)
    return published


def published(run: GoalRun, result: Published | BaseException) -> End:
    """How the goal ends after publishing: failed if publishing or any task did."""
    if isinstance(result, BaseException):
        error = f"publishing failed: {result}"
        return End(GoalState.FAILED, error, (run.event(EventKind.GOAL_FAILED, error),))
    events = []
    if result.pushed:
        events.append(run.event(EventKind.PR_PUSHED, f"pushed {run.goal.branch}"))
    if result.pr_url:
        url = result.pr_url
        events.append(run.event(EventKind.PR_OPENED, url, data={"url": url}))
    if result.description_path:
        path = result.description_path
        events.append(run.event(EventKind.PR_WRITTEN, path, data={"path": path}))
    run.goal = run.goal.evolve(pr_url=result.pr_url or result.description_path)
    failed = failed_or_held(run.tasks)
    if failed:
        error = f"{len(failed)} task(s) did not succeed: {', '.join(t.id for t in failed)}"
        return End(GoalState.FAILED, error, tuple(events))
    return End(GoalState.SUCCEEDED, "", tuple(events))
