"""Where a goal's wall time went, attempt by attempt, from its event log.

Each attempt's phases, between the events the engine, the executor and the worker write
(``ts`` of each; a remote attempt's own events are stamped on its node, the same machine's clock
here):

- **queued**: ``task.ready`` (or the goal's start) to ``task.started``: the engine's wait for a
  slot (for a second wave, the first wave's length);
- **placed**: to ``attempt.placed``, a remote executor choosing a node (none for a local attempt);
- **setup**: to ``workspace.ready``: the sync and the attempt's worktree;
- **agent**: to the agent's last message;
- **commit**: to ``checkpoint.committed``: the attempt's gates and commit;
- **landed**: to ``attempt.finished``: the way back and the daemon's integration.

:func:`summary` gives each phase's median and maximum, when the last attempt landed, and each
attempt's moments for a closer look.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from blitz.events import Event, EventKind

PHASES = ("queued", "placed", "setup", "agent", "commit", "landed")

_MARKS = {
    EventKind.ATTEMPT_PLACED: "placed",
    EventKind.WORKSPACE_READY: "setup",
    EventKind.AGENT_MESSAGE: "agent",
    EventKind.CHECKPOINT_COMMITTED: "commit",
    EventKind.ATTEMPT_FINISHED: "landed",
}
"""The event ending each phase after ``queued`` (its last one for the agent, else its first)."""


@dataclass
class Attempt:
    """One attempt's moments: seconds since the goal started, by the phase they end."""

    task_id: str
    ready: float = 0.0  # when its task became ready
    ends: dict[str, float] = field(default_factory=dict)

    def phases(self) -> dict[str, float]:
        """Each phase's seconds (a phase whose end was not seen is left out)."""
        found, last = {}, self.ready
        for name in PHASES:
            if name in self.ends:
                found[name] = self.ends[name] - last
                last = self.ends[name]
        return found


def attempts(events: Iterable[Event]) -> list[Attempt]:
    """Each attempt of the goal whose events these are, in the order they started."""
    listed = sorted(events, key=lambda e: (e.ts, e.id))
    if not listed:
        return []
    start = next((e.ts for e in listed if e.kind is EventKind.GOAL_STARTED), listed[0].ts)
    ready: dict[str, float] = {}
    found: dict[str, Attempt] = {}
    for e in listed:
        at = e.ts - start
        if e.kind is EventKind.TASK_READY:
            ready.setdefault(e.task_id, at)
        elif e.kind is EventKind.TASK_STARTED and e.attempt_id:
            found[e.attempt_id] = Attempt(e.task_id, ready.get(e.task_id, 0.0), {"queued": at})
        elif e.attempt_id in found and e.kind in _MARKS:
            ends = found[e.attempt_id].ends
            if e.kind is EventKind.AGENT_MESSAGE or _MARKS[e.kind] not in ends:
                ends[_MARKS[e.kind]] = at
    return list(found.values())


def summary(events: Iterable[Event]) -> dict[str, object]:
    """Each phase's median and maximum seconds, when the last attempt landed, and each
    attempt's moments (``attempts``: task id, then the moment each phase ended)."""
    found = attempts(events)
    out: dict[str, object] = {}
    for name in PHASES:
        values = [p[name] for a in found if name in (p := a.phases())]
        if values:
            out[name] = {"median": statistics.median(values), "max": max(values)}
    landed = [a.ends["landed"] for a in found if "landed" in a.ends]
    out["last_landed"] = max(landed) if landed else None
    out["attempts"] = [[a.task_id, {k: round(v, 3) for k, v in a.ends.items()}] for a in found]
    return out


def describe(found: dict[str, object]) -> str:
    """One line: each phase's median / max seconds, and when the last attempt landed."""
    parts = []
    for name in PHASES:
        one = found.get(name)
        if isinstance(one, dict):
            parts.append(f"{name} {one['median']:.2f} / {one['max']:.2f} s")
    last = found.get("last_landed")
    if isinstance(last, float):
        parts.append(f"last landed at {last:.1f} s")
    return "; ".join(parts)
