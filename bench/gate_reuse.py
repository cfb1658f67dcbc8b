"""Gate result reuse benchmark: the gate time of 10-task goals with and without reuse.

Everything is real but the agent: a git repository, the engine driven through
:class:`blitz.app.App` on a fresh data directory with its SQLite store, the scripted planner and
backend (each task writes one file), and a test gate that takes ``--work`` seconds and notes each
run (with its duration) in a file outside the worktrees; gates run unconfined so they can write
it. Each cell runs ``--goals`` goals one after another from the same base commit, with the same
plan and the same agent work, as a team re-running a goal would, with ``[gates] reuse`` on and
off. Two plan shapes: ``chain`` (each task depends on the one before: every tree is the same in
every goal) and ``wide`` (10 independent tasks, 4 at a time: rebases onto work integrated
meanwhile give trees that depend on the order tasks finish in).

It prints a Markdown table: gate runs and gate seconds per goal (the first goal, then the mean of
the later ones), and wall seconds per goal. Target: a goal's baseline runs once however many
goals start from the same base commit; a later goal making the same trees runs no gate.

Run: ``uv run --extra dev python bench/gate_reuse.py`` (``--goals``, ``--work``, ``--shape``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blitz.app import App
from blitz.domain import GoalState
from blitz.settings import Settings
from blitz.testing.scripted import Scenario

TASKS = 10

GATE_SCRIPT = """\
import sys, time
start = time.monotonic()
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "a") as log:
    log.write(f"{time.monotonic() - start}\\n")
"""


@dataclass(frozen=True, slots=True)
class Cell:
    shape: str
    reuse: bool
    runs: list[int]  # gate runs per goal
    gate_seconds: list[float]
    wall_seconds: list[float]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def _repo(root: Path, *, gate: str, reuse: bool) -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("# bench\n")
    (repo / "blitz.toml").write_text(
        '[project]\nname = "bench"\nbase_branch = "main"\nbackend = "scripted"\n'
        "max_parallel = 4\n\n"
        f"[gates]\ntest = {json.dumps(gate)}\ntimeout = 120\n"
        f"reuse = {json.dumps(reuse)}\n\n"
        '[sandbox]\nmode = "off"\n'
    )
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "init")
    return repo


def _scenario(shape: str) -> dict[str, Any]:
    ids = [f"t{i}" for i in range(TASKS)]
    tasks = [
        {
            "id": tid,
            "title": f"Write {tid}",
            "depends_on": [ids[i - 1]] if shape == "chain" and i else [],
        }
        for i, tid in enumerate(ids)
    ]
    agent = {tid: [[{"write": {"path": f"{tid}.txt", "content": f"{tid}\n"}}]] for tid in ids}
    return {"summary": "Ten files", "tasks": tasks, "agent": agent}


def _log(counter: Path) -> list[float]:
    return [float(x) for x in counter.read_text().split()] if counter.exists() else []


async def _cell(shape: str, reuse: bool, goals: int, work: float) -> Cell:
    with tempfile.TemporaryDirectory(prefix="blitz-bench-reuse-") as tmp:
        root = Path(tmp)
        counter = root / "gate-runs"
        script = root / "gate.py"
        script.write_text(GATE_SCRIPT)
        gate = shlex.join([sys.executable, str(script), str(counter), str(work)])
        repo = _repo(root, gate=gate, reuse=reuse)
        runs, seconds, walls = [], [], []
        for n in range(goals):
            before = _log(counter)
            app = App(Settings(home=root / "home"), scenario=Scenario.from_data(_scenario(shape)))
            try:
                project = await app.register(repo)
                goal = await app.new_goal(project, f"Goal {n}")
                engine = app.engine()
                engine.start(project, goal)
                started = time.perf_counter()
                finished = (await engine.run())[goal.id]
                walls.append(time.perf_counter() - started)
            finally:
                await app.aclose()
            if finished.state is not GoalState.SUCCEEDED:
                raise SystemExit(f"goal {n} ({shape}, reuse={reuse}) ended {finished.state}")
            after = _log(counter)
            runs.append(len(after) - len(before))
            seconds.append(sum(after[len(before) :]))
        return Cell(shape, reuse, runs, seconds, walls)


def _later(values: list[float] | list[int]) -> str:
    return f"{statistics.mean(values[1:]):.2f}" if len(values) > 1 else "-"


def table(cells: list[Cell]) -> str:
    lines = [
        "| plan | reuse | gate runs: goal 1 / later (mean) | gate s: goal 1 / later | "
        "wall s: goal 1 / later |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in cells:
        lines.append(
            f"| {c.shape} | {'on' if c.reuse else 'off'} | {c.runs[0]} / {_later(c.runs)} | "
            f"{c.gate_seconds[0]:.2f} / {_later(c.gate_seconds)} | "
            f"{c.wall_seconds[0]:.2f} / {_later(c.wall_seconds)} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goals", type=int, default=3, help="goals per cell (default 3)")
    parser.add_argument("--work", type=float, default=0.5, help="seconds one gate run takes")
    parser.add_argument("--shape", choices=["chain", "wide", "both"], default="both")
    args = parser.parse_args()
    shapes = ["chain", "wide"] if args.shape == "both" else [args.shape]
    cells = [
        await _cell(shape, reuse, args.goals, args.work)
        for shape in shapes
        for reuse in (False, True)
    ]
    print(table(cells))


if __name__ == "__main__":
    asyncio.run(main())
