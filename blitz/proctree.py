"""Process trees: the one place blitz finds processes and kills them, and checks whether a runner
(the process that claimed a goal) is alive.

A run's processes are found three ways, because each misses some: the descendants of its root
(parent links), the members of its process group, and every process whose environment carries
the run's marker (:data:`MARKER_VARIABLE`, inherited by everything the run starts, which finds
those that left the tree and the group with ``setsid``). Finding uses ``/proc`` (Linux; parent
links fall back to ``ps`` elsewhere).

:func:`kill_tree` freezes what it finds (SIGSTOP, so none can start another unseen), asks it to
end (SIGTERM, then SIGCONT so cleanup runs) and kills (SIGKILL) whatever is left after a grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

MARKER_VARIABLE = "BLITZ_RUN"
"""Environment variable carrying one run's marker to every process it starts."""

GRACE = 3.0
"""Seconds the processes of a stopped run have between SIGTERM and SIGKILL."""

_PROC = Path("/proc")


def new_marker() -> str:
    """A fresh marker for one run (the value of :data:`MARKER_VARIABLE`)."""
    return uuid.uuid4().hex


def send(pid: int, number: int) -> None:
    """Signal one process; one that is gone or not ours is ignored."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, number)


def send_group(pgid: int, number: int) -> None:
    """Signal a process group; a group that is gone or not ours is ignored."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, number)


def alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie, waiting to be reaped, does not)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return _stat(pid)[0] not in ("Z", "X")
    return True


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, pgrp, ...)."""
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    return (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def _table() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process: from /proc, else ``ps``."""
    if _PROC.is_dir():
        for entry in _PROC.iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    fields = _stat(int(entry.name))
                    yield int(entry.name), int(fields[1]), int(fields[2])
        return
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "pgid="],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        for line in listing.splitlines():
            with contextlib.suppress(ValueError):
                pid, parent, group = map(int, line.split())
                yield pid, parent, group


def descendants(root: int | None, *, group: bool = False) -> set[int]:
    """``root`` and every process below it (and, with ``group``, every member of the process
    group ``root`` leads); empty when ``root`` is None or gone."""
    if root is None:
        return set()
    children: dict[int, list[int]] = {}
    members: set[int] = set()
    for pid, parent, pgid in _table():
        children.setdefault(parent, []).append(pid)
        if group and pgid == root:
            members.add(pid)
    if root not in children and not members and not alive(root):
        return set()
    found, todo = {root} | members, [root, *members]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def marked(marker: str, variable: str = MARKER_VARIABLE) -> set[int]:
    """Processes whose environment holds ``variable=marker`` (Linux only; empty elsewhere)."""
    if not marker or not _PROC.is_dir():
        return set()
    needle = f"{variable}={marker}".encode()
    found: set[int] = set()
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
    return found


def _find(root: int | None, marker: str, group: bool) -> set[int]:
    return (descendants(root, group=group) | marked(marker)) - {os.getpid()}


def _freeze(root: int | None, marker: str, group: bool) -> set[int]:
    """SIGSTOP the run's processes until no new one turns up; returns them all."""
    stopped: set[int] = set()
    while True:
        new = _find(root, marker, group) - stopped
        if not new:
            return stopped
        for pid in new:
            send(pid, signal.SIGSTOP)
        stopped |= new


async def kill_tree(
    root: int | None, *, marker: str = "", group: bool = False, grace: float = GRACE
) -> None:
    """End ``root``, its descendants (and with ``group`` its process group) and every process
    marked with ``marker``: frozen, asked to end (SIGTERM then SIGCONT), and killed (SIGKILL)
    if any is left after ``grace`` seconds."""
    if group and root is not None:
        send_group(root, signal.SIGSTOP)  # where /proc cannot list the group
    frozen = _freeze(root, marker, group)
    if group and root is not None:
        send_group(root, signal.SIGTERM)
        send_group(root, signal.SIGCONT)
    if not frozen:
        return
    for pid in frozen:
        send(pid, signal.SIGTERM)
        send(pid, signal.SIGCONT)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while any(map(alive, frozen)) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    left = {pid for pid in frozen if alive(pid)}
    left |= _freeze(root if alive(root) else None, marker, group)
    if group and root is not None:
        send_group(root, signal.SIGKILL)
    for pid in left:
        send(pid, signal.SIGKILL)


# -- runners ------------------------------------------------------------------------------------


def runner_alive(runner: str) -> bool:
    """Whether the process that claimed a goal still runs (checked on this host; a runner on
    another host is assumed alive)."""
    if not runner:
        return False
    pid_text, _, host = runner.partition("@")
    if host != socket.gethostname():
        return True
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    return alive(pid)
