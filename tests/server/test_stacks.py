"""Every thread's stack on SIGUSR1, printed by a process that goes on whatever its threads do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from blitz.server.stacks import format_stacks, print_stacks_on

# Threads start and end all the time while the process signals itself every millisecond: the
# load under which faulthandler.register's handler died of SIGSEGV (python/cpython#116008).
CHURN = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from blitz.server.stacks import print_stacks_on

    print_stacks_on(signal.SIGUSR1, int(sys.argv[1]))
    stop = time.monotonic() + float(sys.argv[2])

    def short_lived():
        sum(range(1000))

    def churn():
        while time.monotonic() < stop:
            threads = [threading.Thread(target=short_lived) for _ in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    def signals():
        while time.monotonic() < stop:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.001)

    for target in (churn, signals):
        threading.Thread(target=target, name=target.__name__).start()
    while time.monotonic() < stop:
        time.sleep(0.01)
    print("went on", flush=True)
    """
)


def test_a_process_flooded_with_the_signal_while_threads_come_and_go_prints_and_goes_on(
    tmp_path: Path,
) -> None:
    out = tmp_path / "stacks.txt"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        ran = subprocess.run(
            [sys.executable, "-c", CHURN, str(fd), "3"],
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(fd)
    assert ran.returncode == 0, (ran.returncode, ran.stderr[-2000:])
    assert ran.stdout == "went on\n"
    assert ran.stderr == ""  # nothing raised into the code the signal interrupted
    printed = out.read_text()
    assert printed.count("(most recent call first):") > 10
    assert "[churn] (most recent call first):" in printed
    assert " in churn\n" in printed and " in signals\n" in printed


def test_the_stacks_name_each_thread_and_its_calls_innermost_first() -> None:
    waiting = threading.Event()
    done = threading.Event()

    def parked_in_here() -> None:
        waiting.set()
        done.wait(30)

    thread = threading.Thread(target=parked_in_here, name="parked")
    thread.start()
    try:
        waiting.wait(10)
        stacks = format_stacks()
    finally:
        done.set()
        thread.join()
    block = stacks.split(f"Thread {thread.ident:#x} [parked] (most recent call first):\n")[1]
    calls = block.split("\n\n")[0].splitlines()
    assert calls[0].endswith(" in wait") and "threading.py" in calls[0]
    assert any(call.endswith(" in parked_in_here") for call in calls)
    assert calls[-1].endswith(" in _bootstrap")
    assert "[MainThread] (most recent call first):" in stacks


def test_a_closed_stderr_raises_nothing_and_the_old_handler_comes_back(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # a write to it fails (EPIPE; SIGPIPE is ignored by Python)
    before = signal.getsignal(signal.SIGUSR1)
    replaced = print_stacks_on(signal.SIGUSR1, write)
    try:
        assert replaced == before
        signal.raise_signal(signal.SIGUSR1)  # the handler runs here, and raises nothing
    finally:
        signal.signal(signal.SIGUSR1, replaced)
        os.close(write)
    assert signal.getsignal(signal.SIGUSR1) == before
