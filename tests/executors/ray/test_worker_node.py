"""``blitz worker`` joins a real Ray cluster (a head started here, on its own temporary
directory and free ports) as a node advertising its slots, the backends usable on this machine
and its labels; its Ray processes know the worker's data directory; no key reaches Ray's
arguments; SIGTERM stops the node and every process of it. ``blitz workers --address`` lists
it from the cluster."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz, blitz_env

from blitz import proctree
from blitz.executors.ray.resources import WORKER_HOME_ENV
from blitz.executors.ray.worker import worker_command

CANARY = "sk-ant-canary-b15-0123456789abcdef"
"""The worker's own key: it must stay in the environment, never reach Ray's arguments."""

SCENARIO = Path(__file__).parents[3] / "blitz" / "demo_scenario.yaml"
"""Any scenario makes the scripted backend usable on the worker."""

DEADLINE = 90.0

TEMP_DIR = f"/tmp/r15b{os.getpid() % 1000}"
"""This module's Ray temporary directory: short (Ray's socket paths must fit), its own."""


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
    low = random.randrange(30000, 60000, 100)
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
        "--max-worker-port", str(low + 99),
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


def stop_tree(proc: subprocess.Popen[str], marker: str = "") -> None:
    """End a process this test started, its group and what carries its marker (never anyone
    else's processes: no `ray stop`)."""
    import asyncio

    asyncio.run(proctree.kill_tree(proc.pid, marker=marker, group=True))
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def head() -> Iterator[str]:
    """A Ray head with no attempt slots (a bare head: not a blitz worker); its address."""
    temp_dir = TEMP_DIR
    port, client = free_ports(2)
    marker = proctree.new_marker()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", proctree.MARKER_VARIABLE: marker}
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"]
    command += ["--port", str(port), "--ray-client-server-port", str(client)]
    command += ["--include-dashboard", "false", *node_args(temp_dir)]
    proc = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_for(lambda: _listening(port), "the head's GCS port")
        yield address
    finally:
        stop_tree(proc, marker)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def listed(home: Path, address: str) -> list[dict[str, Any]]:
    done = blitz(home, "workers", "--address", address, "--json", RAY_AUTH_MODE="disabled")
    assert done.returncode == 0, done.stderr
    workers: list[dict[str, Any]] = json.loads(done.stdout)["workers"]
    return workers


def ray_resources(address: str) -> list[dict[str, float]]:
    """Every node's resources as ``ray.nodes()`` reports them, read by a driver of its own."""
    code = (
        "import json, sys, ray\n"
        "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
        "print(json.dumps([n['Resources'] for n in ray.nodes() if n['Alive']]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, address],
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    found: list[dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _environ(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    return []


def test_a_worker_joins_advertises_what_it_can_do_and_stops_with_its_whole_tree(
    head: str, tmp_path: Path
) -> None:
    home = tmp_path / "blitz-home"
    data = tmp_path / "worker-data"
    command = worker_command(head, 2, ["gpu", "big-repo"], data, ray_args=node_args(TEMP_DIR))
    env = blitz_env(
        home, RAY_AUTH_MODE="disabled", BLITZ_SCENARIO=str(SCENARIO), ANTHROPIC_API_KEY=CANARY
    )
    proc = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        mine = wait_for(lambda: [w for w in listed(home, head) if w["alive"]], "the worker node")
        (node,) = mine
        assert node["slots"] == 2 and node["free_slots"] == 2
        assert node["labels"] == ["big-repo", "gpu"]
        assert "scripted" in node["backends"]  # a scenario is given: usable here
        assert "claude-code" in node["backends"]  # its key is in this worker's environment
        assert "embedded" not in node["backends"]  # no model configured: not advertised
        assert node["attempts"] == []
        # What Ray itself reports for the node: the contract's resource names, nothing else
        # of blitz's.
        (resources,) = [r for r in ray_resources(head) if "blitz_slot" in r]
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
        assert not [_cmdline(p) for p in tree if CANARY in _cmdline(p)]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        finally:
            stop_tree(proc)  # only if it did not stop by itself
    output = proc.stdout.read() if proc.stdout else ""
    assert code == 0, output
    assert "slots: 2" in output
    assert "labels: gpu, big-repo" in output
    assert "not embedded: needs a model" in output
    assert CANARY not in output
    assert not [pid for pid in tree if proctree.alive(pid)]  # every process of the node ended
    wait_for(lambda: not [w for w in listed(home, head) if w["alive"]], "the node to be gone")
