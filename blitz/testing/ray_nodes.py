"""A Ray cluster of real ``ray start --block`` processes on this machine: a head (no blitz slots)
on a port that stays the same across restarts, and blitz worker nodes offering what
``blitz worker`` offers (:func:`~blitz.executors.ray.resources.node_resources`, a
``BLITZ_WORKER_HOME`` of their own). For the executors benchmark and for tests that take a whole
cluster away (the test session's cluster must outlive every test).

Every process carries this cluster's marker (:mod:`blitz.proctree`): :meth:`RayNodes.kill` and
:meth:`RayNodes.stop` end exactly those, never with ``ray stop``, which would end every Ray
process of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from blitz import proctree
from blitz.executors.ray.resources import WORKER_HOME_ENV, node_resources, node_settings

START_DEADLINE = 180.0
"""Seconds a node may take to start on a loaded machine."""


SLOW_MACHINE = {"RAY_agent_register_timeout_ms": "60000"}
"""Ray's settings for a loaded machine: a raylet waits 60 s (Ray's default: 15 s) for its node's
dashboard agent, a Python process whose imports alone can take longer than 15 s on 2 busy
cores; past that wait the raylet aborts and the node never starts."""


NODE_CPUS = 1
"""The CPUs each node says it has (Ray's scheduling only: every node shares this machine)."""


class NodeDidNotStart(RuntimeError):
    """A ``ray start`` that ended, or never said its node was up, in every try."""


WORKER_PORTS = 150
"""Ports in a node's range for its Ray worker processes."""


def worker_ports(index: int, salt: int) -> tuple[int, int]:
    """The ``--min-worker-port`` and ``--max-worker-port`` of a run's node ``index``: below the
    range the system hands out for ``bind(0)`` (where :func:`free_ports` takes the node's other
    ports: a worker range over one of them stops the node, "trying to use a port number ... used
    by other components"); a run's nodes side by side, where the run's ``salt`` puts them."""
    ephemeral = 32768
    with contextlib.suppress(OSError, ValueError, IndexError):
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    first = 10002
    span = max(WORKER_PORTS, ephemeral - first - WORKER_PORTS)
    low = first + (salt * 211 + index * WORKER_PORTS) % span
    return low, low + WORKER_PORTS - 1


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 a moment ago."""
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        held.append(sock)
    ports = [int(s.getsockname()[1]) for s in held]
    for sock in held:
        sock.close()
    return ports


class RayNodes:
    """The ``ray start`` processes of one cluster, logs under ``root``."""

    def __init__(self, root: Path, *, tag: str = "rn") -> None:
        self.root = root
        # Short: Ray's socket paths under it must fit in 107 bytes.
        self.temp_dir = f"/tmp/{tag}{os.getpid() % 10000}"
        self.marker = proctree.new_marker()
        self.port = free_ports(1)[0]
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers = 0  # worker nodes started

    def start_head(self, tries: int = 3) -> str:
        """The head, on :attr:`port` (the same after a :meth:`kill`); its address."""
        for _ in range(tries):
            args = ["--head", "--port", str(self.port), "--include-dashboard", "false"]
            client = free_ports(1)[0]
            if self._start([*args, "--ray-client-server-port", str(client)], {}):
                return self.address
        raise NodeDidNotStart(f"the Ray head did not start in {tries} tries\n{self.logs()}")

    def add_worker(
        self,
        home: Path,
        slots: int = 1,
        backends: Sequence[str] = ("scripted",),
        env: Mapping[str, str] | None = None,
        tries: int = 3,
    ) -> None:
        """One more blitz worker node: ``slots`` attempt slots for ``backends``, its worker home
        ``home``, ``env`` added to its processes' environment."""
        home.mkdir(parents=True, exist_ok=True)
        offered = json.dumps(node_resources(slots, list(backends), []))
        extra = {**node_settings(slots, cpus=NODE_CPUS), **(env or {}), WORKER_HOME_ENV: str(home)}
        for _ in range(tries):
            if self._start(["--address", self.address, "--resources", offered], extra):
                self.workers += 1
                return
        raise NodeDidNotStart(f"a worker node did not start in {tries} tries\n{self.logs()}")

    def logs(self, lines: int = 15) -> str:
        """The tail of each node's ``ray start`` output and raylet log (to say why one died)."""
        found = sorted(self.root.glob("node-*.log"))
        found += sorted(Path(self.temp_dir).glob("session_latest/logs/raylet*.out"))
        return "\n".join(
            f"== {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for path in found
        )

    async def kill(self) -> None:
        """SIGKILL every process of the cluster at once: machines that lost power."""
        for _ in range(3):  # one SIGKILL each, no warning; again for any started meanwhile
            for pid in proctree.marked(self.marker):
                proctree.send(pid, signal.SIGKILL)
        for proc in self.procs:
            proctree.send_group(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
        self.procs.clear()
        self.workers = 0

    async def stop(self) -> None:
        """Stop every node (``ray start --block`` stops its node on SIGTERM), then end whatever
        of the cluster is left, and remove its temporary directory."""
        for proc in self.procs:
            proctree.send(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 20)
        for proc in self.procs:
            await proctree.kill_tree(proc.pid, marker=self.marker, group=True)
        await proctree.kill_tree(None, marker=self.marker)
        self.procs.clear()
        self.workers = 0
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _start(self, args: list[str], env: Mapping[str, str]) -> bool:
        """Start one node; True once its ``ray start`` says the node is up (it then blocks),
        False when it ended first (Ray gives a node 30 s to register: a loaded machine may
        not) or never said so."""
        index = len(self.procs)
        agent, grpc, metrics, runtime_env, manager, objects = free_ports(6)
        low, high = worker_ports(index, os.getpid())
        command = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--block", *args,
            "--num-cpus", str(NODE_CPUS), "--temp-dir", self.temp_dir, "--disable-usage-stats",
            "--dashboard-agent-listen-port", str(agent),
            "--dashboard-agent-grpc-port", str(grpc),
            "--metrics-export-port", str(metrics),
            "--runtime-env-agent-port", str(runtime_env),
            "--node-manager-port", str(manager), "--object-manager-port", str(objects),
            "--min-worker-port", str(low), "--max-worker-port", str(high),
        ]  # fmt: skip
        full_env = {
            **os.environ,
            **env,
            **SLOW_MACHINE,
            "RAY_AUTH_MODE": "disabled",
            proctree.MARKER_VARIABLE: self.marker,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        log_path = self.root / f"node-{index}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                command, env=full_env, stdout=log, stderr=log, start_new_session=True
            )
        self.procs.append(proc)
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if "Ray runtime started" in log_path.read_text(errors="replace"):
                return True
            if proc.poll() is not None:
                break
            time.sleep(0.5)
        proctree.send_group(proc.pid, signal.SIGKILL)
        print(f"a Ray node did not start ({' '.join(args[:2])})\n{self.logs(5)}", file=sys.stderr)
        return False
