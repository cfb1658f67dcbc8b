"""Every thread's stack on a signal: what a daemon that will not stop is waiting for.

``faulthandler.register`` would print them from inside the C signal handler, walking the other
threads' frames while those threads run on; CPython 3.11 can crash doing so (python/cpython#116008:
a daemon sent SIGUSR1 in CI died of SIGSEGV). Here a Python handler prints them: it runs on the
main thread between bytecodes (also while that thread waits in a system call or on a lock), with
the GIL held, from :func:`sys._current_frames`, a consistent snapshot.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def format_stacks() -> str:
    """Every thread's stack, innermost call first (faulthandler's layout)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    lines: list[str] = []
    for ident, frame in sys._current_frames().items():
        name = names.get(ident, "not a threading.Thread")
        lines.append(f"Thread {ident:#x} [{name}] (most recent call first):")
        for entry in reversed(traceback.extract_stack(frame)):
            lines.append(f'  File "{entry.filename}", line {entry.lineno} in {entry.name}')
        lines.append("")
    return "\n".join(lines) + "\n"


def print_stacks_on(signum: int, fd: int = 2) -> Handler:
    """Print every thread's stack to the descriptor ``fd`` (stderr) when ``signum`` comes;
    return the handler replaced (for :func:`signal.signal` to put back). Main thread only.

    The handler raises nothing into the code it interrupts, writes with ``os.write`` (a buffered
    stream interrupted in its own write refuses a reentrant one) and passes over a signal that
    comes while it prints."""
    printing = False

    def handle(_signum: int, _frame: FrameType | None) -> None:
        nonlocal printing
        if printing:
            return
        printing = True
        try:
            data = format_stacks().encode(errors="replace")
            while data:
                data = data[os.write(fd, data) :]
        except Exception:  # stderr closed or gone: nothing to print to, and nothing to break
            pass
        finally:
            printing = False

    return signal.signal(signum, handle)
