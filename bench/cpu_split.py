"""Where a benchmark's CPU went, by kind of process: CPU seconds from ``/proc/<pid>/stat`` (its
own and its reaped children's, so a git command counts for the process that ran it) taken before
and after, each process put in a kind by its command line.

A process that started and ended between the two snapshots is counted only through the parent
that reaped it; one that ended unreaped is lost (the figures are a lower bound per kind).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

KINDS = (
    ("ray worker", ("ray::", "default_worker.py")),
    ("raylet", ("raylet",)),
    ("gcs", ("gcs_server",)),
    ("other ray", ("ray/", "dashboard", "runtime_env", "log_monitor", "monitor.py")),
)
"""Kinds by words in the command line, the first match wins; the bench process is its own."""

_TICK = os.sysconf("SC_CLK_TCK")

Snapshot = dict[int, tuple[str, float]]
"""Each process: its kind and its CPU seconds."""


def snapshot() -> Snapshot:
    """Each live process: its kind and its CPU seconds so far (with its reaped children's)."""
    found: Snapshot = {}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime, cutime, cstime are fields 14-17 of stat; 12-15 after the name.
        seconds = sum(int(v) for v in fields[11:15]) / _TICK
        pid = int(entry.name)
        found[pid] = ("bench (daemon)" if pid == me else _kind(cmdline), seconds)
    return found


def _kind(cmdline: str) -> str:
    for kind, words in KINDS:
        if any(word in cmdline for word in words):
            return kind
    return "other"


def spent(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> Counter[str]:
    """CPU seconds per kind between two snapshots."""
    totals: Counter[str] = Counter()
    for pid, (kind, seconds) in after.items():
        then = before.get(pid)
        totals[kind] += seconds - (then[1] if then and then[0] == kind else 0.0)
    return totals
