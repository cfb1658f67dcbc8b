"""Publishing retried on the engine's clock: a real bare remote refuses the first pushes; the
engine waits 1 s, 2 s, 4 s ... of its (manual) clock between tries, and gives up after
``publish_retry_for`` seconds, leaving the goal succeeded with publishing pending."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import git, make_repo, task, wait_until, write

from blitz.app import App
from blitz.conductor.publishing import delays
from blitz.domain import Goal, GoalState
from blitz.settings import Settings
from blitz.testing.clock import ManualClock
from blitz.testing.scripted import Scenario

pytestmark = pytest.mark.usefixtures("isolated_git")

SCENARIO: dict[str, Any] = {
    "tasks": [task("note")],
    "agent": {"note": [[write("note.txt", "note\n")]]},
}


def refusing_remote(repo: Path, root: Path, refusals: int) -> Path:
    """An ``origin`` for ``repo`` whose pre-receive hook refuses the first ``refusals`` pushes."""
    bare = root / "origin.git"
    git(root, "init", "-q", "--bare", str(bare))
    count = shlex.quote(str(root / "refused"))
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {count} 2>/dev/null || echo 0)\n"
        f'if [ "$n" -lt {refusals} ]; then echo $((n + 1)) > {count}; '
        "echo 'busy, try later' >&2; exit 1; fi\n"
    )
    hook.chmod(0o755)
    git(repo, "remote", "add", "origin", str(bare))
    return bare


def tries(app: App, goal_id: str) -> list[float | None]:
    """The ``retry_in`` of every failed try at publishing, in order."""
    events = app.store.events(goal_id=goal_id, limit=10_000)
    return [e.data["retry_in"] for e in events if e.kind == "publish.failed"]


def tried_times(app: App, goal_id: str, n: int) -> Callable[[], bool]:
    return lambda: len(tries(app, goal_id)) == n


async def run_with(
    tmp_path: Path, refusals: int, retry_for: float
) -> tuple[App, ManualClock, Path, asyncio.Task[dict[str, Goal]], Goal]:
    clock = ManualClock()
    app = App(
        Settings(home=tmp_path / "home", publish_retry_for=retry_for),
        clock=clock,
        scenario=Scenario.from_data(SCENARIO),
    )
    repo = make_repo(tmp_path)
    bare = refusing_remote(repo, tmp_path, refusals)
    engine = app.engine()
    project = await app.register(repo)
    goal = await app.new_goal(project, "Write a note")
    engine.start(project, goal)
    return app, clock, bare, asyncio.ensure_future(engine.run()), goal


def test_the_waits_double_up_to_a_minute_within_the_bound() -> None:
    assert list(delays(0)) == []
    assert list(delays(7)) == [1, 2, 4]
    assert list(delays(300)) == [1, 2, 4, 8, 16, 32, 60, 60, 60]


async def test_a_refused_push_is_retried_on_the_engines_clock_until_it_goes_through(
    tmp_path: Path,
) -> None:
    app, clock, bare, running, goal = await run_with(tmp_path, refusals=3, retry_for=300)
    try:
        for tried, wait in enumerate((1.0, 2.0, 4.0), start=1):
            await wait_until(tried_times(app, goal.id, tried))
            assert tries(app, goal.id)[-1] == wait
            await asyncio.sleep(0.2)  # real time passes: nothing more happens until the clock
            assert len(tries(app, goal.id)) == tried and not running.done()
            clock.advance(wait)
        finished = await asyncio.wait_for(running, 60)
    finally:
        running.cancel()
        await app.aclose()
    final = finished[goal.id]
    assert final.state is GoalState.SUCCEEDED
    assert (final.publish_state, final.publish_error, final.publish_attempts) == (
        "published",
        "",
        3,
    )
    assert git(bare, "rev-parse", f"refs/heads/{final.branch}")


async def test_publishing_that_keeps_failing_leaves_the_goal_succeeded_and_pending(
    tmp_path: Path,
) -> None:
    app, clock, _, running, goal = await run_with(tmp_path, refusals=99, retry_for=3)
    try:
        for tried, wait in enumerate((1.0, 2.0), start=1):
            await wait_until(tried_times(app, goal.id, tried))
            clock.advance(wait)
        finished = await asyncio.wait_for(running, 60)
        final = finished[goal.id]
        assert final.state is GoalState.SUCCEEDED and final.error == ""
        assert (final.publish_state, final.publish_attempts) == ("pending", 3)
        assert "busy, try later" in final.publish_error
        assert app.store.get_goal(goal.id) == final
        assert tries(app, goal.id) == [1.0, 2.0, None]  # the last one: left pending
    finally:
        running.cancel()
        await app.aclose()
