"""The daemon's notifier: empties the store's notification outbox into the sinks, at least once.

It wakes when the daemon's event hub sees a notifiable event (:meth:`Notifier.observe`), when a
retry is due, and at least every ``idle`` seconds (notifications written by other processes
sharing the store). Each notification is *expanded* once into a delivery per sink that wants it
(the daemon's ``[notify]`` and its project's); each delivery is sent until a sink takes it,
with exponential backoff, and given up on after ``max_attempts`` tries (or at once when the
failure is one no retry can fix). A sink given up on is reported: a log line and a
``notify.failed`` event, and its state in ``blitz notify status``. Everything it needs is in
the store, so a daemon killed with deliveries pending sends them when it starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from blitz import background
from blitz.domain import Project
from blitz.events import NOTIFIABLE, Event, EventKind
from blitz.integrations.notify.message import Message, compose
from blitz.integrations.notify.sinks import TIMEOUT, DeliveryFailed, Sink, Unusable, sinks_of
from blitz.notify_config import NotifyConfig
from blitz.settings import DaemonNotify
from blitz.store.outbox import Delivery, Notification
from blitz.store.sql import SqlStore

log = logging.getLogger("blitz.notify")

HOLD = TIMEOUT + 10
"""Seconds a delivery being sent is held from other senders (and from a retry after a crash)."""

ProjectConfig = Callable[[Project], NotifyConfig | None]
"""A project's ``[notify]`` (None: its blitz.toml cannot be read)."""


class Notifier:
    """Delivers the outbox of ``store`` to the sinks of ``settings`` (the daemon's) and of each
    project's ``[notify]`` (``project_config``), their secrets read from ``environ``."""

    def __init__(
        self,
        store: SqlStore,
        settings: DaemonNotify,
        *,
        project_config: ProjectConfig,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.time,
        idle: float = 60.0,
    ) -> None:
        self.store = store
        self.settings = settings
        self._project_config = project_config
        self._environ = dict(environ)
        self._clock = clock
        self.idle = idle
        self._daemon_sinks = sinks_of(
            settings, "daemon", self._environ, slack_api_url=settings.slack_api_url
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """An event hub's observer: a notifiable event wakes the notifier."""
        if event.kind in NOTIFIABLE:
            self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop (a delivery in flight is cancelled; it is sent again by the next start)."""
        task, self._task = self._task, None
        await background.stop(task)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.step()
                due = await asyncio.to_thread(self.store.outbox.next_due)
            except Exception:  # the store may be briefly unreachable: the next turn tries again
                log.exception("notifications: a round of deliveries failed; trying again")
                due = None
            wait = self.idle if due is None else min(self.idle, max(0.0, due - self._clock()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    # -- one round ------------------------------------------------------------------------------

    async def step(self) -> None:
        """Expand the new notifications and send every delivery that is due."""
        outbox = self.store.outbox
        stale = 0
        for notification in await asyncio.to_thread(outbox.unexpanded):
            now = self._clock()
            if now - notification.ts > self.settings.max_age:
                stale += 1
                names: list[str] = []  # written while no daemon ran, too long ago to matter
            else:
                sinks = await asyncio.to_thread(self._sinks_for, notification)
                names = [sink.name for sink in sinks]
            await asyncio.to_thread(outbox.expand, notification.id, names, now)
        if stale:
            log.warning(
                "notifications: %d written more than %.0fs ago (while no daemon ran) not sent",
                stale,
                self.settings.max_age,
            )
        due = await asyncio.to_thread(outbox.take_due, self._clock(), HOLD)
        if due:
            await asyncio.gather(*(self._deliver(d, n) for d, n in due))

    async def _deliver(self, delivery: Delivery, notification: Notification) -> None:
        outbox = self.store.outbox
        try:
            sink = await asyncio.to_thread(self._sink, delivery.sink)
            message = await asyncio.to_thread(compose, notification, self.store)
            await send(sink, message)
        except DeliveryFailed as exc:
            await self._failed(
                delivery, notification, str(exc), exc.retryable, asked=exc.retry_after
            )
            return
        except Exception as exc:  # a bug or a store error: retried, and said
            log.exception("notification %s to %s failed", notification.key, delivery.sink)
            await self._failed(delivery, notification, f"{type(exc).__name__}: {exc}", True)
            return
        await asyncio.to_thread(outbox.delivered, delivery, self._clock())

    async def _failed(
        self,
        delivery: Delivery,
        notification: Notification,
        error: str,
        retryable: bool,
        *,
        asked: float = 0.0,
    ) -> None:
        """Retry ``delivery`` later (not before the ``asked`` seconds a receiver's Retry-After
        said), or give it up."""
        outbox = self.store.outbox
        attempts = delivery.attempts + 1
        if retryable and attempts < self.settings.max_attempts:
            wait = min(self.settings.backoff * 2 ** (attempts - 1), self.settings.backoff_max)
            wait = max(wait, min(asked, self.settings.max_age))
            log.warning(
                "notification %s (%s) to %s failed (attempt %d of %d), retried in %.0fs: %s",
                notification.kind,
                notification.key,
                delivery.sink,
                attempts,
                self.settings.max_attempts,
                wait,
                error,
            )
            await asyncio.to_thread(outbox.retry, delivery, error, self._clock() + wait)
            return
        why = f"after {attempts} attempts" if retryable else "(retrying cannot help)"
        said = (
            f"notifications to {delivery.sink} fail: gave up on {notification.kind} "
            f"{notification.goal_id or notification.project_id} {why}: {error}"
        )
        log.error("%s", said)
        await asyncio.to_thread(outbox.give_up, delivery, error)
        failed = Event(
            kind=EventKind.NOTIFY_FAILED,
            goal_id=notification.goal_id,
            project_id=notification.project_id,
            message=said,
            data={
                "sink": delivery.sink,
                "notification": notification.key,
                "event": notification.kind,
                "attempts": attempts,
                "error": error,
            },
        )
        self.store.write(events=[failed])

    # -- which sinks ----------------------------------------------------------------------------

    def sinks(self, project: Project | None) -> list[Sink]:
        """The daemon's sinks and, with ``project``, the project's."""
        found = list(self._daemon_sinks)
        if project is not None:
            config = self._project_config(project)
            if config is not None:
                found += self._project_sinks(project, config)
        return found

    def _project_sinks(self, project: Project, config: NotifyConfig) -> list[Sink]:
        return sinks_of(
            config,
            f"project:{project.name}",
            self._environ,
            slack_api_url=self.settings.slack_api_url,
        )

    def _sinks_for(self, notification: Notification) -> list[Sink]:
        """The sinks that want ``notification``."""
        kind = notification.kind
        found = list(self._daemon_sinks) if kind in self.settings.events else []
        project = self._project_of(notification)
        if project is not None:
            config = self._project_config(project)
            if config is None:
                log.warning(
                    "notifications: the blitz.toml of project %s cannot be read; only the "
                    "daemon's sinks hear of %s",
                    project.name,
                    kind,
                )
            elif kind in config.events:
                found += self._project_sinks(project, config)
        return found

    def _project_of(self, notification: Notification) -> Project | None:
        if notification.project_id:
            return self.store.get_project(notification.project_id)
        goal = self.store.get_goal(notification.goal_id) if notification.goal_id else None
        return self.store.get_project(goal.project_id) if goal is not None else None

    def _sink(self, name: str) -> Sink:
        """The sink called ``name`` as configured now."""
        scope, _, _kind = name.rpartition(":")
        candidates: list[Sink] = []
        if scope == "daemon":
            candidates = self._daemon_sinks
        elif scope.startswith("project:"):
            project = self.store.get_project(scope.removeprefix("project:"))
            config = self._project_config(project) if project is not None else None
            if project is not None and config is not None:
                candidates = self._project_sinks(project, config)
        for sink in candidates:
            if sink.name == name:
                return sink
        return Unusable(name, f"{name} is no longer configured")


async def send(sink: Sink, message: Message) -> None:
    """Send ``message`` through ``sink``: the one way out of blitz for a notification (each
    sink sends only :meth:`Message.text` or :meth:`Message.payload`, both redacted)."""
    await sink.send(message)
