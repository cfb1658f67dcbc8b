"""The daemon's secret never reaches Ray, and a worker uses its own.

A canary key is in the environment of the daemon (`blitz serve --executor ray`, a real process)
and nowhere else: the test cluster's nodes (tests/ray_cluster.py) are started without it, and one
node is added with a different key of its own and blitz's embedded agent as its backend, pointed
at a scripted Anthropic server on 127.0.0.1 that accepts only that worker's key. A goal runs on
that node. Then the canary must appear:

* in no Ray process's memory while the attempt runs: the GCS, the raylets (and the object store
  they map), every Ray worker (the attempt's task, its arguments, any actor state) and the
  processes they started; read from ``/proc/<pid>/mem``, the strongest check of what Ray holds
  (task specifications with inline arguments are not shown by Ray's state API). The worker's own
  key is found there, so the scan sees what it looks for;
* in no file of the nodes' temp directory (every node's logs, the session's files);
* in nothing Ray's GCS reports of the jobs, actors and nodes;
* in nothing Ray's state API (served by the head's dashboard) lists of the tasks, with detail
  (their names, runtime_env, required resources, nodes; not their arguments: the memory scan
  covers those), actors, jobs and workers. The attempt's task is listed there with its
  resources, so the listing holds what it is checked for;

and the scripted server must have been called with the worker's key (it answers any other with
401, and the attempt would fail), so the worker's backend used its node's key.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import DONE, commands, committed_tasks, holding, serve, until
from model_runs import GREET, GREET_TEST, MODEL, call, finish, reply
from ray_cluster import RayCluster

from blitz.testing.model_server import ModelServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CANARY = "sk-ant-api03-canary-" + "7f3c9a1e5d2b" * 4  # the daemon's key
WORKER_KEY = "sk-ant-api03-worker-" + "0d1e2f3a4b5c" * 4  # the worker node's own key
TEST_GATE = f"{shlex.quote(sys.executable)} -m unittest discover -s tests -t . -q"

PLAN: dict[str, Any] = {
    "summary": "Add greet()",
    "tasks": [{"id": "greet", "title": "Add greet()", "instructions": "Add greet(name)."}],
}


def turns(hold: Path) -> list[dict[str, Any]]:
    """The agent writes greet.py and its test, waits on ``hold`` (while the test looks at Ray),
    and finishes."""
    wait = f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done"
    return [
        reply(
            call("write_file", path="greet.py", content=GREET),
            call("write_file", path="tests/test_greet.py", content=GREET_TEST),
            match="Task greet:",
        ),
        reply(
            call("run_command", command=wait, timeout=600),
            match="Task greet:",
            match_tool_result="wrote",
        ),
        reply(finish("Added greet()."), match="Task greet:", match_tool_result="exit code 0"),
    ]


def make_repo(root: Path) -> Path:
    from blitz_process import git

    repo = root / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "__init__.py").write_text("")
    (repo / "README.md").write_text("# greet\n")
    (repo / "blitz.toml").write_text(
        '[project]\nbase_branch = "main"\nbackend = "embedded"\n'
        f"\n[gates]\ntest = {json.dumps(TEST_GATE)}\ntimeout = 60\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial commit")
    return repo


def cluster_pids(cluster: RayCluster) -> set[int]:
    """Every process of the cluster's nodes and every process they started, transitively."""
    nodes = [cluster.cluster.head_node, *cluster.cluster.worker_nodes]
    roots = {
        info.process.pid
        for node in nodes
        for infos in node.all_processes.values()
        for info in infos
        if info.process is not None
    }
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = set(roots)
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        grew = bool(more)
        found |= more
    return found


def memory_of(pid: int) -> Iterator[bytes]:
    """The readable memory of a process, region by region (regions it unmapped meanwhile, and
    the kernel's own, are passed over)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError:  # it ended meanwhile
        return
    try:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            try:
                yield os.pread(mem, end - start, start)
            except OSError:
                continue
    finally:
        os.close(mem)


def scan_memory(pids: set[int], *needles: str) -> dict[str, list[int]]:
    """Which of ``pids`` hold each needle somewhere in their memory."""
    found: dict[str, list[int]] = {needle: [] for needle in needles}
    for pid in sorted(pids):
        for region in memory_of(pid):
            for needle in needles:
                if needle.encode() in region and pid not in found[needle]:
                    found[needle].append(pid)
    return found


def files_with(root: Path, needle: str) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
                hits.append(path)
        except OSError:  # a socket, or a file gone meanwhile
            continue
    return hits


def test_the_daemons_key_reaches_nothing_of_ray_and_the_worker_uses_its_own(
    ray_cluster: RayCluster, hold_file: Path, tmp_path: Path
) -> None:
    import ray

    assert CANARY not in os.environ.values()  # the cluster's nodes never had it
    hold_file.touch()
    with ModelServer(turns(hold_file), api_key=WORKER_KEY) as server:
        keyed = ray_cluster.add_worker(
            "keyed",
            slots=1,
            backends=("embedded",),
            env={
                "ANTHROPIC_API_KEY": WORKER_KEY,
                "ANTHROPIC_BASE_URL": server.anthropic_base_url,
                "BLITZ_MODEL": MODEL,
            },
        )
        repo = make_repo(tmp_path)
        daemon = serve(
            tmp_path / "home", "--executor", "ray", "--ray-address", ray_cluster.address,
            RAY_AUTH_MODE="disabled", ANTHROPIC_API_KEY=CANARY, BLITZ_MODEL=MODEL,
            ANTHROPIC_BASE_URL="http://127.0.0.1:9",  # the daemon itself must call no model
        )  # fmt: skip
        try:
            daemon_pid = daemon.proc.pid
            assert CANARY in Path(f"/proc/{daemon_pid}/environ").read_text()
            goal_id = daemon.submit(repo, PLAN, title="Add greet")
            state = lambda: daemon.api("GET", f"/api/goals/{goal_id}").json()["state"]  # noqa: E731
            until(lambda: holding(hold_file) or state() in DONE, "no attempt reached its wait", 300)
            if not holding(hold_file):
                events = _events(tmp_path / "home", goal_id)
                pytest.fail("\n".join(f"{e.kind}: {e.message[:300]}" for e in events))

            # While the attempt runs on the keyed node. The daemon's Ray driver is a child process
            # of its own, started without the daemon's secrets.
            drivers = [
                pid for pid, line in commands().items()
                if "blitz.executors.ray.driver_main" in line and _parent(pid) == daemon_pid
            ]  # fmt: skip
            assert len(drivers) == 1, commands()
            assert CANARY not in Path(f"/proc/{drivers[0]}/environ").read_text()
            # The agent's command is the cluster's. Its shell forks for each `sleep`, and a fork
            # shows the shell's command line until it execs: the waiting processes are taken
            # before the cluster's, and those gone by then are passed over.
            held = holding(hold_file)
            pids = (cluster_pids(ray_cluster) | set(drivers)) - {daemon_pid, os.getpid()}
            assert held and {pid for pid in held if Path(f"/proc/{pid}").exists()} <= pids
            found = scan_memory(pids, CANARY, WORKER_KEY)
            assert found[WORKER_KEY], "the scan does not see the worker's own key"
            assert found[CANARY] == [], {p: commands().get(p) for p in found[CANARY]}

            hold_file.unlink()
            final = daemon.wait_state(goal_id)
            assert final["state"] == "succeeded", final
            assert committed_tasks(repo, final["branch"]) == ["greet"]
            placed = [e for e in _events(tmp_path / "home", goal_id) if e.kind == "attempt.placed"]
            assert [e.data["node"] for e in placed] == [keyed.node_id]
            code, err = daemon.stop(signal.SIGTERM)
            assert code == 0, err
        finally:
            daemon.kill()

        # The worker's backend called the provider with the worker's key (any other gets 401,
        # and the attempt would have failed).
        assert server.requests and all(r.api_key_present for r in server.requests)
        assert not server.unmatched

    # Nothing Ray wrote or keeps names the daemon's key.
    assert files_with(ray_cluster.temp, CANARY) == []
    jobs = ray._private.state.jobs()
    assert [j for j in jobs if j["DriverPid"] in drivers]  # the daemon's job is among them
    reported = repr(jobs) + repr(ray._private.state.actors()) + repr(ray.nodes())
    assert CANARY not in reported

    # Nor anything Ray's state API lists: the tasks with detail (the attempt's among them: the
    # one on the keyed node, which this test added; earlier tests' attempts are listed too).
    on_keyed = lambda: [t for t in _attempt_tasks(ray_cluster) if t["node_id"] == keyed.node_id]  # noqa: E731
    [task] = until(on_keyed, "no attempt task on the keyed node in Ray's listing", 120)
    assert task["required_resources"].get("blitz_backend_embedded") == 1.0
    assert "runtime_env_info" in task
    listed = _state_listing(ray_cluster)
    assert CANARY not in listed and WORKER_KEY not in listed


def _attempt_tasks(cluster: RayCluster) -> list[dict[str, Any]]:
    """The attempts' Ray tasks as Ray's state API lists them, with detail."""
    from ray.util.state import list_tasks

    tasks = list_tasks(address=cluster.address, detail=True, limit=10_000, timeout=60)
    return [t.asdict() for t in tasks if "attempt_stream" in (t.get("func_or_class_name") or "")]


def _state_listing(cluster: RayCluster) -> str:
    """Everything Ray's state API lists of the cluster's tasks, actors, jobs and workers."""
    from ray.util import state

    where = {"address": cluster.address, "timeout": 60}
    return "".join(
        repr(found)
        for found in (
            state.list_tasks(detail=True, limit=10_000, **where),
            state.list_actors(detail=True, limit=10_000, **where),
            state.list_jobs(**where),
            state.list_workers(detail=True, limit=10_000, **where),
        )
    )


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _events(home: Path, goal_id: str) -> list[Any]:
    from blitz.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{home / 'blitz.db'}")
    try:
        return list(store.events(goal_id=goal_id, limit=100_000))
    finally:
        store.close()
