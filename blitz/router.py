"""One priority queue for all ready tasks, across every goal and project.

The router decides what may start now: higher priority first, first come first served among
equals, within a global limit, each project's limit, project pauses and the circuit breakers
(``global``, ``project:<id>``, ``backend:<name>``, the model provider's ``provider:<name>`` and
the executor's ``executor:<name>``). Work held back by an open breaker waits; it never fails. An
item may also be submitted to wait until a given time (its provider asked for that long): it joins
the queue only then.

A provider's breaker only gates: the router neither takes its half-open probe nor reports
outcomes to it, because the model calls inside the attempt do both (they see each request's
outcome, the router only the attempt's).

An executor's breaker hears only whether an attempt reached where the executor runs attempts (its
cluster): an attempt that could not is a failure of that breaker alone (the work and the rest of
the machinery are not at fault), any attempt that got there is a success of it, whatever became of
the work. Its half-open probe is the first attempt the router lets start once the cooldown is over.

Invariants: an item is queued, running or gone, never two of these and never twice; a ``take``
never exceeds a limit; an item that cannot start never holds back an item that can (no
head-of-line blocking). Items are kept in *lanes*, one heap per (project, backend, provider,
executor): all items of a lane share the same limits and breakers, so either the head of a lane can
start or none of it can. A heap of lane heads orders the lanes; a lane that cannot start is parked
under the reason it waits for and comes back when that reason may have gone. submit, take and done
are O(log n).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal, get_args

from blitz.breaker import (
    GLOBAL,
    BreakerBoard,
    Change,
    backend_key,
    executor_key,
    project_key,
    provider_key,
)
from blitz.domain import BreakerState

Outcome = Literal["succeeded", "failed", "crashed", "cancelled"]

_Order = tuple[int, int]  # (-priority, sequence): smaller starts first
_LaneId = tuple[str, str, str, str]  # (project id, backend, provider, executor)
# Why a lane waits, and the project id or breaker key: "probe" is a provider whose breaker is
# half-open while an item of it runs (its model calls hold the one probe; the others would only be
# refused).
_Reason = tuple[Literal["paused", "full", "breaker", "probe"], str]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkItem:
    """A ready task waiting for a slot. Higher ``priority`` starts first."""

    goal_id: str
    task_id: str
    project_id: str
    priority: int = 0
    backend: str = ""
    provider: str = ""  # the model provider the backend calls for this task ("" = none known)
    executor: str = ""  # the executor that runs its attempt ("local", "ray"; "" = none named)

    @property
    def breaker_keys(self) -> tuple[str, ...]:
        """The breakers that must allow this item to start: those its outcome is reported to
        (:attr:`reported_keys`) and its provider's."""
        keys = self.reported_keys
        return (*keys, provider_key(self.provider)) if self.provider else keys

    @property
    def reported_keys(self) -> tuple[str, ...]:
        """The breakers the router admits this item through and reports its outcome to."""
        keys: tuple[str, ...] = (GLOBAL, project_key(self.project_id))
        if self.backend:
            keys = (*keys, backend_key(self.backend))
        return (*keys, executor_key(self.executor)) if self.executor else keys


@dataclass(slots=True)
class _Queued:
    order: _Order
    item: WorkItem
    alive: bool = True  # False once withdrawn or taken; its heap entry is dropped lazily
    asleep: bool = False  # waiting for its time, in the sleepers' heap rather than its lane
    wake: float = 0.0  # the monotonic time it was told to wait until, while asleep


@dataclass(slots=True)
class _Lane:
    id: _LaneId
    keys: tuple[str, ...]  # every breaker that gates the lane
    reported: tuple[str, ...]  # those the router admits through and reports outcomes to
    judged: tuple[str, ...]  # those of ``reported`` that hear how the work went (not the executor)
    gate: str  # the executor's breaker ("" = none), told whether the attempt reached its cluster
    heap: list[tuple[int, int, _Queued]] = field(default_factory=list)
    size: int = 0  # live items in the heap
    entry: _Order | None = None  # the order of this lane's one valid entry in the heads heap
    parked: _Reason | None = None

    def head(self) -> _Queued | None:
        while self.heap and not self.heap[0][2].alive:
            heapq.heappop(self.heap)
        return self.heap[0][2] if self.heap else None


@dataclass(frozen=True, slots=True)
class _Running:
    item: WorkItem
    keys: tuple[str, ...]  # the breakers its outcome is reported to (its lane's ``judged``)
    probes: tuple[str, ...]  # breaker keys whose half-open probe this item holds
    gate: str  # its executor's breaker ("" = none)


_OUTCOMES = frozenset(get_args(Outcome))


class Router:
    """Hands out work items as slots and breakers allow.

    A project is limited only by ``global_limit`` until :meth:`set_project_limit` is called.
    Breaker changes that happen just by time passing are collected with ``router.breakers.poll()``.
    """

    def __init__(self, breakers: BreakerBoard, *, global_limit: int = 8) -> None:
        if global_limit < 1:
            raise ValueError(f"global limit must be at least 1, not {global_limit}")
        self.breakers = breakers
        self.global_limit = global_limit
        self._sequence = 0
        self._lanes: dict[_LaneId, _Lane] = {}
        self._heads: list[tuple[int, int, _LaneId]] = []  # one valid entry per active lane
        self._parked: dict[_Reason, set[_LaneId]] = defaultdict(set)
        self._breaker_waits: set[str] = set()  # keys of breakers that lanes are parked on
        self._queued: dict[str, dict[str, _Queued]] = defaultdict(dict)  # goal -> task -> item
        self._size = 0
        self._running: dict[tuple[str, str], _Running] = {}
        self._running_for: dict[str, int] = defaultdict(int)
        self._limits: dict[str, int] = {}
        self._paused: set[str] = set()
        self._sleepers: list[tuple[float, int, _Queued]] = []  # (wake time, sequence, item)
        self._running_on: dict[str, int] = defaultdict(int)  # provider key -> items running
        self._probe_waits: set[str] = set()  # provider keys that lanes are parked on ("probe")

    # -- projects

    def set_project_limit(self, project_id: str, limit: int) -> None:
        """At most ``limit`` items of the project run at once (running items are never stopped)."""
        if limit < 1:
            raise ValueError(f"project limit must be at least 1, not {limit}; pause it instead")
        self._limits[project_id] = limit
        self._unpark(("full", project_id))

    def pause_project(self, project_id: str) -> None:
        """Start nothing more of the project until it is resumed; its items keep their place."""
        self._paused.add(project_id)

    def resume_project(self, project_id: str) -> None:
        self._paused.discard(project_id)
        self._unpark(("paused", project_id))

    # -- the queue

    def submit(self, item: WorkItem, *, not_before: float | None = None) -> None:
        """Queue a ready item; with ``not_before`` (a monotonic time) it waits until then before
        it may start. A task may be queued or running only once at a time."""
        ident = (item.goal_id, item.task_id)
        if item.task_id in self._queued.get(item.goal_id, ()) or ident in self._running:
            raise ValueError(f"task {item.goal_id}/{item.task_id} is already queued or running")
        self._sequence += 1
        queued = _Queued(order=(-item.priority, self._sequence), item=item)
        self._queued[item.goal_id][item.task_id] = queued
        self._size += 1
        if not_before is not None and not_before > self.breakers.clock.monotonic():
            queued.asleep, queued.wake = True, not_before
            heapq.heappush(self._sleepers, (not_before, self._sequence, queued))
            return
        self._line_up(queued)

    def _line_up(self, queued: _Queued) -> None:
        """Put a queued item in its lane."""
        lane = self._lane(queued.item)
        heapq.heappush(lane.heap, (*queued.order, queued))
        lane.size += 1
        if lane.parked is None and (lane.entry is None or queued.order < lane.entry):
            self._enter(lane, queued.order)

    def _wake_sleepers(self) -> None:
        """Line up the items whose time to wait is over."""
        sleepers = self._sleepers
        now = self.breakers.clock.monotonic()
        while sleepers and sleepers[0][0] <= now:
            queued = heapq.heappop(sleepers)[2]
            if queued.alive:
                queued.asleep = False
                self._line_up(queued)

    def withdraw(self, goal_id: str, task_id: str | None = None) -> list[WorkItem]:
        """Remove queued items of a goal (all of them, or one task), best first. Running items are
        not touched: finish them with :meth:`done`."""
        tasks = self._queued.get(goal_id)
        if not tasks:
            return []
        if task_id is None:
            removed = list(tasks.values())
            del self._queued[goal_id]
        elif (one := tasks.pop(task_id, None)) is not None:
            removed = [one]
            if not tasks:
                del self._queued[goal_id]
        else:
            return []
        for queued in removed:
            # The lane's heap and the heads heap drop it lazily; a lane whose head was withdrawn
            # is re-ordered when its stale heads entry comes up (see take).
            queued.alive = False
            if not queued.asleep:
                self._lanes[self._lane_id(queued.item)].size -= 1
        self._size -= len(removed)
        removed.sort(key=lambda q: q.order)
        return [q.item for q in removed]

    def waits(self, goal_id: str) -> dict[str, float]:
        """The goal's queued items still told to wait: task id -> until when (monotonic)."""
        return {
            task_id: queued.wake
            for task_id, queued in self._queued.get(goal_id, {}).items()
            if queued.asleep
        }

    def take(self) -> list[WorkItem]:
        """Pop every item that may start now, best first, and mark them running."""
        if self._sleepers:
            self._wake_sleepers()
        if self._breaker_waits:
            for key in [k for k in self._breaker_waits if self.breakers.get(k).would_allow()]:
                self._unpark(("breaker", key))
        if self._probe_waits:
            for key in [
                k
                for k in self._probe_waits
                if self.breakers.get(k).state is not BreakerState.HALF_OPEN
            ]:
                self._unpark(("probe", key))
        taken: list[WorkItem] = []
        heads = self._heads
        while heads and len(self._running) < self.global_limit:
            neg_priority, sequence, lane_id = heapq.heappop(heads)
            order = (neg_priority, sequence)
            lane = self._lanes[lane_id]
            if lane.entry != order:
                continue  # superseded by a better head, or the lane is parked
            lane.entry = None
            head = lane.head()
            if head is None:
                continue
            if head.order != order:
                self._enter(lane, head.order)  # its head was withdrawn: re-order the lane
                continue
            # Take from this lane for as long as it may start and its head comes first.
            while True:
                blocker = self._blocked(lane)
                if blocker is not None:
                    lane.parked = blocker
                    self._parked[blocker].add(lane.id)
                    if blocker[0] == "breaker":
                        self._breaker_waits.add(blocker[1])
                    elif blocker[0] == "probe":
                        self._probe_waits.add(blocker[1])
                    break
                taken.append(self._start(lane, head))
                head = lane.head()
                if head is None:
                    break
                if len(self._running) >= self.global_limit or (
                    heads and (heads[0][0], heads[0][1]) < head.order
                ):
                    self._enter(lane, head.order)
                    break
        return taken

    def _start(self, lane: _Lane, head: _Queued) -> WorkItem:
        """Move the lane's head (which may start) from the queue to the running items."""
        probes = self.breakers.admit(lane.reported)
        assert probes is not None, "every breaker of the lane would allow"
        heapq.heappop(lane.heap)
        lane.size -= 1
        head.alive = False
        item = head.item
        tasks = self._queued[item.goal_id]
        del tasks[item.task_id]
        if not tasks:
            del self._queued[item.goal_id]
        self._size -= 1
        self._running[(item.goal_id, item.task_id)] = _Running(
            item, lane.judged, tuple(probes), lane.gate
        )
        self._running_for[item.project_id] += 1
        if item.provider:
            self._running_on[provider_key(item.provider)] += 1
        return item

    def done(
        self, item: WorkItem, *, outcome: Outcome, error: str = "", reached: bool | None = None
    ) -> list[Change]:
        """Free the item's slot and report its outcome to its breakers.

        ``crashed`` (the machinery broke) is a failure of every breaker of the item; ``succeeded``
        and ``failed`` (the machinery worked, whatever the work was) are successes; ``cancelled``
        only gives back a half-open probe the item held.

        ``reached``: whether the attempt reached where its executor runs attempts. False (the
        executor is down) is a failure of the executor's breaker only, and counts as ``cancelled``
        for the others; True a success of the executor's breaker; None (not known) a success of it
        unless the outcome is ``cancelled``, which gives its probe back. Returns the breakers'
        changes.
        """
        if outcome not in _OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        running = self._running.pop((item.goal_id, item.task_id), None)
        if running is None:
            raise ValueError(f"task {item.goal_id}/{item.task_id} is not running")
        project = running.item.project_id
        left = self._running_for[project] - 1
        if left:
            self._running_for[project] = left
        else:
            del self._running_for[project]
        if running.item.provider:
            key = provider_key(running.item.provider)
            self._running_on[key] -= 1
            if not self._running_on[key]:
                del self._running_on[key]
                self._unpark(("probe", key))
        full: _Reason = ("full", project)
        if full in self._parked and left < self._limits.get(project, self.global_limit):
            self._unpark(full)
        gate = running.gate
        changes: list[Change] = []
        if gate:
            if reached is None and outcome != "cancelled":
                reached = True
            if reached is not None:
                changes = self.breakers.record([gate], ok=reached, error=error)
        if outcome == "cancelled" or reached is False:
            # Give back the probes it held of the breakers that were told nothing.
            told = gate if reached is not None else ""
            self.breakers.release([key for key in running.probes if key != told])
            return changes
        return changes + self.breakers.record(running.keys, ok=outcome != "crashed", error=error)

    # -- reading

    def queued(self) -> int:
        return self._size

    def running(self) -> int:
        return len(self._running)

    def running_for(self, project_id: str) -> int:
        return self._running_for.get(project_id, 0)

    def next_wakeup(self) -> float | None:
        """The monotonic time a waiting item may become startable because its time to wait is
        over or a breaker goes half-open (now, if one already may start); None if no item waits
        for either. Items count as waiting on a breaker once a :meth:`take` found them held by
        it."""
        times = []
        sleepers = self._sleepers
        while sleepers and not sleepers[0][2].alive:
            heapq.heappop(sleepers)
        if sleepers:
            times.append(sleepers[0][0])
        for key in self._breaker_waits:
            if not any(self._lanes[i].size for i in self._parked[("breaker", key)]):
                continue
            breaker = self.breakers.get(key)
            if breaker.would_allow():
                return self.breakers.clock.monotonic()
            if (at := breaker.retry_at()) is not None:
                times.append(at)
        return min(times, default=None)

    # -- lanes

    @staticmethod
    def _lane_id(item: WorkItem) -> _LaneId:
        return (item.project_id, item.backend, item.provider, item.executor)

    def _lane(self, item: WorkItem) -> _Lane:
        lane_id = self._lane_id(item)
        lane = self._lanes.get(lane_id)
        if lane is None:
            reported = item.reported_keys
            gate = executor_key(item.executor) if item.executor else ""
            lane = self._lanes[lane_id] = _Lane(
                id=lane_id,
                keys=item.breaker_keys,
                reported=reported,
                judged=tuple(key for key in reported if key != gate),
                gate=gate,
            )
        return lane

    def _enter(self, lane: _Lane, order: _Order) -> None:
        """Make ``order`` the lane's one valid entry in the heads heap."""
        lane.entry = order
        heapq.heappush(self._heads, (*order, lane.id))

    def _unpark(self, reason: _Reason) -> None:
        if reason[0] == "breaker":
            self._breaker_waits.discard(reason[1])
        elif reason[0] == "probe":
            self._probe_waits.discard(reason[1])
        for lane_id in self._parked.pop(reason, ()):
            lane = self._lanes[lane_id]
            lane.parked = None
            if (head := lane.head()) is not None:
                self._enter(lane, head.order)

    def _blocked(self, lane: _Lane) -> _Reason | None:
        """Why the lane cannot start now, or None if it can."""
        project = lane.id[0]
        if project in self._paused:
            return ("paused", project)
        if self._running_for.get(project, 0) >= self._limits.get(project, self.global_limit):
            return ("full", project)
        if self.breakers.settled():
            return None
        for key in lane.keys:
            breaker = self.breakers.get(key)
            if not breaker.would_allow():
                return ("breaker", key)
            if key in self._running_on and breaker.state is BreakerState.HALF_OPEN:
                return ("probe", key)
        return None
