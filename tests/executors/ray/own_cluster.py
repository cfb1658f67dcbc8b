"""A Ray cluster of a test's own, of real ``ray start --block`` processes: a head on a port that
stays the same across restarts, and blitz worker nodes. For a test that takes a whole cluster away
(the session's cluster, tests/ray_cluster.py, must outlive every test). Every process carries this
cluster's marker; :meth:`OwnCluster.kill` and :meth:`OwnCluster.stop` end exactly those (never
``ray stop``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ray_cluster import free_port, node_env

from blitz import proctree
from blitz.executors.ray.resources import node_resources

START_DEADLINE = 180.0
"""Seconds a node may take to start on a loaded machine."""


class OwnCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.temp_dir = f"/tmp/rdown{os.getpid() % 100000}"  # short: Ray's socket paths must fit
        self.marker = proctree.new_marker()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_head(self) -> None:
        args = ["--head", "--port", str(self.port), "--ray-client-server-port", str(free_port())]
        self._start([*args, "--include-dashboard", "false"], {})

    def add_worker(self, name: str, slots: int = 1) -> None:
        offered = json.dumps(node_resources(slots, ["scripted"], []))
        env = node_env(self.root / name)
        (self.root / name).mkdir(parents=True, exist_ok=True)
        self._start(["--address", self.address, "--resources", offered], env)

    async def kill(self) -> None:
        """SIGKILL every process of the cluster at once: a machine that lost power."""
        for _ in range(3):  # one SIGKILL each, no warning; again for any started meanwhile
            for pid in proctree.marked(self.marker):
                proctree.send(pid, signal.SIGKILL)
        for proc in self.procs:
            proctree.send_group(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
        self.procs.clear()

    async def stop(self) -> None:
        for proc in self.procs:
            await proctree.kill_tree(proc.pid, marker=self.marker, group=True)
        await proctree.kill_tree(None, marker=self.marker)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 30)
        self.procs.clear()

    def _start(self, args: list[str], env: dict[str, str]) -> None:
        index = len(self.procs)
        log_path = self.root / f"node-{index}.log"
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--block", *args,
            "--num-cpus", "1", "--temp-dir", self.temp_dir, "--disable-usage-stats",
            "--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
            "--dashboard-agent-listen-port", str(free_port()),
            "--dashboard-agent-grpc-port", str(free_port()),
            "--metrics-export-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port()),
            "--min-worker-port", str(20000 + index * 200 + os.getpid() % 20000),
            "--max-worker-port", str(20150 + index * 200 + os.getpid() % 20000),
        ]  # fmt: skip
        full_env = {
            **os.environ,
            **env,
            "RAY_AUTH_MODE": "disabled",
            proctree.MARKER_VARIABLE: self.marker,
        }
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                command, env=full_env, stdout=log, stderr=log, start_new_session=True
            )
        self.procs.append(proc)
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if "Ray runtime started" in log_path.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(
            f"a Ray node did not start: {' '.join(args[:2])}\n"
            + log_path.read_text(errors="replace")[-3000:]
        )
