"""Provider storms: a model provider that is rate-limited or overloaded for longer than one call's
retries makes the tasks that need it wait, and the goal still succeeds.

The real engine, git and store; the embedded agent's real pydantic-ai client talking over HTTP to
the scripted model server on 127.0.0.1, which answers with the storm first. Time is a
:class:`~blitz.testing.clock.WarpClock`: a 90 s ``Retry-After`` or a breaker's 60 s cooldown
passes in a fraction of a second, in order, without advancing time by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (
    assert_engine_invariants,
    branch_commits,
    goal_events,
    make_repo,
    of_kind,
    start_goal,
)

from blitz.app import App
from blitz.domain import BreakerState, GoalState, TaskState
from blitz.llm.planner import PLAN_TOOL
from blitz.settings import Settings
from blitz.testing.clock import WarpClock
from blitz.testing.model_server import ModelServer
from blitz.testing.scripted import Scenario

KEY = "test-key-not-real-5678"
MODEL = "anthropic:claude-sonnet-4-6"
PROVIDER = "provider:anthropic"
PLANNING = "You plan software work"  # in the planner's system prompt only


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "input": args}


def agent_turns(task_id: str) -> list[dict[str, Any]]:
    """One attempt at a task: write its file, then finish."""
    match = f"Task {task_id}:"
    return [
        {
            "match": match,
            "reply": {"tool_calls": [call("write_file", path=f"{task_id}.txt", content="done\n")]},
        },
        {
            "match": match,
            "match_tool_result": "wrote",
            "reply": {"tool_calls": [call("finish", summary=f"Wrote {task_id}.txt.")]},
        },
    ]


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


@pytest.fixture
async def app(tmp_path: Path, server: ModelServer) -> Any:
    """An app whose agent is the embedded one on the scripted model server, on a warped clock;
    the plan (one task, ``a``) is scripted."""
    settings = Settings(
        home=tmp_path / "home", anthropic_base_url=server.anthropic_base_url, anthropic_api_key=KEY
    )
    scenario = Scenario.from_data({"tasks": [{"id": "a", "title": "Write a.txt"}]})
    made = App(settings, scenario=scenario, clock=WarpClock(200), models={"agent": MODEL})
    yield made
    await made.aclose()


async def run_goal(app: App, tmp_path: Path) -> tuple[Path, Any]:
    repo = make_repo(tmp_path, project={"backend": "embedded"})
    engine = app.engine()
    started = await start_goal(app, engine, repo)
    finished = await engine.run()
    return repo, finished[started.goal.id]


async def test_a_long_retry_after_parks_the_task_until_then_and_the_goal_succeeds(
    app: App, server: ModelServer, tmp_path: Path
) -> None:
    server.add(*agent_turns("a"))
    # More times than a task may crash: waiting for the provider must not count as crashing.
    server.fail_next(4, 429, retry_after=90, message="Rate limited: come back later")

    repo, goal = await run_goal(app, tmp_path)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    (task,) = app.store.load_tasks(goal.id)
    assert (task.state, task.crashes, task.attempts) == (TaskState.SUCCEEDED, 0, 5)
    events = goal_events(app, goal.id)
    assert of_kind(events, "task.crashed") == [] and of_kind(events, "task.failed") == []
    waits = of_kind(events, "task.waiting", "a")
    assert len(waits) == 4
    assert all(w.data["seconds"] == 90 for w in waits)
    assert all("asked to wait 90s" in w.data["reason"] for w in waits)
    # Each next attempt started only once the provider's 90 s were over.
    starts = of_kind(events, "task.started", "a")
    assert all(s.ts >= w.data["until"] for w, s in zip(waits, starts[1:], strict=True))
    # One request per attempt: a wait that long is not spent inside the call.
    assert [r.status for r in server.requests] == [429] * 4 + [200, 200]
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("a",)]
    assert_engine_invariants(app, repo, goal)


async def test_a_storm_of_short_retry_afters_longer_than_the_retry_budget_is_waited_out(
    app: App, server: ModelServer, tmp_path: Path
) -> None:
    server.add(*agent_turns("a"))
    # Each 429 asks for 2 s, waited inside the call; nine in a row outlast an attempt's tries
    # and open the provider's breaker for the 2 s asked, again and again.
    server.fail_next(9, 429, retry_after=2, message="Rate limited")

    repo, goal = await run_goal(app, tmp_path)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    (task,) = app.store.load_tasks(goal.id)
    assert (task.state, task.crashes) == (TaskState.SUCCEEDED, 0)
    events = goal_events(app, goal.id)
    assert of_kind(events, "task.crashed") == [] and of_kind(events, "task.failed") == []
    assert of_kind(events, "task.waiting", "a")
    opened = [e for e in app.store.events(limit=100_000) if e.kind == "breaker.opened"]
    assert opened and all(e.data["key"] == PROVIDER for e in opened)
    (record,) = [b for b in app.store.load_breakers() if b.key == PROVIDER]
    assert record.state is BreakerState.CLOSED
    assert [r.status for r in server.requests] == [429] * 9 + [200, 200]
    assert_engine_invariants(app, repo, goal)


async def test_an_overload_longer_than_the_retry_budget_waits_on_the_breaker(
    app: App, server: ModelServer, tmp_path: Path
) -> None:
    server.add(*agent_turns("a"))
    # 4 tries per call: the first attempt gives up, the next opens the breaker (5 failures), and
    # two probes after its cooldowns fail too before the provider is back.
    server.fail_next(7, 529)

    repo, goal = await run_goal(app, tmp_path)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    (task,) = app.store.load_tasks(goal.id)
    assert (task.state, task.crashes) == (TaskState.SUCCEEDED, 0)
    events = goal_events(app, goal.id)
    assert of_kind(events, "task.crashed") == [] and of_kind(events, "task.failed") == []
    assert len(of_kind(events, "task.waiting", "a")) >= 2
    # Every move of the provider's breaker is an event and is persisted.
    moves = [
        (e.data["from"], e.data["to"])
        for e in app.store.events(limit=100_000)
        if e.kind.startswith("breaker.") and e.data["key"] == PROVIDER
    ]
    assert moves[0] == ("closed", "open") and moves[-1] == ("half_open", "closed")
    assert ("open", "half_open") in moves
    (record,) = [b for b in app.store.load_breakers() if b.key == PROVIDER]
    assert record.state is BreakerState.CLOSED and record.failures == 0
    assert [r.status for r in server.requests] == [529] * 7 + [200, 200]
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("a",)]
    assert_engine_invariants(app, repo, goal)


async def test_planning_waits_out_a_long_retry_after_instead_of_failing_the_goal(
    tmp_path: Path, server: ModelServer
) -> None:
    task = {"id": "a", "title": "Write a.txt", "instructions": "Write 'done' to a.txt."}
    plan = {"summary": "Write a.txt.", "tasks": [task]}
    server.add(
        {"match": PLANNING, "reply": {"tool_calls": [call(PLAN_TOOL, **plan)]}},
        *agent_turns("a"),
    )
    server.fail_next(2, 429, retry_after=120, message="Rate limited: come back later")
    settings = Settings(
        home=tmp_path / "home", anthropic_base_url=server.anthropic_base_url, anthropic_api_key=KEY
    )
    app = App(settings, clock=WarpClock(200), models={"default": MODEL})
    try:
        repo, goal = await run_goal(app, tmp_path)

        assert goal.state is GoalState.SUCCEEDED, goal.error
        events = goal_events(app, goal.id)
        waits = of_kind(events, "plan.waiting")
        assert [w.data["seconds"] for w in waits] == [120, 120]
        assert of_kind(events, "plan.created") and of_kind(events, "task.waiting") == []
        assert [r.status for r in server.requests] == [429, 429, 200, 200, 200]
        assert_engine_invariants(app, repo, goal)
    finally:
        await app.aclose()
