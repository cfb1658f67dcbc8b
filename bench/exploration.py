"""Best-of-N benchmark: goal completion, attempts, cost and time against the agent's reliability.

The results are SIMULATED: the agent is the flaky backend (:mod:`blitz.testing.flaky`), whose
attempts succeed with a seeded probability p, take 20-60 ms and cost $0.01 each. They say what the
engine's best-of-N and recovery make of an agent that reliable, not how good any model is.

Each cell runs ``--runs`` goals of 20 tasks (4 layers of 5; each task after the first layer
depends on two tasks of the layer before) through the real Engine, Router, BreakerBoard and
SqlStore (a fresh SQLite file per cell), without git, gates or a model. The cells: p in 0.5,
0.7, 0.9; N = 1, 3, 5 candidates per task; recovery off (no retries) or "retry" (a planner that
always answers retry, within the engine's default limits: 2 recoveries per task, 10 per goal);
mode "all" (wait for every candidate) everywhere, and mode "first" (the first passing candidate
wins, the others are cancelled) for N > 1 with recovery.

Per cell: the goal completion rate and the exact probability of completion ("expected"), and per
goal the mean attempts (agent runs started, cancelled candidates included), the cost the engine
recorded (the flaky backend reports an attempt's whole cost as it starts, so a cancelled
candidate counts in full), the cost the agents would have spent had a cancelled candidate cost
only the elapsed share of its run, the spending per completed goal, and the wall time from start
to finish (publishing included).

Run *i* of every cell uses goal id ``g-<i>``, so its draws (a hash of the seed, goal, task,
attempt and candidate) are shared across cells: N = 5 sees the same first three candidates as
N = 3. Those draws alone dictate whether a goal must succeed; the bench checks that the engine's
outcome agrees for every goal, and exits 1 if one does not (a lost candidate or recovery).

Goals of a cell run ``--jobs`` at a time in one engine (default 2: the whole run takes about 85 s
and goals slow each other down by ~5%; more jobs is faster but inflates wall times).

Run: ``uv run python bench/exploration.py`` (``--p 0.7`` for one probability, ``--runs``,
``--duration LOW HIGH`` in ms, ``--no-first``, ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from blitz.backends.base import AgentRequest, AgentResult, MessageSink
from blitz.breaker import BreakerBoard
from blitz.clock import SystemClock
from blitz.conductor import Engine, Limits, Services
from blitz.domain import Goal, GoalState, Plan, Project, RecoveryAction, RecoveryPlan, TaskSpec
from blitz.errors import UserError
from blitz.planner import FilePlanner, Planned, PlanRequest, Recovered, RecoveryRequest
from blitz.router import Router
from blitz.store.sql import SqlStore
from blitz.testing.flaky import DEFAULT_USAGE, FlakyBackend

LAYERS, WIDTH = 4, 5
PROBABILITIES = (0.5, 0.7, 0.9)
CANDIDATES = (1, 3, 5)
DURATION = (0.02, 0.06)  # seconds per attempt, uniform
WITH_RECOVERY = Limits()  # the engine's defaults
WITHOUT_RECOVERY = Limits(max_recoveries_per_task=0, max_recoveries_per_goal=0)
NOTE = (
    "Simulated: each agent attempt succeeds with a seeded probability p (the flaky backend), "
    "so these figures measure the engine's best-of-N and recovery, not model quality."
)

Mode = Literal["all", "first"]


def plan_of(layers: int = LAYERS, width: int = WIDTH) -> Plan:
    """Layers of parallel tasks, each depending on two neighbours of the layer before: a chain
    ``layers`` deep and ``width`` wide."""
    tasks = []
    for layer in range(layers):
        for i in range(width):
            before = (
                tuple(sorted({f"l{layer - 1}t{i}", f"l{layer - 1}t{(i + 1) % width}"}))
                if layer
                else ()
            )
            tasks.append(
                TaskSpec(id=f"l{layer}t{i}", title=f"layer {layer} task {i}", depends_on=before)
            )
    return Plan(summary="exploration bench", tasks=tuple(tasks))


class Meter:
    """The flaky backend, metered: what its agents spent per goal if a candidate cancelled
    mid-run (mode "first") had cost only its share of the attempt's duration. The engine
    records what the backend reported as spent, which for the flaky backend is the whole cost,
    reported when the attempt starts."""

    name = "flaky"

    def __init__(self, backend: FlakyBackend) -> None:
        self.backend = backend
        self.spent: dict[str, float] = collections.defaultdict(float)  # by goal id

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        began = time.monotonic()
        try:
            result = await self.backend.run(request, on_message)
        except asyncio.CancelledError:
            duration = self.backend.draw(request).duration
            share = min(1.0, (time.monotonic() - began) / duration) if duration else 1.0
            self.spent[request.goal_id] += share * self.backend.usage.cost_usd
            raise
        self.spent[request.goal_id] += result.usage.cost_usd
        return result


class RetryPlanner:
    """Recovery without a model: retry every failed task, until the engine's limits say stop."""

    name = "retry"

    async def plan(self, request: PlanRequest) -> Planned:
        raise UserError("the retry planner only recovers; the bench passes its plan")

    async def recover(self, request: RecoveryRequest) -> Recovered:
        return Recovered(
            recovery=RecoveryPlan(
                root_cause="simulated failure",
                action=RecoveryAction.RETRY,
                guidance="The previous attempt was wrong; try again.",
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    p: float
    n: int
    mode: Mode
    recovery: bool

    @property
    def limits(self) -> Limits:
        return WITH_RECOVERY if self.recovery else WITHOUT_RECOVERY


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """One cell's results, per goal."""

    p: float
    n: int
    mode: Mode
    recovery: bool
    runs: int
    completed: float  # share of goals that succeeded
    expected: float  # the same, computed for independent draws
    attempts: float  # agent runs started, cancelled candidates included
    recorded_usd: float  # the cost the engine recorded
    spent_usd: float  # what the agents spent, cancelled candidates' share included
    spent_per_completed_usd: float | None  # all spending over completed goals (None: none did)
    wall_ms: float
    mismatched: tuple[str, ...]  # goals whose outcome differs from the one their draws dictate


def dictated(cell: Cell, backend: FlakyBackend, plan: Plan, goal_id: str) -> bool:
    """Whether the goal must succeed, read from the backend's draws without the engine: every
    task needs a round (its N candidates) with a passing candidate within its recoveries, and
    the recoveries of all tasks together must stay within the goal's."""
    limits = cell.limits
    numbers = (0,) if cell.n < 2 else tuple(range(1, cell.n + 1))
    used = 0
    for task in plan.tasks:
        for attempt in range(1, limits.max_recoveries_per_task + 2):
            requests = (
                AgentRequest(
                    goal_id=goal_id,
                    goal="",
                    task_id=task.id,
                    title=task.title,
                    instructions="",
                    worktree=Path(),
                    attempt=attempt,
                    candidate=candidate,
                )
                for candidate in numbers
            )
            if any(backend.draw(r).ok for r in requests):
                used += attempt - 1
                break
        else:
            return False
    return used <= limits.max_recoveries_per_goal


def expected_completion(cell: Cell, tasks: int) -> float:
    """The chance that every task finds a passing candidate within its recoveries, all tasks'
    recoveries together staying within the goal's. Which task is denied once the goal's
    recoveries run out changes nothing: that goal fails either way."""
    miss = (1 - cell.p) ** cell.n  # a round (N candidates) with no passing one
    limits = cell.limits
    per_task = limits.max_recoveries_per_task
    # needed[k]: chance the tasks so far passed using k recoveries in all (k <= the goal's cap).
    needed = [1.0] + [0.0] * limits.max_recoveries_per_goal
    for _ in range(tasks):
        step = [0.0] * len(needed)
        for used, chance in enumerate(needed):
            for more in range(min(per_task, len(needed) - 1 - used) + 1):
                step[used + more] += chance * miss**more * (1 - miss)
        needed = step
    return sum(needed)


async def run_cell(
    cell: Cell, *, runs: int, seed: int, jobs: int, duration: tuple[float, float], home: Path
) -> Figures:
    plan = plan_of()
    store = SqlStore(f"sqlite:///{home / f'{cell.p}-{cell.n}-{cell.mode}-{cell.recovery}.db'}")
    backend = Meter(FlakyBackend(p=cell.p, seed=seed, duration=duration))
    planner = FilePlanner(plan, RetryPlanner())
    goals: list[tuple[Project, Goal]] = []
    for i in range(runs):
        project = Project(id=f"p-{i}", name=f"bench-{i}", path=str(home), max_parallel=WIDTH)
        goal = Goal(
            id=f"g-{i}",
            project_id=project.id,
            title="exploration bench",
            explore=cell.n,
            explore_mode=cell.mode,
        )
        store.write(project, goal)
        goals.append((project, goal))
    store.flush_sync()

    clock = SystemClock()
    board = BreakerBoard(clock)

    def services(project: Project, goal: Goal) -> Services:
        return Services(
            planner=planner,
            backend=backend,
            workspace=None,
            validator=None,
            limits=cell.limits,
        )

    started: dict[str, float] = {}
    finished: dict[str, Goal] = {}
    for at in range(0, runs, jobs):
        engine = Engine(
            store=store,
            clock=clock,
            router=Router(board, global_limit=WIDTH * jobs),
            breakers=board,
            services=services,
        )
        for project, goal in goals[at : at + jobs]:
            started[goal.id] = clock.time()
            engine.start(project, goal, plan=plan)
        finished.update(await engine.run())

    completed = attempts = 0
    mismatched = []
    recorded = wall = 0.0
    for _, goal in goals:
        final = finished[goal.id]
        assert final.state in (GoalState.SUCCEEDED, GoalState.FAILED), (goal.id, final)
        succeeded = final.state is GoalState.SUCCEEDED
        completed += succeeded
        if succeeded != dictated(cell, backend.backend, plan, goal.id):
            mismatched.append(goal.id)
        attempts += len(store.load_attempts(goal.id))
        recorded += store.usage(goal.id).cost_usd + final.usage.cost_usd
        wall += final.finished_at - started[goal.id]
    await store.aclose()
    spent = sum(backend.spent.values())
    return Figures(
        p=cell.p,
        n=cell.n,
        mode=cell.mode,
        recovery=cell.recovery,
        runs=runs,
        completed=completed / runs,
        expected=expected_completion(cell, len(plan.tasks)),
        attempts=attempts / runs,
        recorded_usd=recorded / runs,
        spent_usd=spent / runs,
        spent_per_completed_usd=spent / completed if completed else None,
        wall_ms=wall / runs * 1000,
        mismatched=tuple(mismatched),
    )


def cells_for(probabilities: Sequence[float], *, first: bool) -> list[Cell]:
    cells = []
    for p in probabilities:
        for recovery in (False, True):
            for n in CANDIDATES:
                cells.append(Cell(p=p, n=n, mode="all", recovery=recovery))
            if first and recovery:
                cells += [Cell(p=p, n=n, mode="first", recovery=True) for n in CANDIDATES if n > 1]
    return cells


def table(rows: Sequence[Figures]) -> str:
    lines = [
        "| p | N | mode | recovery | completed | expected | attempts/goal | $ recorded/goal "
        "| $ spent/goal | $ spent/completed goal | wall ms/goal |",
        "|---:|---:|:---|:---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per_completed = (
            "-" if r.spent_per_completed_usd is None else f"{r.spent_per_completed_usd:.2f}"
        )
        lines.append(
            f"| {r.p:.1f} | {r.n} | {r.mode} | {'retry' if r.recovery else 'off'} "
            f"| {r.completed:.0%} | {r.expected:.0%} | {r.attempts:.1f} | {r.recorded_usd:.3f} "
            f"| {r.spent_usd:.3f} | {per_completed} | {r.wall_ms:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--p", type=float, action="append", help="success probability (repeatable; default all)"
    )
    parser.add_argument("--runs", type=int, default=20, help="seeded goals per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="goals of a cell run side by side (more is faster, but they slow each other down)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        nargs=2,
        default=[d * 1000 for d in DURATION],
        metavar=("LOW", "HIGH"),
        help="milliseconds an attempt takes, uniform between the two (default 20 60)",
    )
    parser.add_argument("--no-first", action="store_true", help="skip the mode 'first' rows")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    probabilities = tuple(args.p or PROBABILITIES)
    duration = (args.duration[0] / 1000, args.duration[1] / 1000)
    if not all(0 <= p <= 1 for p in probabilities) or args.runs < 1 or args.jobs < 1:
        parser.error("--p must be within 0..1; --runs and --jobs at least 1")
    if not 0 <= duration[0] <= duration[1]:
        parser.error("--duration must be LOW HIGH with 0 <= LOW <= HIGH")

    cells = cells_for(probabilities, first=not args.no_first)
    tasks = LAYERS * WIDTH
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="blitz-bench-") as tmp:
        rows = [
            asyncio.run(
                run_cell(
                    cell,
                    runs=args.runs,
                    seed=args.seed,
                    jobs=args.jobs,
                    duration=duration,
                    home=Path(tmp),
                )
            )
            for cell in cells
        ]
    seconds = time.perf_counter() - began
    config = {
        "tasks": tasks,
        "layers": LAYERS,
        "width": WIDTH,
        "attempt_seconds": list(duration),
        "attempt_cost_usd": DEFAULT_USAGE.cost_usd,
        "recoveries_per_task": WITH_RECOVERY.max_recoveries_per_task,
        "recoveries_per_goal": WITH_RECOVERY.max_recoveries_per_goal,
        "runs": args.runs,
        "seed": args.seed,
        "jobs": args.jobs,
    }
    if args.json:
        print(
            json.dumps(
                {
                    "simulated": True,
                    "note": NOTE,
                    "config": config,
                    "seconds": round(seconds, 2),
                    "cells": [asdict(r) for r in rows],
                },
                indent=2,
            )
        )
        return 1 if any(r.mismatched for r in rows) else 0
    print(f"> {NOTE}\n")
    print(
        f"{tasks}-task goals ({LAYERS} layers of {WIDTH}); attempts take {args.duration[0]:g}-"
        f"{args.duration[1]:g} ms and cost ${DEFAULT_USAGE.cost_usd:.2f}; recovery 'retry' "
        f"allows {WITH_RECOVERY.max_recoveries_per_task} per task and "
        f"{WITH_RECOVERY.max_recoveries_per_goal} per goal; {args.runs} runs per cell (seed "
        f"{args.seed}), {args.jobs} goal(s) at a time.\n"
        "expected: the exact completion probability. attempts: agent runs started, cancelled "
        "candidates included. $ recorded: what the engine recorded (the flaky backend reports "
        "an attempt's whole cost as it starts, so a cancelled candidate counts in full). "
        "$ spent: the same, had a candidate cancelled in mode 'first' cost only the elapsed "
        "share of its run. wall: a goal's start to finish, publishing included.\n"
    )
    print(table(rows))
    wrong = [(r, goal) for r in rows for goal in r.mismatched]
    goals = sum(r.runs for r in rows)
    print(
        f"\n{len(rows)} cells in {seconds:.1f} s. The engine's outcome matched the one the draws "
        f"dictate in {goals - len(wrong)} of {goals} goals."
    )
    for r, goal in wrong:
        print(f"MISMATCH p={r.p} N={r.n} mode={r.mode} recovery={r.recovery}: {goal}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
