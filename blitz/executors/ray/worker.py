"""A ``blitz worker`` node: the ``ray start --address HEAD:PORT --block`` a user would otherwise
type, advertising what this machine can do (:func:`~blitz.executors.ray.resources.node_resources`)
and telling its Ray processes where the worker keeps its data (``BLITZ_WORKER_HOME``).

The node runs as a child process in a session of its own, every process of it marked (the
:data:`blitz.proctree.MARKER_VARIABLE` its environment carries, which the raylet's workers
inherit); :func:`run_node` waits on it and, when it is stopped (Ctrl-C, SIGTERM), ends the whole
tree. Keys never reach Ray's arguments: only resource names and counts do; the node's processes
find the keys in the environment they inherit, as any process here does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from blitz import proctree
from blitz.executors.ray.resources import WORKER_HOME_ENV, node_settings

STOP_GRACE = 15.0
"""Seconds the node's ``ray start --block`` has to stop its processes before they are killed."""


def worker_command(
    address: str,
    slots: int = 1,
    labels: Sequence[str] = (),
    home: Path | str | None = None,
    *,
    backends: Sequence[str] = (),
    ray_args: Sequence[str] = (),
) -> list[str]:
    """The ``blitz worker`` command line that joins this machine to the cluster at ``address``
    (run with this Python: tests and fixtures start nodes with it). ``backends``: advertise only
    these (each must be usable here); ``ray_args``: passed on to ``ray start`` (``--num-cpus 1``,
    ports when several nodes share a machine)."""
    command = [sys.executable, "-c", "from blitz.cli import main; main()", "worker"]
    command += ["--address", address, "--slots", str(slots)]
    for label in labels:
        command += ["--label", label]
    for backend in backends:
        command += ["--backend", backend]
    if home is not None:
        command += ["--home", str(home)]
    if ray_args:
        command += ["--", *ray_args]
    return command


def ray_start_command(
    address: str, resources: Mapping[str, float], ray_args: Sequence[str] = ()
) -> list[str]:
    """``ray start`` joining ``address`` with these custom resources, blocking until stopped."""
    return [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--address",
        address,
        "--resources",
        json.dumps(dict(resources), sort_keys=True),
        "--block",
        *ray_args,
    ]


def node_env(
    home: Path,
    marker: str,
    environ: Mapping[str, str] | None = None,
    *,
    slots: int = 1,
    ray_args: Sequence[str] = (),
) -> dict[str, str]:
    """The node's environment: this process's (keys included: they stay in the environment), its
    data directory, the marker that finds every process of the node, and Ray's settings for a
    node of ``slots`` slots (:func:`~blitz.executors.ray.resources.node_settings`; its CPUs as
    ``ray_args`` say, else this machine's) unless the environment sets them."""
    env = dict(os.environ if environ is None else environ)
    for name, value in node_settings(slots, num_cpus(ray_args)).items():
        env.setdefault(name, value)
    env[WORKER_HOME_ENV] = str(home)
    env[proctree.MARKER_VARIABLE] = marker
    return env


def num_cpus(ray_args: Sequence[str]) -> int | None:
    """The ``--num-cpus`` that ``ray start`` is given in ``ray_args`` (None: not given)."""
    for i, arg in enumerate(ray_args):
        value = arg.partition("=")[2] if arg.startswith("--num-cpus=") else None
        if arg == "--num-cpus" and i + 1 < len(ray_args):
            value = ray_args[i + 1]
        if value is not None:
            try:
                return max(0, int(float(value)))
            except ValueError:
                return None  # ray start says what is wrong with it
    return None


async def run_node(
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    stop: asyncio.Event | None = None,
    grace: float = STOP_GRACE,
) -> int:
    """Run the node's ``ray start --block`` until it ends or ``stop`` is set (a signal); either
    way no process of the node is left. Returns its exit code (0 when stopped)."""
    marker = env[proctree.MARKER_VARIABLE]
    proc = await asyncio.create_subprocess_exec(*command, env=dict(env), start_new_session=True)
    ended = asyncio.ensure_future(proc.wait())
    stopping = asyncio.ensure_future((stop or asyncio.Event()).wait())
    try:
        await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if ended.done():
            return ended.result()
        await stop_node(proc, grace=grace)
        return 0
    finally:
        stopping.cancel()
        ended.cancel()
        # Whatever the node left (its workers outlive a raylet killed hard): gone.
        await proctree.kill_tree(proc.pid, marker=marker, group=True)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()


async def stop_node(proc: asyncio.subprocess.Process, *, grace: float) -> None:
    """Ask ``ray start --block`` to stop its processes (SIGTERM), as ``ray stop`` would for this
    node only; wait ``grace`` seconds for it."""
    if proc.returncode is not None:
        return
    proctree.send(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await proc.wait()
