"""The Ray executor: each attempt runs on a blitz worker node of a Ray cluster; the daemon stays
the only writer of state and integrates every commit itself.

``RayExecutor(address)`` connects lazily (:meth:`RayExecutor.start`, or the first
:meth:`~RayExecutor.run`); a cluster that cannot be reached is a
:class:`~blitz.errors.ConfigError` naming the address. One attempt is:

1. **Placement.** The cluster's blitz worker nodes are read from Ray (total and available
   resources, :func:`~blitz.executors.ray.resources.node_of`). While no node can take the attempt
   it waits (``attempt.waiting`` with the reason, once per new reason; cancellable, never a
   failure) and polls. Among the nodes that fit, the one with the most free slots by this
   executor's own count (its slots less the attempts placed there that have not ended: Ray's view
   lags) is chosen, of equals one that already holds the project's history
   (:func:`~blitz.executors.ray.placement.choose`). ``attempt.placed`` says where.
2. **Sync.** What the node holds of the project is asked once (a tiny task pinned to it), then
   remembered (:class:`~blitz.executors.ray.sync.Known`): a base counts as held once the node's
   first report of an attempt on it arrived (it fetched it). A bundle
   of the goal branch without what the node holds (nothing when it holds the head) goes through
   the object store.
3. **One Ray task** pinned to the node (hard node affinity) asking for the attempt's
   :func:`~blitz.executors.ray.resources.demand` (so the node's slots count it), ``num_cpus=0``,
   Ray's retries off (``max_retries=0``, ``retry_exceptions=False``: attempts are not idempotent,
   blitz decides). It is a streaming generator (:func:`~blitz.executors.ray.remote.attempt_stream`).
4. **Relay and land.** Events go to ``request.emit``, usage to ``request.meter`` as they come. The
   result must be for the attempt this call waits for (anything else is refused: a stale
   result); its commit is fetched from the returned bundle into ``refs/blitz/remote/<goal>/<task>/
   <attempt>``, checked (its parent is the base sent, its trailers name this goal and task) and
   integrated by :func:`blitz.conductor.landing.land`, the same code a local attempt's integration
   runs. Re-validation after a rebase onto work that landed meanwhile runs on the daemon, with the
   daemon's validator: the rebased combination exists only in the daemon's repository, the node may
   already be gone or busy, and sending it back for one more round trip would let the goal branch
   move again meanwhile. A best-of-N candidate's commit comes back even when its gates failed on
   the node (FAILED with a commit): landed as a failed candidate, kept as a ref, never integrated.

Every call to Ray goes through the executor's :class:`~blitz.executors.ray.driver.Driver`, a
child process that is the cluster's driver (Ray may end it; the daemon lives on and starts another
once the cluster answers again).

Faults: a node that dies mid-attempt (Ray's node/worker/object-lost errors) is ``crashed`` with an
error naming the node, and the node is never chosen again (a restarted node is a new node id); the
engine re-queues the task (bounded). A cluster that cannot be reached (the driver ended, or a
node error while the head does not answer) is ``unavailable`` with ``executor_down``.
Cancelling :meth:`run` (goal cancel, timeout, drain) cancels the Ray task
(non-force: the worker cancels the attempt, which kills its agent's and gates' process groups),
then force-cancels it after :data:`~blitz.executors.ray.driver.CANCEL_GRACE`, and re-raises.
Each attempt also has an overall deadline on this side (the agent's timeout plus its gates' and a
margin).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from blitz import trailers
from blitz.domain import AttemptState
from blitz.errors import ConfigError, RunError
from blitz.events import Event, EventKind
from blitz.executors.base import AttemptReport, AttemptRequest, Outcome
from blitz.executors.ray import placement, reach, remote, sync
from blitz.executors.ray.driver import Driver, DriverLost, RemoteFault
from blitz.executors.ray.flights import Flights
from blitz.executors.ray.job import job_for
from blitz.executors.ray.resources import Node, demand, why_not
from blitz.executors.ray.sync import Known

CONNECT_TIMEOUT = 60.0
"""Seconds :meth:`RayExecutor.start` waits for the cluster."""

MARGIN = 300.0
"""Seconds beyond the agent's timeout and the gates' that an attempt may take on the daemon's
clock (bundles, set-up, commit) before it is cancelled."""

STATE_TIMEOUT = 30.0
"""Seconds the driver has to answer what the cluster's nodes are (or what a node holds)."""

KEPT_BUNDLE = 8 * 1024 * 1024
"""The largest bundle kept after it was sent, for the next attempt asking the same (bytes)."""

REMOTE_REFS = "refs/blitz/remote"
"""Commits fetched from workers: ``refs/blitz/remote/<goal>/<task>/<attempt>``."""


class StaleResult(RunError):
    """A result for an attempt this executor is not waiting for."""


class RayExecutor:
    """An :class:`~blitz.executors.base.Executor` running attempts on a Ray cluster's nodes."""

    def __init__(
        self,
        address: str,
        *,
        namespace: str = "blitz",
        poll: float = 1.0,
        gcs_timeout: float = 0,
        warm: bool = True,
    ) -> None:
        self.address = address
        self.warm = warm  # start each worker node's processes before its first attempt
        self.namespace = namespace
        self.poll = poll
        self.gcs_timeout = gcs_timeout  # Ray's reconnect timeout for the driver (0: Ray's 60 s)
        self._driver: Driver | None = None
        self._lock = asyncio.Lock()
        self._known = Known()
        self._flights = Flights()  # what a wave of attempts asks at once, asked once
        self._running: dict[str, str] = {}  # attempt id -> node id
        self._load: dict[str, int] = {}  # node id -> attempts placed there, not ended
        self._dead: set[str] = set()  # node ids that died under an attempt
        self._no_fetch: set[tuple[str, str]] = set()  # (node, project) that failed to fetch
        self.placed: list[tuple[str, str]] = []  # (attempt id, node id), every placement made

    # -- the public surface ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the Ray driver process connected to the cluster (once, and again after it was
        lost); a ConfigError naming the address if the cluster cannot be reached."""
        async with self._lock:
            if self._driver is not None and self._driver.alive:
                return
            if self._driver is not None:
                await self._driver.close()
                self._driver = None
            await reach.probe(self.address)  # fail fast: Ray retries a dead address for minutes
            try:
                self._driver = await Driver.start(
                    self.address,
                    self.namespace,
                    timeout=CONNECT_TIMEOUT,
                    gcs_timeout=self.gcs_timeout,
                    warm=self.warm,
                )
            except DriverLost as exc:
                raise ConfigError(f"cannot reach the Ray cluster at {self.address}: {exc}") from exc

    def placements(self) -> dict[str, str]:
        """Running attempt id -> the Ray node id it runs on."""
        return dict(self._running)

    async def close(self) -> None:
        """Let the cluster go: the driver process ends (the Ray tasks it owns end with it)."""
        async with self._lock:
            driver, self._driver = self._driver, None
        if driver is not None:
            await driver.close()

    async def nodes(self) -> list[Node]:
        """The cluster's worker nodes now, live ones first (for the workers list)."""
        await self.start()
        listed, free = await self._state()
        found = placement.worker_nodes(listed, free)
        return sorted(found, key=lambda n: (not n.alive, n.address, n.node_id))

    async def warmed(self) -> dict[str, list[int]]:
        """The worker nodes warmed so far: node id -> the processes started there for attempts
        (:mod:`~blitz.executors.ray.warming`; empty when ``warm`` is off)."""
        await self.start()
        assert self._driver is not None
        found: dict[str, list[int]] = await self._driver.call("warmed", timeout=STATE_TIMEOUT)
        return found

    async def run(self, request: AttemptRequest) -> AttemptReport:
        """Run one attempt on a fitting node; never raises except on cancellation."""
        try:
            await self.start()
        except ConfigError as exc:
            return _down(request, str(exc))
        budget = request.timeout + _gates_time(request) + MARGIN
        try:
            async with asyncio.timeout(budget):
                return await self._run(request)
        except TimeoutError:
            return _report(
                request, Outcome.CRASHED, f"the remote attempt did not end within {budget:.0f}s"
            )
        finally:
            self._running.pop(request.attempt.id, None)

    # -- one attempt ---------------------------------------------------------------------------

    async def _run(self, request: AttemptRequest) -> AttemptReport:
        try:
            node = await self._place(request)  # counted in the node's load from here
        except _Unreachable as exc:
            return _down(request, str(exc))
        try:
            return await self._run_on(request, node)
        finally:
            self._load[node.node_id] -= 1

    async def _run_on(self, request: AttemptRequest, node: Node) -> AttemptReport:
        ws = request.workspace
        if ws is None:
            return _report(request, Outcome.CRASHED, "the ray executor needs a git workspace")
        attempt = request.attempt
        try:
            base = await ws.rev_parse(f"refs/heads/{request.goal.branch}")
            upstream = await self._upstream(request, node.node_id)
            data = await self._bundle(request, node.node_id, base, upstream)
        except (RunError, OSError) as exc:
            return _report(request, Outcome.CRASHED, f"{type(exc).__name__}: {exc}")
        except (RemoteFault, DriverLost, TimeoutError) as exc:
            return await self._fault(request, node, exc)
        job = job_for(request, attempt, base, upstream)
        self._running[attempt.id] = node.node_id
        resources = demand(request.backend.name, request.labels)
        driver = self._driver
        assert driver is not None
        started = False
        result: remote.Result | None = None
        fell_back = ""
        try:
            async with contextlib.aclosing(
                driver.attempt(node.node_id, resources, job, data)
            ) as stream:
                async for kind, value in stream:
                    if not started:  # the node fetched the bundle: it holds the base now
                        started = True
                        if kind not in ("error", "no-fetch"):
                            held = [base, *([upstream.sha] if upstream else [])]
                            self._known.add(node.node_id, request.project.id, held)
                    if kind == "event":
                        request.emit(value)
                    elif kind == "usage":
                        if request.meter is not None:
                            request.meter.add(value)
                    elif kind == "result":
                        result = value
                    elif kind == "no-fetch":  # nothing ran: again at once, bundles only
                        self._no_fetch.add((node.node_id, request.project.id))
                        self._known.forget_node(node.node_id)
                        fell_back = str(value)
                        break
                    elif kind == "error":  # what it holds is in doubt: ask it again next time
                        self._known.forget_node(node.node_id)
                        return _report(request, Outcome.CRASHED, f"on node {_short(node)}: {value}")
        except (RemoteFault, DriverLost) as exc:
            return await self._fault(request, node, exc)
        if fell_back:
            _tell(
                request,
                EventKind.ATTEMPT_PLACED,
                f"placed on node {_short(node)} again, with the full history: {fell_back}",
                {"node": node.node_id, "address": node.address, "no_fetch": fell_back},
            )
            return await self._run_on(request, node)
        if result is None:
            return _report(request, Outcome.CRASHED, f"node {_short(node)} returned no result")
        try:
            return await self.accept(request, result, node.node_id)
        except StaleResult as exc:  # the worker answered for another attempt: a machinery bug
            return _report(request, Outcome.CRASHED, str(exc))

    async def accept(
        self, request: AttemptRequest, result: remote.Result, node_id: str = ""
    ) -> AttemptReport:
        """Land a worker's result for ``request``'s attempt: refused (StaleResult) unless it is
        the attempt this executor is waiting for; its commit fetched, checked, integrated."""
        from blitz.conductor.landing import land

        made = result.report
        waited = request.attempt.id
        if made.attempt.id != waited or self._running.get(waited) is None:
            raise StaleResult(
                f"refused a result for attempt {made.attempt.id}: "
                f"not an attempt this executor is waiting for (waiting for {waited})"
            )
        if made.outcome is not Outcome.SUCCEEDED and not _kept(request, made):
            if request.selection is not None:
                request.selection.withdraw(waited, made.error)
            return AttemptReport(
                outcome=made.outcome,
                attempt=request.attempt.evolve(**_fields(made)),
                error=made.error,
                messages=made.messages,
                retry_after=made.retry_after,
            )
        ws = request.workspace
        assert ws is not None
        commit = made.attempt.commit
        if commit:
            if result.bundle is None:
                return _report(request, Outcome.CRASHED, f"attempt {waited}: commit without bundle")
            ref = f"{REMOTE_REFS}/{request.goal.id}/{request.task.id}/{waited}"
            try:
                async with ws.lock():
                    fetched = await sync.fetch(ws.git, result.bundle, remote.out_ref(waited), ref)
                await _check(ws, request, fetched, made.attempt.base_sha)
            except (RunError, OSError) as exc:
                return _report(request, Outcome.CRASHED, f"{type(exc).__name__}: {exc}")
        return await land(request, made)

    # -- placement -----------------------------------------------------------------------------

    async def _place(self, request: AttemptRequest) -> Node:
        """A node that can take the attempt now, waiting (with the reason) until there is one."""
        backend, labels, project = request.backend.name, request.labels, request.project.id
        told = ""
        while True:
            try:
                listed, free = await self._state()
            except (RemoteFault, DriverLost, TimeoutError) as exc:
                why = str(exc) or f"no answer within {STATE_TIMEOUT:g}s"
                raise _Unreachable(
                    f"the Ray cluster at {self.address} cannot be reached: {why}"
                ) from exc
            nodes = placement.worker_nodes(listed, free, self._dead)
            node = placement.choose(
                nodes,
                backend,
                labels,
                load=self._load,
                holds=lambda n: self._known.has_project(n, project),
            )
            if node is not None:
                self._load[node.node_id] = self._load.get(node.node_id, 0) + 1
                self.placed.append((request.attempt.id, node.node_id))
                _tell(
                    request,
                    EventKind.ATTEMPT_PLACED,
                    f"placed on node {_short(node)} ({node.address})",
                    {"node": node.node_id, "address": node.address},
                )
                return node
            reason = why_not(nodes, backend, labels) or placement.BUSY
            if reason != told:
                told = reason
                _tell(request, EventKind.ATTEMPT_WAITING, f"waiting: {reason}", {"reason": reason})
            await asyncio.sleep(self.poll)

    # -- sync ----------------------------------------------------------------------------------

    async def _upstream(self, request: AttemptRequest, node_id: str) -> sync.Upstream | None:
        """Where the node fetches the project's base branch from, when the project says so
        (``[executor] sync = "fetch"``) and the node has not failed to; None: bundles only."""
        ws = request.workspace
        remote = request.fetch_remote
        if not remote or ws is None or (node_id, request.project.id) in self._no_fetch:
            return None
        return await sync.upstream(ws.git, remote, request.goal.base_branch)

    async def _bundle(
        self, request: AttemptRequest, node_id: str, base: str, upstream: Any = None
    ) -> bytes | None:
        """What the node lacks of the goal branch up to ``base``, as a bundle (None: nothing);
        without what it fetches from ``upstream`` (a :class:`~.sync.Upstream`) first."""
        ws = request.workspace
        assert ws is not None
        project = request.project.id
        if not self._known.asked(node_id, project):
            await self._flights.once(
                "held", (node_id, project), lambda: self._ask(ws, node_id, project)
            )
        held = self._known.held(node_id, project) | ({upstream.sha} if upstream else set())
        ref = f"refs/heads/{request.goal.branch}"
        # Known only once the node confirms it fetched it (its first report, see _run): an attempt
        # sent meanwhile to the same node gets a bundle of its own rather than one whose
        # prerequisites are still on their way (the same bytes, made once: a wave of attempts
        # on nodes holding the same commits shares one bundle).
        data = await self._flights.once(
            "bundle",
            (project, ref, base, frozenset(held)),
            lambda: sync.bundle(ws.git, ref, base, held),
            keep=True,
        )
        if data is not None and len(data) > KEPT_BUNDLE:
            self._flights.forget("bundle")  # a first sync's history is not held on to
        return data

    async def _ask(self, ws: Any, node_id: str, project: str) -> None:
        """Ask the node once which of the project's commits it holds (those the daemon has)."""
        assert self._driver is not None
        shas = await self._driver.call("held", node_id, project, timeout=STATE_TIMEOUT)
        self._known.add(node_id, project, await sync.present(ws.git, shas))
        self._known.add(node_id, project, [])  # asked, even when it holds nothing

    async def _reachable(self) -> bool:
        """Whether the cluster still answers: its driver runs, and the cluster's head tells it the
        nodes within :data:`~blitz.executors.ray.reach.PROBE_TIMEOUT` seconds."""
        if self._driver is None or not self._driver.alive:
            return False
        try:
            await self._driver.call("state", timeout=reach.PROBE_TIMEOUT)
        except (RemoteFault, DriverLost, TimeoutError):
            return False
        return True

    async def _state(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
        """Ray's node list and each node's available resources, from the driver."""
        driver = self._driver
        if driver is None:
            raise DriverLost("the executor is not started")
        state: tuple[list[dict[str, Any]], dict[str, dict[str, float]]] = await driver.call(
            "state", timeout=STATE_TIMEOUT
        )
        return state

    async def _fault(self, request: AttemptRequest, node: Node, exc: Exception) -> AttemptReport:
        """A failure of Ray under an attempt: the cluster is gone (the driver ended, Ray says so,
        or its head no longer answers: unavailable, executor down; the task is not to blame), or
        the node died (crashed; never chosen again)."""
        gone = isinstance(exc, DriverLost) or getattr(exc, "kind", "") == "cluster"
        if gone or not await self._reachable():
            return _down(request, f"the Ray cluster at {self.address} went away: {exc}")
        if isinstance(exc, TimeoutError):
            exc = TimeoutError(f"no answer within {STATE_TIMEOUT:g}s")
        what = str(exc) or type(exc).__name__
        self._dead.add(node.node_id)
        self._known.forget_node(node.node_id)
        return _report(
            request,
            Outcome.CRASHED,
            f"node {_short(node)} ({node.address}) failed under the attempt: {what}",
        )


class _Unreachable(Exception):
    pass


async def _check(ws: Any, request: AttemptRequest, sha: str, base: str) -> None:
    """The fetched commit is this attempt's: on the base sent, for this goal and task."""
    parent = await ws.git.rev_parse(f"{sha}^")
    if parent != base:
        raise StaleResult(f"commit {sha[:10]} is not on the base {base[:10]} this attempt got")
    goal_id, task_id = await trailers.of_commit(ws.git, sha)
    if (goal_id, task_id) != (request.goal.id, request.task.id):
        raise StaleResult(
            f"commit {sha[:10]} is for task {task_id} of goal {goal_id}, "
            f"not {request.task.id} of {request.goal.id}"
        )


def _gates_time(request: AttemptRequest) -> float:
    """How long the attempt's gates may take, twice (before and after a rebase)."""
    gates = request.project.gates
    return 2 * gates.timeout * (len(gates.configured()) + len(request.task.checks))


_KEPT = ("summary", "usage", "diff", "diff_stat", "gates", "base_sha", "worktree", "error")


def _fields(made: AttemptReport) -> dict[str, object]:
    a = made.attempt
    return {
        "state": a.state,
        "finished_at": a.finished_at or time.time(),
        **{k: getattr(a, k) for k in _KEPT},
    }


def _kept(request: AttemptRequest, made: AttemptReport) -> bool:
    """A best-of-N candidate that failed its gates on its node with a commit: landed (kept as a
    ref, offered as failed, never integrated) as a local candidate is."""
    failed = made.outcome is Outcome.FAILED and bool(made.attempt.commit)
    return failed and request.selection is not None


def _report(request: AttemptRequest, outcome: Outcome, error: str) -> AttemptReport:
    state = AttemptState.CRASHED if outcome is not Outcome.FAILED else AttemptState.FAILED
    if request.selection is not None:
        request.selection.withdraw(request.attempt.id, error)
    final = request.attempt.evolve(state=state, error=error, finished_at=request.now())
    return AttemptReport(outcome=outcome, attempt=final, error=error)


def _down(request: AttemptRequest, error: str) -> AttemptReport:
    if request.selection is not None:
        request.selection.withdraw(request.attempt.id, error)
    final = request.attempt.evolve(
        state=AttemptState.CRASHED, error=error, finished_at=request.now()
    )
    return AttemptReport(
        outcome=Outcome.UNAVAILABLE, attempt=final, error=error, executor_down=True
    )


def _short(node: Node) -> str:
    return node.node_id[:12]


def _tell(request: AttemptRequest, kind: EventKind, message: str, data: dict[str, Any]) -> None:
    request.emit(
        Event(
            kind=kind,
            goal_id=request.goal.id,
            task_id=request.task.id,
            attempt_id=request.attempt.id,
            message=message,
            data=data,
        )
    )
