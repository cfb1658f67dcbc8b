"""Who runs a goal: this process's runner id, and whether the process behind an id still runs."""

from __future__ import annotations

import contextlib
import os
import socket


def runner_id() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed but not yet reaped by its parent) is dead for our purposes.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat", encoding="ascii") as f:
        if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    return True
