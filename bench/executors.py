"""Executors benchmark: the local executor against the Ray executor on a real local Ray cluster.

Everything is real but the agent: git repositories, the engine driven through
:class:`blitz.app.App` (SQLite store, scripted planner and backend), a Ray head and worker nodes
started here as ``ray start --block`` processes (each on this run's own ``--temp-dir`` and free
ports, ``RAY_AUTH_MODE=disabled``; a worker node advertises what ``blitz worker`` would:
:func:`~blitz.executors.ray.resources.node_resources` for its slots and the ``scripted`` backend,
and ``BLITZ_WORKER_HOME``). Only the processes this run started are stopped (their trees, by
the run's marker), never with ``ray stop``.

It prints three tables, each with its baseline measured in the same run:

a. **Per-attempt overhead.** The same no-op goal (a chain of tasks, each writing one small file:
   a task that changes nothing fails) through the local executor and the Ray executor on one
   worker node, after a warm-up goal (the node holds the history, its Ray worker process is up).
   An attempt's time is measured around ``Executor.run`` (placement, sync, agent, commit, the
   daemon's integration). The bundle transfer is measured on its own: the same ``sync`` calls
   (``bundle`` + ``fetch`` each way for one one-file commit) between two repositories here.
   Ray's added cost is (Ray - local - transfer). Target: <= 50 ms.
b. **Bytes per attempt.** A ``--files``-file repository: the first sync, then rounds of a
   one-file commit on ``main`` followed by a one-task goal writing one file: bytes the daemon
   sent (the bundle of what the node lacked) and received (the attempt's commit). Counted on
   the daemon's side by a subclass of ``RayExecutor`` that records the length of the bundles
   its ``_bundle`` returns and its ``accept`` gets (it changes nothing else). Target: <= 100 KB
   each way after the first sync.
c. **Scaling.** One goal of ``--wide`` independent tasks, each agent sleeping ``--step``
   seconds (the scripted backend's ``sleep`` step) then writing one file, on 1, 2, 4 worker
   nodes of ``--slots`` slots (nodes added between sizes), with the local executor at
   ``--slots`` slots as baseline. Ideal: ceil(tasks / total slots) * step. Target: <= 1.2x.
   Each node joins, and is warmed (its Ray worker processes started, one per slot), before
   the goal: the wall time is a goal's on a cluster already up.
   Beside it: how busy the machine's cores were during the goal (``/proc/stat``, every process)
   and the CPU seconds per attempt: with every node on one machine, a goal that keeps all its
   cores busy is bound by them, not by waiting on the executor.

The issue's targets are for the full run (``--full``: 20 chain tasks, 20,000 files, 32 tasks
of 20 s on 1, 2 and 4 nodes, about 12 minutes on 2 cores); the default is a short run with
smaller figures. Exits 1 when a goal fails or a target is missed.

Run: ``uv run --extra dev python bench/executors.py`` (``--full``, ``--skip a b c``, ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cpu_split
import timeline
from executors_report import BYTES_LIMIT, CORES, OVERHEAD_MS, WALL_RATIO, report

from blitz.app import App
from blitz.domain import Goal, GoalState, Project
from blitz.events import Event
from blitz.executors.base import AttemptReport, AttemptRequest, Executor
from blitz.executors.local import LocalExecutor
from blitz.executors.ray import sync
from blitz.executors.ray.executor import RayExecutor
from blitz.git import Git
from blitz.settings import Settings
from blitz.testing.ray_nodes import NodeDidNotStart, RayNodes
from blitz.testing.scripted import Scenario

IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@localhost")


# -- the cluster ---------------------------------------------------------------------------------


def add_worker(cluster: RayNodes, root: Path, slots: int) -> None:
    """One more worker node of ``slots`` slots (the scripted backend), its home under ``root``."""
    try:
        cluster.add_worker(root / f"worker-{cluster.workers}", slots)
    except NodeDidNotStart as exc:
        raise SystemExit(str(exc)) from exc


async def wait_workers(cluster: RayNodes, executor: RayExecutor) -> None:
    """Until the executor's driver sees every worker node started, and has warmed each one (its
    Ray worker processes started, as for a node that joined before the goal came)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        alive = {n.node_id for n in await executor.nodes() if n.alive}
        if len(alive) >= cluster.workers and alive <= set(await executor.warmed()):
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"{cluster.workers} worker nodes did not join\n{cluster.logs()}")


# -- the engine ----------------------------------------------------------------------------------


class Timed:
    """An executor that times each attempt of the one it wraps (``Executor.run``)."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    async def run(self, request: AttemptRequest) -> AttemptReport:
        started = time.perf_counter()
        report = await self.inner.run(request)
        self.seconds.append(time.perf_counter() - started)
        return report


class Counted(RayExecutor):
    """The Ray executor, recording the size of each bundle it sends and receives."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.sent: list[int] = []
        self.received: list[int] = []

    async def _bundle(
        self, request: AttemptRequest, node_id: str, base: str, upstream: Any = None
    ) -> bytes | None:
        data = await super()._bundle(request, node_id, base, upstream)
        self.sent.append(len(data or b""))
        return data

    async def accept(
        self, request: AttemptRequest, result: Any, node_id: str = ""
    ) -> AttemptReport:
        self.received.append(len(result.bundle or b""))
        return await super().accept(request, result, node_id)


class BenchApp(App):
    """The app, its attempts run by the executor given (whatever the settings say)."""

    def __init__(self, settings: Settings, scenario: Scenario, executor: Executor) -> None:
        super().__init__(settings, scenario=scenario)
        self.bench_executor = executor

    def services(self, project: Project, goal: Goal, **kwargs: Any) -> Any:
        made = super().services(project, goal, **kwargs)
        return dataclasses.replace(made, executor=self.bench_executor)


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True, timeout=600
    )
    return done.stdout.strip()


def make_repo(root: Path, files: int, parallel: int) -> Path:
    """A repository of ``files`` small files in 100 directories, set up for the scripted
    backend, no gates, no sandbox."""
    repo = root / f"repo-{files}"
    for i in range(files):
        path = repo / f"d{i % 100:03d}" / f"f{i:06d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {i}\n")
    (repo / "blitz.toml").write_text(
        '[project]\nname = "bench"\nbase_branch = "main"\nbackend = "scripted"\n'
        f'max_parallel = {parallel}\n\n[sandbox]\nmode = "off"\n'
    )
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "generated")
    return repo


def scenario(tasks: int, *, chain: bool, step: float = 0.0, tag: str = "") -> Scenario:
    ids = [f"{tag}t{i}" for i in range(tasks)]
    plan = [
        {"id": t, "title": f"Write {t}", "depends_on": [ids[i - 1]] if chain and i else []}
        for i, t in enumerate(ids)
    ]
    write = {"write": {"path": "{t}.txt", "content": "{t}\n"}}
    agent = {
        t: [[*([{"sleep": step}] if step else []), json.loads(json.dumps(write).replace("{t}", t))]]
        for t in ids
    }
    return Scenario.from_data({"summary": "bench", "tasks": plan, "agent": agent})


async def run_goal(
    home: Path, repo: Path, plan: Scenario, executor: Executor, parallel: int
) -> tuple[float, list[Event]]:
    """One goal through the engine; its wall seconds and its events. GoalFailed when it does not
    succeed."""
    app = BenchApp(Settings(home=home, max_parallel=parallel), plan, executor)
    try:
        project = await app.register(repo)
        goal = await app.new_goal(project, "bench goal", max_parallel=parallel)
        engine = app.engine()
        engine.start(project, goal)
        started = time.perf_counter()
        finished = (await engine.run())[goal.id]
        wall = time.perf_counter() - started
        events = app.store.events(goal_id=goal.id, limit=100_000)
        errors = Counter(
            a.error.splitlines()[0] if a.error else str(a.state)
            for a in app.store.load_attempts(goal.id)
            if a.error
        )
    finally:
        await app.aclose()
    if finished.state is not GoalState.SUCCEEDED:
        said = "; ".join(f"{n}x {e}" for e in errors for n in [errors[e]])
        raise GoalFailed(f"goal ended {finished.state}: {finished.error}; attempts: {said}")
    return wall, events


class GoalFailed(Exception):
    """A goal of the bench did not succeed (its attempts' errors said)."""


# -- a. per-attempt overhead ---------------------------------------------------------------------


async def transfer_ms(root: Path, rounds: int) -> tuple[float, float]:
    """Median ms of a one-file commit's bundle made and fetched, daemon -> worker and worker ->
    daemon: the same ``sync`` calls the executor makes, between two repositories here."""
    daemon = make_repo(root / "transfer", 20, 1)
    worker = root / "transfer-worker"
    subprocess.run(["git", "clone", "-q", str(daemon), str(worker)], check=True, timeout=60)
    ins, outs = [], []
    for n in range(rounds):
        (daemon / f"in{n}.txt").write_text(f"{n}\n")
        _git(daemon, "add", "-A")
        _git(daemon, "commit", "-q", "-m", f"in {n}")
        head, old = _git(daemon, "rev-parse", "HEAD"), _git(daemon, "rev-parse", "HEAD~1")
        started = time.perf_counter()
        data = await sync.bundle(Git(daemon), "refs/heads/main", head, [old])
        assert data is not None
        await sync.fetch(Git(worker), data, "refs/heads/main", "refs/remotes/daemon/main")
        into = time.perf_counter() - started
        _git(worker, "reset", "-q", "--hard", "refs/remotes/daemon/main")
        (worker / f"out{n}.txt").write_text(f"{n}\n")
        _git(worker, "add", "-A")
        _git(worker, "commit", "-q", "-m", f"out {n}")
        back = _git(worker, "rev-parse", "HEAD")
        started = time.perf_counter()
        data = await sync.bundle(Git(worker), "refs/heads/main", back, [head])
        assert data is not None
        await sync.fetch(Git(daemon), data, "refs/heads/main", f"refs/bench/out{n}")
        ins.append(into)
        outs.append(time.perf_counter() - started)
    return 1000 * statistics.median(ins), 1000 * statistics.median(outs)


async def overhead(root: Path, ray: Counted, tasks: int) -> dict[str, Any]:
    repo = make_repo(root / "a", 20, 4)
    times: dict[str, list[float]] = {}
    for name, inner in (("local", LocalExecutor()), ("ray", ray)):
        home = root / "a" / f"home-{name}"
        await run_goal(home, repo, scenario(1, chain=True, tag="w"), inner, 4)  # warm-up
        sent_before = len(ray.sent)
        timed = Timed(inner)
        await run_goal(home, repo, scenario(tasks, chain=True), timed, 4)
        times[name] = timed.seconds
    sent = ray.sent[sent_before:]
    local_ms = 1000 * statistics.median(times["local"])
    ray_ms = 1000 * statistics.median(times["ray"])
    into_ms, back_ms = await transfer_ms(root, max(5, tasks))
    # The daemon sends a bundle only when the node lacks the base (none when the base is the
    # commit the node made itself); every attempt that commits sends its commit back.
    share_in = sum(1 for n in sent if n) / max(1, len(sent))
    moved = share_in * into_ms + back_ms
    added = ray_ms - local_ms - moved
    return {
        "attempts": tasks,
        "local_ms": local_ms,
        "ray_ms": ray_ms,
        "into_ms": into_ms,
        "back_ms": back_ms,
        "share_in": share_in,
        "transfer_ms": moved,
        "added_ms": added,
        "pass": added <= OVERHEAD_MS,
    }


# -- b. bytes per attempt ------------------------------------------------------------------------


async def transfer_bytes(root: Path, counted: Counted, files: int, rounds: int) -> dict[str, Any]:
    repo = make_repo(root / "b", files, 1)
    home = root / "b" / "home"
    await run_goal(home, repo, scenario(1, chain=True, tag="first"), counted, 1)
    first = (counted.sent[-1], counted.received[-1])
    sent, received = [], []
    for n in range(rounds):
        path = repo / "d000" / "f000000.txt"
        path.write_text(f"changed {n}\n")
        _git(repo, "commit", "-q", "-am", f"one file {n}")
        await run_goal(home, repo, scenario(1, chain=True, tag=f"r{n}"), counted, 1)
        sent.append(counted.sent[-1])
        received.append(counted.received[-1])
    return {
        "files": files,
        "first_sent": first[0],
        "first_received": first[1],
        "sent_max": max(sent),
        "received_max": max(received),
        "rounds": rounds,
        "pass": max(sent) <= BYTES_LIMIT and max(received) <= BYTES_LIMIT,
    }


# -- c. scaling ----------------------------------------------------------------------------------


def machine_cpu() -> float:
    """CPU seconds this machine's cores have been busy since boot, every process counted (the
    Ray nodes, the daemon, the agents' git and sandboxes): ``/proc/stat`` less idle and iowait."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def scaling(
    root: Path, cluster: RayNodes, ray: RayExecutor, sizes: Sequence[int], tasks: int,
    step: float, slots: int, with_local: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    repo = make_repo(root / "c", 20, 64)
    rows = []
    runs: list[tuple[str, int, Executor]] = [("local", 1, LocalExecutor())] if with_local else []
    runs += [("ray", n, ray) for n in sizes]
    for kind, nodes, executor in runs:
        if kind == "ray":
            while cluster.workers < nodes:
                add_worker(cluster, root, slots)
            await wait_workers(cluster, ray)
        total = slots * nodes
        before = len(ray.placed)
        busy_before, procs_before = machine_cpu(), cpu_split.snapshot()
        wall, events = await run_goal(
            root / "c" / f"home-{kind}-{nodes}", repo,
            scenario(tasks, chain=False, step=step, tag=f"{kind}{nodes}"), executor, total,
        )  # fmt: skip
        cpu_s = machine_cpu() - busy_before
        split = cpu_split.spent(procs_before, cpu_split.snapshot())
        ideal = math.ceil(tasks / total) * step
        spread = Counter(node for _, node in ray.placed[before:]) if kind == "ray" else Counter()
        rows.append({
            "executor": kind, "nodes": nodes, "slots": total, "tasks": tasks, "step_s": step,
            "wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal,
            "per_node": sorted(spread.values(), reverse=True),
            "cpu_s": cpu_s, "cpu_busy": cpu_s / (wall * CORES),
            "cpu_split": {k: v / tasks for k, v in split.most_common() if v >= 0.005 * tasks},
            "timeline": timeline.summary(events),
            "pass": wall / ideal <= WALL_RATIO,
        })  # fmt: skip
    return rows


# -- the run -------------------------------------------------------------------------------------


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes (about 12 min)")
    parser.add_argument("--chain", type=int, help="a: attempts timed (6; full 20)")
    parser.add_argument("--files", type=int, help="b: files in the repository (2,000; full 20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="b: one-file rounds (3)")
    parser.add_argument("--wide", type=int, help="c: independent tasks (8; full 32)")
    parser.add_argument("--step", type=float, help="c: seconds each agent takes (5; full 20)")
    parser.add_argument("--nodes", type=int, nargs="+", help="c: worker nodes (1 2; full 1 2 4)")
    parser.add_argument("--slots", type=int, default=4, help="c: slots per node (4)")
    parser.add_argument("--no-local", action="store_true", help="c: skip the local baseline")
    parser.add_argument("--skip", nargs="+", choices=["a", "b", "c"], default=[])
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # the driver's, as the nodes'
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Run as `uv run ...`, Ray would ship this directory to every worker as its working_dir
    # and start workers through `uv run` (RAY_ENABLE_UV_RUN_RUNTIME_ENV, on by default); an
    # installed daemon (`uv tool install`) is not run that way, so neither is the bench.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    full = args.full
    chain = args.chain or (20 if full else 6)
    files = args.files or (20_000 if full else 2_000)
    wide = args.wide or (32 if full else 8)
    step = args.step if args.step is not None else (20.0 if full else 5.0)
    sizes = args.nodes or ([1, 2, 4] if full else [1, 2])
    found: dict[str, Any] = {"load": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="blitz-bench-exec-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        cluster = RayNodes(root, tag="r15d")
        ray = Counted(cluster.address)
        try:
            cluster.start_head()
            await ray.start()
            add_worker(cluster, root, args.slots)
            await wait_workers(cluster, ray)
            parts = {
                "a": lambda: overhead(root, ray, chain),
                "b": lambda: transfer_bytes(root, ray, files, args.rounds),
                "c": lambda: scaling(
                    root, cluster, ray, sizes, wide, step, args.slots, not args.no_local
                ),
            }
            for key, part in parts.items():
                if key in args.skip:
                    continue
                try:
                    found[key] = await part()
                except GoalFailed as exc:
                    found[key] = str(exc)
                print(report({key: found[key]}), "\n", file=sys.stderr, flush=True)
        finally:
            await ray.close()
            await cluster.stop()
    found["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        print(report(found))
        print(
            "\nload average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}"
            .format(*found["load"], *found["load_after"])
        )  # fmt: skip
    verdicts = [not isinstance(v, str) for k, v in found.items() if k in "abc"]
    verdicts += [found[k]["pass"] for k in "ab" if isinstance(found.get(k), dict)]
    if isinstance(found.get("c"), list):
        verdicts += [r["pass"] for r in found["c"] if r["executor"] == "ray"]
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
