"""The worker side of the Ray executor: what runs in a Ray worker process on a blitz worker node.

Its data directory is ``$BLITZ_WORKER_HOME``
(:data:`~blitz.executors.ray.resources.WORKER_HOME_ENV`, set by ``blitz worker`` in the
environment the node's Ray processes inherit; else
``~/.local/share/blitz-worker``). There it keeps one cache repository per project
(``repos/<project id>``, bare), a repository per running attempt borrowing its objects
(``attempts/<attempt id>``, removed when it ends), the attempts' worktrees (``worktrees/``) and
locks.

:func:`attempt_stream` is the body of the one Ray task an attempt is: it fetches the bundle the
daemon sent into the cache repository (the goal branch up to the attempt's base), builds the
backend by name and model from THIS node's environment (its own keys: nothing secret ever comes
from the daemon), the validator from the project's gate specs (data), and runs the work part of
:func:`blitz.conductor.attempt.run_attempt` (worktree, agent, guard, gates, commit) without
integrating. It yields, as they happen, ``("event", Event)``, ``("usage", Usage)`` and finally
``("result", Result)``: the attempt's report and its commit as a bundle of ``base..commit``.

Cancellation: Ray's non-force cancel raises KeyboardInterrupt in the task's thread; the attempt's
coroutine (on its own event loop in a thread) is then cancelled and waited for, so its agent's and
gates' process groups are killed (:mod:`blitz.proctree`, through :mod:`blitz.process`) before the
task ends.

The worker judges gates against its own baseline of the daemon's base commit, kept on the node
(:mod:`~blitz.executors.ray.baselines`), runs the project's environment set-up from its spec
(data) with its own package cache, and confines agents and gates as the daemon does
(:func:`policy`): the project's ``[sandbox]`` mode and network, with this node's own paths hidden
(its data directory: other projects' caches, other attempts) and a model proxy of the worker's
own, in front of its own keys, for agent CLIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blitz import tempdirs
from blitz.config import AgentConfig, CodexConfig
from blitz.domain import Attempt, Baseline, Goal, Project, Task, Usage
from blitz.events import Event
from blitz.executors.base import AttemptReport, AttemptRequest, Meter
from blitz.executors.ray import sync
from blitz.executors.ray.resources import WORKER_HOME_ENV
from blitz.sandbox import Policy

if TYPE_CHECKING:
    from blitz.proxy import ModelProxy

CANCEL_GRACE = 20.0
"""Seconds a cancelled attempt has to kill its processes and clean up before the task ends."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """What one remote attempt is given: records and data only, never a key."""

    project: Project
    goal: Goal
    task: Task
    attempt: Attempt
    base: str  # the goal branch head the attempt starts from
    backend: str
    model: str = ""
    labels: tuple[str, ...] = ()
    baseline: Baseline | None = None
    timeout: float = 1800.0
    budget_usd: float | None = None
    scenario: Any = None  # the scripted backend's scenario (a test fake's script: data)
    setup: Any = None  # the project's environment set-up spec (blitz.envsetup.SetupSpec)
    sandbox: tuple[str, bool] = ("required", False)  # the project's [sandbox] mode and network
    upstream: sync.Upstream | None = None  # fetch the base branch from here before the bundle
    candidate: bool = False  # a best-of-N candidate: its commit comes back whatever its gates say
    codex: CodexConfig | None = None  # the project's [codex] settings, but for its binary (a path
    # of the daemon's machine): the node runs its own CLI
    agent: AgentConfig | None = None  # the project's [agent] settings (the embedded agent's)


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What came back: the report, and the commit as a bundle of ``base..commit`` (None when
    there is no commit)."""

    report: AttemptReport
    bundle: bytes | None = None
    node: str = ""
    events: int = 0
    usage: Usage = field(default_factory=Usage)
    baseline: Baseline | None = None  # what the attempt's gates were judged against (this node's)


def home() -> Path:
    """This node's blitz data directory."""
    configured = os.environ.get(WORKER_HOME_ENV, "")
    if configured:
        return Path(configured)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "blitz-worker"


def out_ref(attempt_id: str) -> str:
    """Where the worker keeps an attempt's commit for its bundle."""
    return f"refs/blitz/out/{attempt_id}"


def cache_ref(branch: str) -> str:
    """The goal branch in a node's cache repository."""
    return f"refs/heads/{branch}"


async def held_commits(project_id: str) -> list[str]:
    """What this node's cache repository of a project holds (the heads of its refs)."""
    from blitz.git import Git

    repo = home() / "repos" / project_id
    if not (repo / "HEAD").exists():
        return []
    return await sync.heads(Git(repo))


def held(project_id: str) -> list[str]:
    """:func:`held_commits`, for a Ray task."""
    return asyncio.run(held_commits(project_id))


class _StreamMeter(Meter):
    """Counts spending and streams each model call's usage to the daemon as it happens."""

    __slots__ = ("_put",)

    def __init__(self, put: Any) -> None:
        super().__init__()
        self._put = put

    def add(self, usage: Usage) -> None:
        super().add(usage)
        self._put(("usage", usage))


async def _repo(project_id: str) -> Path:
    """The project's cache repository on this node (made bare on first use). Attempts of one
    node run in several worker processes: a repository is made beside it and renamed into
    place, so two first attempts at once never ``git init`` the same directory (git then
    fails copying its hooks: "File exists")."""
    from blitz.git import run_git

    repo = home() / "repos" / project_id
    if (repo / "HEAD").exists():
        return repo
    repo.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{project_id}-", dir=repo.parent))
    try:
        await run_git(fresh, "init", "-q", "--bare", ".", timeout=60)
        with contextlib.suppress(OSError):  # another attempt's rename came first
            os.rename(fresh, repo)  # onto nothing or an empty directory
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return repo


def policy(job: Job, cache: Path, socket: Path | None) -> Policy:
    """How the job's agent and gates are confined on this node: the project's mode and network,
    this node's data directory hidden but for the objects the attempt's repository borrows
    (read-only), the worker's model proxy at ``socket``."""
    mode, network = job.sandbox
    return Policy(
        mode=mode,
        network=network,
        hidden=(home(),),
        readable=(cache / "objects",),
        proxy_socket=socket,
    )


def _backend(job: Job, jail: Policy, proxy: ModelProxy | None) -> Any:
    """The job's backend, made from this node's own environment (its keys, its agent CLIs: those
    of its blitz home's tools directory, as ``blitz worker`` checked, else on its PATH), confined
    by ``jail``; agent CLIs reach their models through ``proxy``."""
    from blitz.backends.options import BackendOptions, agent_options
    from blitz.backends.registry import create_backend
    from blitz.backends.sandboxed import confine
    from blitz.settings import Settings

    scenario = None
    if job.backend == "scripted" and job.scenario is not None:
        from blitz.testing.scripted import Scenario

        scenario = job.scenario if isinstance(job.scenario, Scenario) else None
    settings = Settings(home=home() / "blitz")
    options = BackendOptions(
        env=settings.provider_env(),
        providers=settings.provider_config(),  # the embedded agent calls the provider itself
        scenario=scenario,
        model=job.model,
        codex=job.codex,
        tools_dir=Settings().tools,  # where `blitz worker` found this node's agent CLIs
        sandbox=jail,
        proxy=proxy,
        **agent_options(job.agent),
    )
    return confine(job.backend, create_backend(job.backend, options), jail)


def _proxy() -> ModelProxy:
    """A model proxy of this node's own, in front of the providers its settings (its keys) name:
    one per attempt, on the attempt's event loop (started by the first agent CLI that needs it)."""
    from blitz import confinement
    from blitz.breaker import BreakerBoard
    from blitz.clock import SystemClock
    from blitz.llm.usage import PriceTable
    from blitz.settings import Settings

    settings = Settings(home=home() / "blitz")
    return confinement.model_proxy(settings, PriceTable(), BreakerBoard(SystemClock()))


async def work(job: Job, data: bytes | None, put: Any) -> Result:
    """Run the work part of the job's attempt on this node; its result with the commit's
    bundle."""
    import ray

    from blitz.executors.ray import slots
    from blitz.workspace import Workspace

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    cache = await _repo(job.project.id)
    root = home()
    shared = Workspace(cache, worktrees_root=root / "worktrees", lock_dir=root / "locks")
    branch = cache_ref(job.goal.branch)
    async with shared.lock():  # attempts of one project on this node fetch one at a time
        if job.upstream is not None:
            await sync.fetch_upstream(shared.git, job.upstream)
        # Attempts sent at once to a node that lacked the base each bring a bundle: the first
        # one fetched makes the others' needless.
        if data is not None and not await sync.present(shared.git, [job.base]):
            await sync.fetch(shared.git, data, branch, branch)
        else:
            await sync.set_ref(shared.git, branch, job.base)
    purpose = f"attempt {job.attempt.id} of task {job.task.id}, goal {job.goal.id}"
    async with slots.slot(root, cache, job.project.id, purpose) as own:
        ws = Workspace(own, worktrees_root=root / "worktrees", lock_dir=root / "locks")
        await sync.set_ref(ws.git, branch, job.base)
        return await _run(job, ws, root, put, node, cache)


async def _run(job: Job, ws: Any, root: Path, put: Any, node: str, cache: Path) -> Result:
    """The work part of the attempt in its own repository (its warm worktree), confined; the
    commit bundled."""
    with tempdirs.temporary("blitz-proxy-") as sockets:
        proxy = _proxy()
        jail = policy(job, cache, sockets / "proxy.sock")
        try:
            return await _confined(job, ws, root, put, node, jail, proxy)
        finally:
            await proxy.stop()


async def _confined(
    job: Job, ws: Any, root: Path, put: Any, node: str, jail: Policy, proxy: ModelProxy
) -> Result:
    from blitz.conductor.attempt import run_attempt
    from blitz.executors.ray.baselines import FileGateCache, own_baseline
    from blitz.gatecache import GateFlights
    from blitz.pool import WorktreePool
    from blitz.validation import Validator

    meter = _StreamMeter(put)
    emitted = [0]

    def emit(event: Event) -> None:
        emitted[0] += 1
        put(("event", event))

    setup = None
    if job.setup is not None:
        from blitz.envsetup import EnvSetup, cache_dir

        setup = EnvSetup(spec=job.setup, policy=jail, cache=cache_dir(root, job.project.id))
    pool = WorktreePool(ws, size=1, keep=tuple(job.setup.keep) if job.setup else ())
    validator = Validator(
        job.project.gates,
        project_id=job.project.id,
        sandbox=jail,
        cache=FileGateCache(root / "gates"),
        flights=GateFlights(lock_dir=root / "locks"),
    )
    baseline = await own_baseline(
        job.baseline,
        goal_id=job.goal.id,
        repo=ws.repo,
        validator=validator,
        pool=pool,
        setup=setup,
    )
    request = AttemptRequest(
        setup=setup,
        project=job.project,
        goal=job.goal,
        task=job.task,
        attempt=job.attempt,
        backend=_backend(job, jail, proxy),
        workspace=ws,
        pool=pool,
        validator=validator,
        baseline=baseline,
        timeout=job.timeout,
        budget_usd=job.budget_usd,
        model=job.model,
        labels=job.labels,
        meter=meter,
        emit=emit,
    )
    report = await run_attempt(request, base=job.base, integrate=False, candidate=job.candidate)
    commit = report.attempt.commit
    bundle = None
    if commit:
        ref = out_ref(job.attempt.id)
        await sync.set_ref(ws.git, ref, commit)
        bundle = await sync.bundle(ws.git, ref, commit, [job.base])
    return Result(
        report=report,
        bundle=bundle,
        node=node,
        events=emitted[0],
        usage=meter.usage,
        baseline=baseline,
    )


_END = object()


def attempt_stream(job: Job, data: bytes | None) -> Iterator[tuple[str, Any]]:
    """The Ray task's generator: the attempt on its own event loop in a thread, its events,
    usage and result yielded as they come. A cancel (KeyboardInterrupt) cancels the attempt and
    waits for it to clean up before re-raising."""
    items: queue.Queue[Any] = queue.Queue()
    loop = asyncio.new_event_loop()
    box: dict[str, asyncio.Task[Any]] = {}
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            box["task"] = task
            ready.set()
            try:
                items.put(("result", await work(job, data, items.put)))
            except sync.FetchFailed as exc:  # the daemon sends it again with a full bundle
                items.put(("no-fetch", str(exc)))
            except BaseException as exc:  # cancelled, or a bug: the daemon is told
                items.put(("error", f"{type(exc).__name__}: {exc}"))
            finally:
                items.put(_END)

        try:
            loop.run_until_complete(run())
        finally:
            loop.close()

    thread = threading.Thread(target=main, name=f"blitz-attempt-{job.attempt.id}", daemon=True)
    thread.start()
    try:
        ready.wait(30)
        while True:
            try:
                item = items.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _END:
                break
            yield item
    except BaseException:
        task = box.get("task")
        if task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        thread.join(CANCEL_GRACE)
        raise
    thread.join(CANCEL_GRACE)
