"""The one real Ray cluster of the test suite (a pytest plugin, loaded by tests/conftest.py).

``ray_cluster`` gives a test a local cluster of real Ray nodes, started once per session: a head
with no blitz slots, and two blitz worker nodes with different resources, each with its own data
directory (``BLITZ_WORKER_HOME``), its own environment and its own resources:

* ``one``: 2 slots, backend ``scripted``, label ``big-repo``;
* ``two``: 2 slots, backends ``scripted`` and ``scripted-b``.

Every node runs with ``RAY_AUTH_MODE=disabled``, one CPU, a short private ``temp_dir``, free ports
(never Ray's defaults: other clusters may be up on this machine; the head's dashboard, which
serves Ray's state API, on 127.0.0.1), and is stopped by this plugin
only (never ``ray stop``). The test process is connected to the cluster as its driver for the
whole session (an executor then uses that connection).

A test may add a node (:meth:`RayCluster.add_worker`) or SIGKILL a node's raylet
(:meth:`RayCluster.kill_raylet`); after each test the cluster is put back in its shape (extra
nodes removed, killed ones replaced by fresh nodes of the same resources).

Worker nodes are started by :func:`start_worker_node`, the one place to change to start them
another way (``blitz worker``). Without ray installed a test asking for the cluster is skipped on
a developer's machine and fails a strict run (:func:`skipcheck.missing`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from blitz.executors.ray.resources import WORKER_HOME_ENV, node_resources, node_settings
from blitz.testing.ray_nodes import SLOW_MACHINE

HOW = "uv sync --extra dev (ray is the ray extra)"

SHAPE = {
    "one": {"slots": 2, "backends": ("scripted",), "labels": ("big-repo",)},
    "two": {"slots": 2, "backends": ("scripted", "scripted-b"), "labels": ()},
}
"""The cluster's worker nodes between tests: name -> resources."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_env(home: Path) -> dict[str, str]:
    """The environment of a worker node's Ray processes (its workers inherit it)."""
    return {
        WORKER_HOME_ENV: str(home),
        "RAY_AUTH_MODE": "disabled",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Worker",
        "GIT_AUTHOR_EMAIL": "worker@example.test",
        "GIT_COMMITTER_NAME": "Worker",
        "GIT_COMMITTER_EMAIL": "worker@example.test",
    }


def start_worker_node(
    cluster: Any,
    *,
    home: Path,
    temp: Path,
    slots: int,
    backends: tuple[str, ...],
    labels: tuple[str, ...],
    env: dict[str, str] | None = None,
) -> Any:
    """Start one blitz worker node joined to ``cluster`` (the only place nodes are started);
    ``env`` is added to its processes' environment (the node's own keys)."""
    home.mkdir(parents=True, exist_ok=True)
    return cluster.add_node(
        num_cpus=1,
        temp_dir=str(temp),
        resources=node_resources(slots, backends, labels),
        env_vars={**node_settings(slots, cpus=1), **node_env(home), **(env or {})},
        object_store_memory=80 * 1024 * 1024,
        node_manager_port=free_port(),
        object_manager_port=free_port(),
        metrics_export_port=free_port(),
        dashboard_agent_listen_port=free_port(),
        runtime_env_agent_port=free_port(),
    )


@dataclass
class Worker:
    name: str
    home: Path
    node: Any  # ray._private.node.Node
    slots: int
    backends: tuple[str, ...]
    labels: tuple[str, ...]
    killed: bool = False

    @property
    def node_id(self) -> str:
        return str(self.node.node_id)

    def raylet_pid(self) -> int:
        from ray._private import ray_constants

        return int(self.node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)


@dataclass
class RayCluster:
    cluster: Any  # ray.cluster_utils.Cluster
    root: Path
    temp: Path
    workers: dict[str, Worker] = field(default_factory=dict)
    _made: int = 0

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def add_worker(
        self,
        name: str,
        *,
        slots: int = 1,
        backends: tuple[str, ...] = ("scripted",),
        labels: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Worker:
        """Join a new worker node with these resources (``env``: added to its environment)."""
        self._made += 1
        home = self.root / f"{name}-{self._made}"
        node = start_worker_node(
            self.cluster,
            home=home,
            temp=self.temp,
            slots=slots,
            backends=backends,
            labels=labels,
            env=env,
        )
        worker = Worker(name, home, node, slots, backends, labels)
        self.workers[name] = worker
        self.cluster.wait_for_nodes()
        return worker

    def kill_raylet(self, name: str) -> None:
        """SIGKILL a worker node's raylet (its workers die with it), as a machine that fails."""
        worker = self.workers[name]
        os.kill(worker.raylet_pid(), signal.SIGKILL)
        worker.killed = True

    def remove(self, name: str) -> None:
        worker = self.workers.pop(name)
        self.cluster.remove_node(worker.node, allow_graceful=not worker.killed)

    def restore(self) -> None:
        """Back to :data:`SHAPE`: extra and killed nodes gone, missing ones started afresh."""
        for name, worker in list(self.workers.items()):
            wanted = SHAPE.get(name)
            same = wanted is not None and (
                worker.slots,
                worker.backends,
                worker.labels,
            ) == (wanted["slots"], wanted["backends"], wanted["labels"])
            if worker.killed or not same:
                self.remove(name)
        for name, shape in SHAPE.items():
            if name not in self.workers:
                self.add_worker(name, **shape)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def _ray_session() -> Iterator[RayCluster]:
    from skipcheck import missing  # here: pytest_plugins must import it first, to rewrite it

    if importlib.util.find_spec("ray") is None:
        missing("ray", HOW)
    import ray
    from ray.cluster_utils import Cluster

    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ.update(SLOW_MACHINE)
    temp = Path(tempfile.mkdtemp(prefix="r15-", dir="/tmp"))
    # Ray's default temp dir (its address file, a driver's session) goes here too, not /tmp/ray.
    os.environ["RAY_TMPDIR"] = str(temp)
    (temp / "ray").mkdir()
    root = Path(tempfile.mkdtemp(prefix="blitz-ray-homes-"))
    cluster = _head(Cluster, temp)
    made = RayCluster(cluster, root, temp)
    try:
        made.restore()
        ray.init(address=cluster.address, log_to_driver=False, namespace="blitz-tests")
        yield made
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)


def _head(cluster_class: Any, temp: Path, tries: int = 3) -> Any:
    """A cluster with its head started: tried again when the head does not come up in time
    (a loaded machine), after ending what the failed try started (its processes carry a marker
    of their own)."""
    from blitz import proctree

    before = os.environ.get(proctree.MARKER_VARIABLE)
    for n in range(tries):
        marker = proctree.new_marker()
        os.environ[proctree.MARKER_VARIABLE] = marker
        try:
            return _start_head(cluster_class, temp)
        except Exception:
            for pid in proctree.marked(marker):
                proctree.send(pid, signal.SIGKILL)
            if n == tries - 1:
                raise
        finally:
            os.environ.pop(proctree.MARKER_VARIABLE, None)
            if before is not None:
                os.environ[proctree.MARKER_VARIABLE] = before
    raise AssertionError("unreachable")


def _start_head(cluster_class: Any, temp: Path) -> Any:
    return cluster_class(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "temp_dir": str(temp),
            # Ray's dashboard serves the state API (its task listing: the canary test reads it);
            # the head runs a dashboard process either way (minimal without it): with it the
            # cluster starts in the same time and memory, within the noise of a loaded machine.
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": free_port(),
            "gcs_server_port": free_port(),
            "node_manager_port": free_port(),
            "object_manager_port": free_port(),
            "metrics_export_port": free_port(),
            "dashboard_agent_listen_port": free_port(),
            "runtime_env_agent_port": free_port(),
            "object_store_memory": 80 * 1024 * 1024,
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4},
        },
    )


@pytest.fixture
def ray_cluster(_ray_session: RayCluster) -> Iterator[RayCluster]:
    """The session's cluster, put back in its shape after the test."""
    yield _ray_session
    _ray_session.restore()


@pytest.fixture
async def ray_executor(ray_cluster: RayCluster) -> AsyncIterator[Callable[..., Any]]:
    """Makes Ray executors on the session's cluster (``poll`` 0.2 s, no warming, unless given),
    each closed (its driver process ended) after the test."""
    from blitz.executors.ray.executor import RayExecutor

    made: list[RayExecutor] = []

    def make(**options: Any) -> RayExecutor:
        executor = RayExecutor(ray_cluster.address, **{"poll": 0.2, "warm": False, **options})
        made.append(executor)
        return executor

    yield make
    for executor in made:
        await executor.close()
