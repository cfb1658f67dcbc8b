"""The daemon: one engine that never runs out of work, its API, and a gentle shutdown.

The engine (keep-alive), the event hub and uvicorn share one asyncio loop and one store with the
CLI. On start, and then every half a lease, the daemon takes over every unfinished goal nobody
drives (its lease expired or was released, or its process is gone: see
:mod:`blitz.store.leases`); on SIGTERM or SIGINT it refuses new work, gives running attempts a
grace period, stops the engine (the goals stay resumable: interrupted attempts are re-queued on
the next start), closes the event streams and returns 0. One daemon serves a data directory:
:func:`hold_home` refuses a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from blitz.app import App
from blitz.conductor import publishing
from blitz.conductor.ownership import GoalTaken
from blitz.domain import GOAL_DONE, Goal
from blitz.errors import UserError
from blitz.integrations.mcp.endpoint import McpEndpoint
from blitz.integrations.notify.notifier import Notifier
from blitz.runner import runner_id
from blitz.server.app import create_app
from blitz.server.auth import TokenStore
from blitz.server.events import EventHub
from blitz.server.metrics import Metrics
from blitz.server.problems import Problem
from blitz.server.stacks import Handler, print_stacks_on
from blitz.server.workers import WorkerWatch
from blitz.store.leases import orphaned

if TYPE_CHECKING:
    from blitz.integrations.slack.bridge import SlackBridge
    from blitz.integrations.slack.settings import SlackSettings

log = logging.getLogger("blitz.server")

STREAM_CLOSE_TIMEOUT = 5
"""Seconds uvicorn waits for open connections once the event streams were told to end."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon decides how to stop (uvicorn's would
    re-raise the signal after shutdown and end the process with it instead of exit code 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Daemon:
    """An engine and its API over one :class:`App`; the routes' :class:`~blitz.server.host.Host`."""

    def __init__(
        self,
        app: App,
        *,
        tokens: TokenStore,
        grace: float = 30.0,
        cors_origins: Iterable[str] = (),
        ping: float = 15.0,
        poll: float = 0.05,
        slack: SlackSettings | None = None,
    ) -> None:
        """``grace``: seconds running attempts get at shutdown; ``ping``: seconds between
        keep-alive comments on event streams; ``poll``: seconds between looks at the event log
        for new events; ``slack``: Slack's tokens (no bridge unless it is enabled)."""
        self.app = app
        self.store = app.store
        self.engine = app.engine(keep_alive=True)
        self.tokens = tokens
        self.grace = grace
        self.cors_origins = tuple(cors_origins)
        self.ping = ping
        self.hub = EventHub(app.store, interval=poll)
        self.metrics = Metrics(app.store, clients=lambda: self.hub.clients)
        self.hub.observers.append(self.metrics.observe)
        self.notifier = Notifier(
            app.store,
            app.settings.notify,
            project_config=lambda p: cfg.notify if (cfg := app.config_for(p)) else None,
            environ=os.environ,  # the variables [notify] names: URLs, keys, passwords
        )
        self.hub.observers.append(self.notifier.observe)
        self.draining = False
        self.workers = WorkerWatch(app)
        self.api = create_app(self)
        self.slack: SlackBridge | None = None
        if slack is not None and slack.enabled:
            from blitz.integrations.slack.bridge import SlackBridge  # slack-bolt: only when used

            self.slack = SlackBridge(self, slack)
            self.slack.mount(self.api)
        self.mcp = McpEndpoint(self)  # /mcp: the MCP server, behind the same token
        self.mcp.mount(self.api)
        self._engine_task: asyncio.Task[object] | None = None
        self._taking_over: asyncio.Task[None] | None = None
        self._stop_requested: asyncio.Event | None = None
        self._cannot_resume: dict[str, str] = {}  # goal id -> why, said once (tried every turn)

    def check_open(self) -> None:
        """Raise the 503 problem once shutdown began (no new work is taken)."""
        if self.draining:
            raise Problem(
                503,
                "the daemon is shutting down; send this again once it is back",
                headers={"Retry-After": "5"},
            )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> list[Goal]:
        """Take over the unfinished goals nobody drives, start the engine and the event hub;
        return the goals taken over. A cluster the executor cannot reach stops it here, before
        anything else starts (a ConfigError naming the cluster's address)."""
        await self.app.start_executor()
        self.workers.start()
        await self.hub.start()
        if self.slack is not None:
            await self.slack.start()
        await self.mcp.start()
        await self.notifier.start()
        loop = asyncio.get_running_loop()
        # The engine runs first: it renews the leases of the goals taken over while more are.
        self._engine_task = loop.create_task(self.engine.run())
        resumed = await self.take_over()
        self._taking_over = loop.create_task(self._take_over_from_now_on())
        return resumed

    async def take_over(self) -> list[Goal]:
        """Claim and resume every unfinished goal nobody drives; return them."""
        ownership = self.engine.ownership
        taken = []
        for goal in await asyncio.to_thread(self.store.list_goals):
            # A goal this store holds is this engine's: driven, or ended but not flushed yet.
            # One this engine ended with publishing pending is left for `blitz publish`.
            done = goal.state in GOAL_DONE and not publishing.pending(goal)
            held = goal.id in self.store.held() or goal.id in self.engine.finished
            if done or held or self.draining:
                continue
            lease = await asyncio.to_thread(self.store.lease, goal.id)
            if goal.id in self.engine.runs:  # started while the lease was read: its lease is
                continue  # this process's, which `orphaned` does not tell from a dead one's
            if not orphaned(goal, lease, owner=ownership.owner, ttl=ownership.ttl):
                continue
            try:
                await self.engine.resume(goal)  # a claim: it fails if another process won
            except GoalTaken:
                continue
            except UserError as exc:
                if self._cannot_resume.get(goal.id) != str(exc):
                    log.warning("cannot resume goal %s: %s", goal.id, exc)
                self._cannot_resume[goal.id] = str(exc)
                continue
            self._cannot_resume.pop(goal.id, None)
            taken.append(goal)
        return taken

    async def _take_over_from_now_on(self) -> None:
        """Take over, every half a lease, the goals whose process stopped meanwhile."""
        while not self.draining:
            await asyncio.sleep(self.engine.ownership.ttl / 2)
            try:
                for goal in await self.take_over():
                    log.warning("took over goal %s (%s): nobody drove it", goal.id, goal.title)
            except Exception:  # the store may be briefly unreachable: try at the next turn
                log.exception("looking for goals to take over failed")

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new work, let running attempts finish within ``grace`` seconds (the rest are
        interrupted and re-queued for the next start), stop the engine, end the streams."""
        self.draining = True
        if self._taking_over is not None:
            self._taking_over.cancel()
        task = self._engine_task
        if task is not None and not task.done():
            await self.engine.drain(self.grace if grace is None else grace)
            try:
                async with asyncio.timeout(30):
                    await asyncio.shield(task)
            except TimeoutError:
                log.error("the engine did not stop after draining; stopping it now")
                self.engine.stop()
                await asyncio.wait([task], timeout=10)
        if self.slack is not None:
            await self.slack.stop()
        await self.notifier.stop()
        await self.hub.close()
        await self.mcp.stop()
        await self.workers.stop()
        await self.store.flush()

    def request_stop(self) -> None:
        """Begin the shutdown (a signal handler)."""
        if self._stop_requested is None:
            return
        if self._stop_requested.is_set():
            log.warning("already stopping: running attempts get the rest of the grace period")
        self._stop_requested.set()

    async def serve(
        self,
        sock: socket.socket,
        *,
        ready: Callable[[list[Goal]], None] | None = None,
        signals: bool = True,
    ) -> int:
        """Run the engine and the API on ``sock`` until SIGTERM/SIGINT (``signals``) or
        :meth:`request_stop`; return the exit code. ``ready`` is called with the resumed goals
        once requests are served."""
        self._stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled = []
        replaced: dict[int, Handler] = {}
        if signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
                handled.append(sig)
            # `kill -USR1` prints every thread's stack to stderr: what a daemon that will not
            # stop is waiting for.
            replaced[signal.SIGUSR1] = print_stacks_on(signal.SIGUSR1)
        code = 0
        try:
            resumed = await self.start()
            config = uvicorn.Config(
                self.api,
                lifespan="off",
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=STREAM_CLOSE_TIMEOUT,
            )
            server = _Server(config)
            serving = loop.create_task(server.serve(sockets=[sock]))
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            if server.started and ready is not None:
                ready(resumed)
            stop = loop.create_task(self._stop_requested.wait())
            engine = self._engine_task
            assert engine is not None
            await asyncio.wait({stop, serving, engine}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if engine.done() and (exc := _failure(engine)) is not None:
                log.error("the engine failed: %r", exc, exc_info=exc)
                code = 1
            if serving.done() and (exc := _failure(serving)) is not None:
                log.error("the HTTP server failed: %r", exc, exc_info=exc)
                code = 1
            await self.stop()
            server.should_exit = True
            await asyncio.wait([serving], timeout=STREAM_CLOSE_TIMEOUT + 5)
            if not serving.done():
                server.force_exit = True
                await asyncio.wait([serving], timeout=5)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            for signum, handler in replaced.items():
                signal.signal(signum, handler)
            await self.app.aclose()
        return code


def _failure(task: asyncio.Task[object]) -> BaseException | None:
    if task.cancelled():
        return None
    return task.exception()


_HELD_HOMES: dict[Path, int] = {}  # data directory -> the descriptor holding its lock


def hold_home(home: Path) -> None:
    """Make this process the daemon of the data directory ``home`` until it exits (an flock on
    ``home/daemon.lock``, which names it); a UserError naming the holder if a daemon has it."""
    path = home / "daemon.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 256).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(
            f"another blitz daemon ({holder}) serves this data directory ({home}); stop it "
            "first, or give this one a data directory of its own (BLITZ_HOME)"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {runner_id()}\n".encode())
    _HELD_HOMES[home] = fd


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); a UserError if taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
