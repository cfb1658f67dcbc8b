"""blitz.proctree on real processes: finding a tree (children, a process group, a marker in the
environment), killing all of it, and telling whether a runner is alive."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest

from blitz import proctree
from blitz.runner import runner_id

pytestmark = pytest.mark.timeout(60)

TREE = """
import os, subprocess, sys, time
subprocess.Popen(["sleep", "300"])                      # a child
subprocess.Popen(["sh", "-c", "sleep 300; true"])       # a child with a grandchild
subprocess.Popen(["sh", "-c", "setsid sleep 300 &"]).wait()  # an orphan in its own session
print("ready", flush=True)
time.sleep(300)
"""


def start(marker: str = "", *, new_session: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, proctree.MARKER_VARIABLE: marker} if marker else None
    proc = subprocess.Popen(
        [sys.executable, "-c", TREE],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=new_session,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


async def gone(pids: set[int], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while any(map(proctree.alive, pids)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return not any(map(proctree.alive, pids))


def reap(proc: subprocess.Popen[str]) -> int:
    """Wait for ``proc`` and close its pipe; its exit code."""
    code = proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()
    return code


async def test_descendants_are_children_and_grandchildren_and_marked_finds_the_rest() -> None:
    marker = proctree.new_marker()
    proc = start(marker)
    try:
        await asyncio.sleep(0.2)  # setsid execs sleep
        tree = proctree.descendants(proc.pid)
        found = proctree.marked(marker)
        assert proc.pid in tree and len(tree) >= 4  # python, sleep, sh and its sleep
        assert tree <= found  # every process of the tree carries the marker...
        assert len(found - tree) == 1  # ...and so does the one that left it
    finally:
        await proctree.kill_tree(proc.pid, marker=marker, grace=1)
        reap(proc)


async def test_kill_tree_ends_the_whole_tree_and_what_left_it() -> None:
    marker = proctree.new_marker()
    proc = start(marker)
    await asyncio.sleep(0.2)
    everything = proctree.descendants(proc.pid) | proctree.marked(marker)

    await proctree.kill_tree(proc.pid, marker=marker, grace=1)

    reap(proc)
    assert await gone(everything)
    assert not proctree.marked(marker)


async def test_kill_tree_by_group_ends_the_group_without_a_marker() -> None:
    proc = start(new_session=True)
    await asyncio.sleep(0.2)
    group = proctree.descendants(proc.pid, group=True)
    assert proc.pid in group

    await proctree.kill_tree(proc.pid, group=True, grace=1)

    reap(proc)
    assert await gone(group)


async def test_a_process_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import signal, time\n"
         "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
         "time.sleep(300)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    started = time.monotonic()

    await proctree.kill_tree(proc.pid, grace=0.5)

    assert reap(proc) == -9
    assert time.monotonic() - started < 5


async def test_killing_nothing_is_a_no_op() -> None:
    await proctree.kill_tree(None, marker=proctree.new_marker())
    assert proctree.descendants(None) == set()
    assert proctree.marked("") == set()


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while proctree.alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not proctree.alive(proc.pid)  # exited, not reaped yet
    proc.wait()


def test_runner_alive() -> None:
    host = socket.gethostname()
    assert proctree.runner_alive(runner_id())
    assert runner_id() == f"{os.getpid()}@{host}"
    assert proctree.runner_alive(f"1@another-{host}")  # another host's runner: assumed alive
    assert not proctree.runner_alive("")
    assert not proctree.runner_alive(f"not-a-pid@{host}")
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not proctree.runner_alive(f"{proc.pid}@{host}")
