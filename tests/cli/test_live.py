"""The live view as a person reads it: rendered into a fixed-size recording console at points of
a real goal (the scripted agent on a real repository, real gates, the real store), and the line
``blitz events`` prints for a validation that failed."""

from __future__ import annotations

import asyncio
import io
import shlex
from pathlib import Path

import pytest
from engine_helpers import (
    MakeApp,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    make_repo,
    of_kind,
    start_goal,
    task,
    wait_until,
    write,
)

from blitz.cli.console import RedactedConsole
from blitz.cli.events import line
from blitz.cli.live import Watch, render
from blitz.conductor import Engine
from blitz.domain import GoalState, TaskState
from blitz.events import EventKind, headline
from blitz.server.schemas import Progress

pytestmark = pytest.mark.usefixtures("isolated_git")

TITLE = "Greet [everyone]"


def frame(engine: Engine, goal_id: str, watch: Watch) -> str:
    """What the view shows now, as plain text, on a terminal 120 columns wide."""
    console = RedactedConsole(
        file=io.StringIO(), width=120, record=True, color_system=None, highlight=False
    )
    console.print(render(engine, [goal_id], watch))
    return console.export_text()


def row(text: str, task_id: str) -> str:
    """The table's row of ``task_id``."""
    [found] = [r for r in text.splitlines() if r.split()[:1] == [task_id]]
    return found


@pytest.mark.timeout(180)
async def test_the_live_view_at_the_baseline_a_running_task_and_the_end(
    tmp_path: Path, apps: MakeApp, hold_file: Path
) -> None:
    baseline_hold, agent_hold = hold_file, hold_file.with_suffix(".agent")
    baseline_hold.touch()
    agent_hold.touch()

    def wait(hold: Path) -> str:
        return f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done"

    repo = make_repo(
        tmp_path,
        gates={"test": f"{wait(baseline_hold)}; test -f README.md", "timeout": 60},
        limits={"max_recoveries_per_task": 0},
        sections={"sandbox": {"mode": "off"}},
    )
    scenario = {
        "tasks": [
            task("a"),
            task("b", "a"),
            task("c", title="Check [c]", checks=[{"kind": "command", "command": "false"}]),
        ],
        "agent": {
            "a": [[write("a.txt", "a\n")]],
            "b": [[{"run": wait(agent_hold)}, write("b.txt", "b\n")]],
            "c": [[write("c.txt", "c\n")]],
        },
    }
    app = apps(scenario)
    engine = app.engine()
    goal_id = (await start_goal(app, engine, repo, TITLE)).goal.id
    running = asyncio.ensure_future(engine.run())
    watch = Watch()
    try:
        # The base branch's gates run: the goal says so, not "planning", and no "0/0 tasks".
        await wait_until(lambda: "checking the base branch" in frame(engine, goal_id, watch), 60)
        shown = frame(engine, goal_id, watch)
        assert f"{TITLE}  {goal_id}  checking the base branch: test…" in shown
        assert "planning" not in shown and "tasks" not in shown.splitlines()[0]

        # a succeeded, b's agent is at work: b runs, and the counts say one task is done.
        baseline_hold.unlink()
        runs = engine.runs

        def tasks() -> dict[str, TaskState]:
            run = runs.get(goal_id)
            return {t.id: t.state for t in run.tasks.values()} if run else {}

        await wait_until(
            lambda: (
                tasks().get("a") is TaskState.SUCCEEDED and tasks().get("b") is TaskState.RUNNING
            ),
            60,
        )
        shown = frame(engine, goal_id, watch)
        assert f"{TITLE}  {goal_id}  running  1/3 tasks" in shown
        assert row(shown, "a").split()[:3] == ["a", "succeeded", "1"]
        assert row(shown, "b").split()[:3] == ["b", "running", "1"]
        assert row(shown, "b").split()[3].endswith("s")  # its running time
    finally:
        agent_hold.unlink(missing_ok=True)
        baseline_hold.unlink(missing_ok=True)
        finished = await asyncio.wait_for(running, 120)
    assert finished[goal_id].state is GoalState.FAILED

    # The last frame: the goal's end, its real counts and every task.
    shown = frame(engine, goal_id, Watch())
    assert f"{TITLE}  {goal_id}  failed  2/3 tasks" in shown
    assert row(shown, "a").split()[:2] == ["a", "succeeded"]
    assert row(shown, "b").split()[:2] == ["b", "succeeded"]
    assert row(shown, "c").split()[:2] == ["c", "failed"]
    assert row(shown, "c").endswith("Check [c] - gate check:command:false failed (exit 1): false")
    # The dashboard's API counts the same.
    api = Progress.of(app.store.load_tasks(goal_id))
    assert (api.done, api.total) == (2, 3)

    # `blitz events` shows the failing check of c's validation, not its first (passing) gate.
    [failed] = of_kind(goal_events(app, goal_id), EventKind.VALIDATION_FAILED, "c")
    assert failed.message.splitlines()[0] == "test: passed"
    assert line(failed).endswith("check:command:false: FAILED (exit 1) (+1 more line)")


def test_the_headline_of_a_message_is_what_went_wrong() -> None:
    assert headline("") == ""
    assert headline("one line") == "one line"
    assert headline("first\nsecond\n") == "first (+1 more line)"
    assert (
        headline("build: passed\ntest: FAILED (exit 1, 1 new failure: t)\ntypecheck: passed")
        == "test: FAILED (exit 1, 1 new failure: t) (+2 more lines)"
    )
    assert (
        headline("test: TIMED OUT after 60s\n\nlint: FAILED (exit 2)")
        == "test: TIMED OUT after 60s; lint: FAILED (exit 2)"
    )
    # A test runner's own lines are not validation's: the first line stands.
    assert headline("gate test failed (exit 1): pytest\nFAILED t.py::test_x - assert 0") == (
        "gate test failed (exit 1): pytest (+1 more line)"
    )
