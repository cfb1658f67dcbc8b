"""Waiting for an ``flock`` without blocking the event loop: the one place blitz waits for a
lock file that another process may hold (the repository lock, a gate run in progress)."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from pathlib import Path


async def acquire(path: Path, *, on_wait: Callable[[], None] | None = None) -> int:
    """``flock`` the file (made if missing) and return its descriptor; the lock is polled, so
    cancellation is clean. ``on_wait`` is called once if another holder makes it wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    delay = 0.005
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if on_wait is not None and delay == 0.005:
                    on_wait()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
    except BaseException:
        os.close(fd)
        raise
