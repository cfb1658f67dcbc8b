"""An attempt's workspace with real git: its worktree comes from the warm pool (the event says
which and whether it was reused), the project's set-up runs there with the pool's marker, and a
set-up that fails crashes the attempt with its output, before the agent runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from engine_helpers import MakeApp, goal_events, leftover_worktrees, make_repo, write

from blitz.backends.base import AgentRequest, AgentResult, MessageSink
from blitz.conductor.attempt import run_attempt
from blitz.domain import Attempt, AttemptState, Gates, Goal, GoalState, Project, Task
from blitz.envsetup import EnvSetup, SetupSpec
from blitz.events import Event, EventKind
from blitz.executors.base import AttemptRequest, Outcome, Setup
from blitz.pool import SPARE, WorktreePool
from blitz.sandbox import UNCONFINED
from blitz.validation import Validator
from blitz.workspace import Workspace


class Agent:
    """Writes one file where it is sent; remembers where that was."""

    name = "test"

    def __init__(self) -> None:
        self.worktrees: list[Path] = []

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        self.worktrees.append(request.worktree)
        (request.worktree / f"{request.task_id}.txt").write_text("done\n")
        return AgentResult(ok=True, summary="wrote a file")


def setup_running(script: str, runs: Path) -> EnvSetup:
    """The real set-up, unconfined, running ``script`` (each run noted in ``runs``)."""
    command = f"echo ran >> {runs}; {script}"
    return EnvSetup(spec=SetupSpec(command=command), policy=UNCONFINED)


def runs_of(runs: Path) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


@pytest.fixture
def ws(git_repo: Path, tmp_path: Path) -> Workspace:
    return Workspace(
        git_repo, worktrees_root=tmp_path / "worktrees", lock_dir=tmp_path / "locks", git_timeout=30
    )


async def attempt_in(
    ws: Workspace, pool: WorktreePool, agent: Agent, task_id: str, setup: Setup | None
) -> tuple[AttemptRequest, list[Event]]:
    project = Project(id="p-1", name="p", path=str(ws.repo))
    goal = Goal(id="g-1", project_id=project.id, title="goal", branch="blitz/goal-g-1")
    await ws.ensure_goal_branch(goal.branch, "main")
    task = Task(id=task_id, goal_id=goal.id, title=f"task {task_id}")
    told: list[Event] = []
    request = AttemptRequest(
        project=project,
        goal=goal,
        task=task,
        attempt=Attempt(id=f"a-{task_id}", goal_id=goal.id, task_id=task.id, number=1),
        backend=agent,
        workspace=ws,
        pool=pool,
        setup=setup,
        validator=Validator(Gates(test="test -f README.md")),
        baseline=None,
        timeout=60,
        emit=told.append,
    )
    return request, told


async def test_attempts_take_the_pooled_worktree_and_run_the_set_up_with_its_marker(
    ws: Workspace, tmp_path: Path
) -> None:
    pool = WorktreePool(ws, size=1)
    agent = Agent()
    runs = tmp_path / "runs"
    setup = setup_running("echo installing", runs)
    reports, ready = [], []
    for task_id in ("t1", "t2"):
        request, told = await attempt_in(ws, pool, agent, task_id, setup)
        reports.append(await run_attempt(request))
        ready += [e for e in told if e.kind is EventKind.WORKSPACE_READY and e.data]
    assert [r.outcome for r in reports] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
    assert agent.worktrees[0] == agent.worktrees[1] == ws.worktrees_dir / "pool-1"
    assert [(e.data["name"], e.data["reused"]) for e in ready] == [
        ("pool-1", False),
        ("pool-1", True),
    ]
    assert all(r.attempt.worktree == str(ws.worktrees_dir / "pool-1") for r in reports)
    # Once for the worktree: checked before each agent and each validation (the change may
    # touch a set-up input), it found its inputs unchanged in the pool's marker, outside the
    # worktree.
    assert runs_of(runs) == 1
    assert pool.marker("pool-1").is_file()
    assert not pool.marker("pool-1").is_relative_to(agent.worktrees[0])


async def test_a_failing_set_up_crashes_the_attempt_with_its_output(
    ws: Workspace, tmp_path: Path
) -> None:
    pool = WorktreePool(ws, size=1)
    agent = Agent()
    setup = setup_running("echo 'npm ERR! cannot reach the registry'; exit 3", tmp_path / "runs")
    request, _ = await attempt_in(ws, pool, agent, "t1", setup)
    report = await run_attempt(request)
    assert report.outcome is Outcome.CRASHED
    assert report.attempt.state is AttemptState.CRASHED
    assert agent.worktrees == []  # the agent never ran on a broken environment
    assert "set-up failed (exit 3)" in report.error and "cannot reach the registry" in report.error
    assert report.attempt.worktree == str(ws.worktrees_dir / "pool-1")
    [setup_result] = report.attempt.gates
    assert setup_result.name == "setup" and not setup_result.passed
    assert "cannot reach the registry" in setup_result.output_tail
    assert [e.busy for e in await pool.entries()] == [False]  # given back all the same


async def test_best_of_n_candidates_and_baselines_share_the_pool_across_goals(
    tmp_path: Path, apps: MakeApp, isolated_git: None
) -> None:
    app = apps(
        {
            "tasks": [{"id": "fix", "title": "Fix the value"}],
            "agent": {
                f"fix#{n}": [[write("value.txt", f"fine {n}\n"), write(f"junk{n}.tmp", "x")]]
                for n in (1, 2, 3)
            },
        }
    )
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates={"test": "true"})
    project = await app.register(repo)
    ready: list[Event] = []
    for title in ("first", "second"):
        goal = await app.new_goal(project, title, explore=3)
        engine = app.engine()
        engine.start(project, goal)
        finished = await asyncio.wait_for(engine.run(), 120)
        assert finished[goal.id].state is GoalState.SUCCEEDED, finished[goal.id].error
        ready += [e for e in goal_events(app, goal.id) if e.kind is EventKind.WORKSPACE_READY]
    names = [e.data["name"] for e in ready if e.data]
    # The first goal: its baseline, then three candidates side by side, all from the one pool;
    # the second: its baseline's results are kept (no worktree), then three candidates.
    assert len(names) == 7 and all(n.startswith("pool-") for n in names)
    assert len(set(names[1:4])) == 3 and len(set(names[4:7])) == 3
    assert len(set(names)) <= project.max_parallel + SPARE
    second = [e.data["reused"] for e in ready[4:] if e.data]
    assert second == [True] * 3  # the second goal made no worktree at all
    assert app.worktrees.pool(project, None) is app.worktrees.pool(project, None)
    assert leftover_worktrees(app.settings.home) == []
