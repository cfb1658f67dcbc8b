"""The attempt pipeline: the agent's timeout, how its outcome is reported, and a cancelled
attempt's agent seeing the cancellation (an in-process agent gets CancelledError; an agent CLI's
process tree is gone)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from pathlib import Path

import pytest
from engine_helpers import sleeping_processes, wait_until

from blitz.backends.base import AgentRequest, AgentResult, MessageSink
from blitz.backends.command import CommandBackend
from blitz.backends.options import CommandBackendConfig
from blitz.conductor.attempt import run_attempt
from blitz.domain import Attempt, AttemptState, Check, Goal, Project, Task
from blitz.executors.base import AttemptRequest, Outcome


class Backend:
    """Sleeps ``delay`` seconds (never suspends when None), then succeeds. Records when it has
    started and whether it was cancelled (the CancelledError reached it) and then ended."""

    name = "test"

    def __init__(self, delay: float | None = None) -> None:
        self.delay = delay
        self.calls = 0
        self.started = asyncio.Event()
        self.cancelled = False
        self.ended = False
        self.requests: list[AgentRequest] = []

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        self.calls += 1
        self.requests.append(request)
        self.started.set()
        try:
            if self.delay is not None:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.ended = True
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


async def test_the_agent_reads_the_plan_s_file_hints_and_checks(tmp_path: Path) -> None:
    backend = Backend()
    ctx = context(tmp_path, backend, timeout=30)
    task = dataclasses.replace(
        ctx.task,
        instructions="Add slugify().",
        files=("textutil.py", "test_textutil.py"),
        checks=(Check(kind="file_exists", path="textutil.py"),),
    )
    await run_attempt(dataclasses.replace(ctx, task=task))
    [request] = backend.requests
    assert request.instructions == (
        "Add slugify().\n\nFiles this task is expected to touch: textutil.py, test_textutil.py"
        "\n\nAcceptance checks: file textutil.py exists"
    )


async def test_an_agent_that_overruns_its_timeout_fails(tmp_path: Path) -> None:
    report = await run_attempt(context(tmp_path, Backend(delay=30), timeout=0.05))
    assert report.outcome is Outcome.FAILED
    assert report.attempt.state is AttemptState.FAILED
    assert "did not finish within" in report.error


async def test_cancelling_an_attempt_cancels_its_agent(tmp_path: Path) -> None:
    backend = Backend(delay=300)
    job = asyncio.ensure_future(run_attempt(context(tmp_path, backend, timeout=600)))
    await asyncio.wait_for(backend.started.wait(), 30)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    # The agent itself was told, and had ended by the time the attempt's cancellation returned.
    assert backend.cancelled and backend.ended


async def test_cancelling_an_attempt_kills_its_agent_clis_process_tree(
    git_repo: Path, tmp_path: Path
) -> None:
    marker = f"{300 + secrets.randbelow(10**6) / 10**7:.7f}"  # a sleep no one else runs
    child = f"sleep {marker} & sleep {marker}; wait"  # a shell with two sleeping children
    cli = CommandBackend("cli", CommandBackendConfig(command=["sh", "-c", child]))
    ctx = dataclasses.replace(context(git_repo, Backend(), timeout=600), backend=cli)
    job = asyncio.ensure_future(run_attempt(ctx))
    await wait_until(lambda: len(sleeping_processes(marker)) == 2)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert sleeping_processes(marker) == []
