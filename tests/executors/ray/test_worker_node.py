"""``blitz worker`` joins the test suite's real Ray cluster (tests/ray_cluster.py) as a node
advertising its slots, the backends usable on this machine
and its labels; its Ray processes know the worker's data directory; no key reaches Ray's
arguments; SIGTERM stops the node and every process of it. ``blitz workers --address`` lists
it from the cluster."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz, blitz_env
from ray_cluster import RayCluster

from blitz import proctree
from blitz.executors.ray.resources import KEEP_WORKERS_ENV, WORKER_HOME_ENV
from blitz.executors.ray.worker import worker_command
from blitz.testing.ray_nodes import worker_ports

pytestmark = pytest.mark.timeout(600)

CANARY = "sk-ant-canary-b15-0123456789abcdef"
"""The worker's own key: it must stay in the environment, never reach Ray's arguments."""

SCENARIO = Path(__file__).parents[3] / "blitz" / "demo_scenario.yaml"
"""Any scenario makes the scripted backend usable on the worker."""

DEADLINE = 180.0  # a node's start on a loaded machine


def free_ports(count: int) -> list[int]:
    found: list[int] = []
    held = []
    while len(found) < count:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        held.append(sock)
        found.append(sock.getsockname()[1])
    for sock in held:
        sock.close()
    return found


def node_args(temp_dir: str) -> list[str]:
    """``ray start`` arguments for one more node on this shared machine: one CPU, the test's
    temporary directory, and free ports where Ray would take fixed defaults."""
    agent, grpc, metrics, runtime_env, manager, objects = free_ports(6)
    low, high = worker_ports(0, random.randrange(1 << 20))
    return [
        "--num-cpus", "1",
        "--temp-dir", temp_dir,
        "--dashboard-agent-listen-port", str(agent),
        "--dashboard-agent-grpc-port", str(grpc),
        "--metrics-export-port", str(metrics),
        "--runtime-env-agent-port", str(runtime_env),
        "--node-manager-port", str(manager),
        "--object-manager-port", str(objects),
        "--min-worker-port", str(low),
        "--max-worker-port", str(high),
        "--disable-usage-stats",
    ]  # fmt: skip


def wait_for(condition: Any, what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def stop_tree(proc: subprocess.Popen[bytes], marker: str = "") -> None:
    """End a process this test started, its group and what carries its marker (never anyone
    else's processes: no `ray stop`)."""
    import asyncio

    asyncio.run(proctree.kill_tree(proc.pid, marker=marker, group=True))
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def ours(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live node this test started (the cluster's own workers have no ``gpu`` label)."""
    return [w for w in workers if w["alive"] and "gpu" in w["labels"]]


def listed(home: Path, address: str) -> list[dict[str, Any]]:
    done = blitz(home, "workers", "--address", address, "--json", RAY_AUTH_MODE="disabled")
    assert done.returncode == 0, done.stderr
    workers: list[dict[str, Any]] = json.loads(done.stdout)["workers"]
    return workers


def ray_resources() -> list[dict[str, float]]:
    """Every live node's resources as ``ray.nodes()`` reports them (this process is the test
    cluster's driver)."""
    import ray

    return [dict(n["Resources"]) for n in ray.nodes() if n["Alive"]]


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _environ(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    return []


def test_a_worker_joins_advertises_what_it_can_do_and_stops_with_its_whole_tree(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    head = ray_cluster.address
    home = tmp_path / "blitz-home"
    data = tmp_path / "worker-data"
    command = worker_command(
        head, 2, ["gpu", "big-repo"], data, ray_args=node_args(str(ray_cluster.temp))
    )
    env = blitz_env(
        home, RAY_AUTH_MODE="disabled", BLITZ_SCENARIO=str(SCENARIO), ANTHROPIC_API_KEY=CANARY
    )
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            command,
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        joined = lambda: [r for r in ray_resources() if "blitz_label_gpu" in r]  # noqa: E731
        try:
            wait_for(joined, "the worker node")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the worker said:\n{log.read_text()}") from None
        # `blitz workers` reads it from the cluster (its own driver).
        (node,) = ours(listed(home, head))
        assert node["slots"] == 2 and node["free_slots"] == 2
        assert node["labels"] == ["big-repo", "gpu"]
        assert "scripted" in node["backends"]  # a scenario is given: usable here
        assert "claude-code" in node["backends"]  # its key is in this worker's environment
        assert "embedded" not in node["backends"]  # no model configured: not advertised
        assert node["attempts"] == []
        # What Ray itself reports for the node: the contract's resource names, nothing else
        # of blitz's.
        (resources,) = joined()
        blitz_own = {k: v for k, v in resources.items() if k.startswith("blitz_")}
        assert blitz_own == {
            "blitz_slot": 2.0,
            "blitz_label_gpu": 2.0,
            "blitz_label_big-repo": 2.0,
            **{f"blitz_backend_{b}": 2.0 for b in node["backends"]},
        }
        assert resources["CPU"] == 1.0
        # The node's processes: its data directory in their environment, the key nowhere in
        # their command lines.
        tree = proctree.descendants(proc.pid) - {proc.pid}
        raylets = [pid for pid in tree if "raylet" in _cmdline(pid).split(" ", 1)[0]]
        assert raylets, [_cmdline(p) for p in tree]
        assert f"{WORKER_HOME_ENV}={data.resolve()}" in _environ(raylets[0])
        # Its raylet keeps a worker process per slot besides its one CPU's (attempts ask for
        # no CPU): the next wave of attempts does not start and import them all again.
        assert f"{KEEP_WORKERS_ENV}=3" in _environ(raylets[0])
        assert not [_cmdline(p) for p in tree if CANARY in _cmdline(p)]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        finally:
            stop_tree(proc)  # only if it did not stop by itself
    output = log.read_text()
    assert code == 0, output
    assert "slots: 2" in output
    assert "labels: gpu, big-repo" in output
    assert "not embedded: needs a model" in output
    assert CANARY not in output
    assert not [pid for pid in tree if proctree.alive(pid)]  # every process of the node ended
    wait_for(lambda: not joined(), "the node to be gone")
    assert not ours(listed(home, head))
