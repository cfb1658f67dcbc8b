"""The attempt pipeline without git: the agent's timeout and how its outcome is reported."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from blitz.backends.base import AgentRequest, AgentResult, MessageSink
from blitz.conductor.attempt import run_attempt
from blitz.domain import Attempt, AttemptState, Goal, Project, Task
from blitz.executors.base import AttemptRequest, Outcome


class Backend:
    """Sleeps ``delay`` seconds (never suspends when None), then succeeds."""

    name = "test"

    def __init__(self, delay: float | None = None) -> None:
        self.delay = delay
        self.calls = 0

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        self.calls += 1
        if self.delay is not None:
            await asyncio.sleep(self.delay)
        return AgentResult(ok=True, summary=f"done after {self.delay}")


def context(tmp_path: Path, backend: Backend, timeout: float) -> AttemptRequest:
    project = Project(id="p-1", name="p", path=str(tmp_path))
    goal = Goal(id="g-1", project_id=project.id, title="goal")
    task = Task(id="t1", goal_id=goal.id, title="task", allow_empty=True)
    attempt = Attempt(id="a-1", goal_id=goal.id, task_id=task.id, number=1)
    return AttemptRequest(
        project=project,
        goal=goal,
        task=task,
        attempt=attempt,
        backend=backend,
        workspace=None,
        validator=None,
        baseline=None,
        timeout=timeout,
        emit=lambda event: None,
    )


@pytest.mark.parametrize("delay", [None, 0.0, 0.01])
async def test_an_agent_that_finishes_in_time_succeeds(tmp_path: Path, delay: float | None) -> None:
    backend = Backend(delay)
    report = await run_attempt(context(tmp_path, backend, timeout=30))
    assert report.outcome is Outcome.SUCCEEDED
    assert report.attempt.state is AttemptState.SUCCEEDED
    assert report.attempt.summary == f"done after {delay}"
    assert report.attempt.worktree == str(tmp_path)
    assert backend.calls == 1


async def test_an_agent_that_overruns_its_timeout_fails(tmp_path: Path) -> None:
    report = await run_attempt(context(tmp_path, Backend(delay=30), timeout=0.05))
    assert report.outcome is Outcome.FAILED
    assert report.attempt.state is AttemptState.FAILED
    assert "did not finish within" in report.error


async def test_cancelling_an_attempt_cancels_its_agent(tmp_path: Path) -> None:
    job = asyncio.ensure_future(run_attempt(context(tmp_path, Backend(delay=30), timeout=60)))
    await asyncio.sleep(0.01)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
