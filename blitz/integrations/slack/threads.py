"""Keeps the thread of every goal started from Slack up to date.

The daemon's event hub shows the keeper every event as it is written; the keeper notes which
goals changed and, one goal at a time, brings their threads to what the store says now: the plan
once there is one (its buttons gone once it is decided), one progress message edited in place,
and the end with a reaction on the message that started the goal. Because it always posts what
the store says *now*, a burst of events costs one edit, and a daemon that restarts catches every
open thread up on :meth:`ThreadKeeper.start`, the end included.
"""

from __future__ import annotations

import asyncio
import logging

from blitz import background, goal_summary
from blitz.domain import GOAL_DONE
from blitz.events import Event
from blitz.integrations.slack import messages
from blitz.integrations.slack.delivery import Delivery
from blitz.store.base import Store
from blitz.store.slack import SlackThread

log = logging.getLogger("blitz.slack")


class ThreadKeeper:
    """Follows the goals that have a Slack thread; ``interval``: seconds between two rounds of
    updates (Slack allows about one edit a second per channel)."""

    def __init__(self, store: Store, delivery: Delivery, *, interval: float = 1.0) -> None:
        self.store = store
        self.delivery = delivery
        self.interval = interval
        self._changed: asyncio.Queue[str] = asyncio.Queue()
        self._shown: dict[str, tuple[str, str]] = {}  # goal id -> (plan, progress) texts posted
        self._task: asyncio.Task[None] | None = None

    def observe(self, event: Event) -> None:
        """An event hub observer: quick, never raises."""
        if event.goal_id:
            self._changed.put_nowait(event.goal_id)

    def changed(self, goal_id: str) -> None:
        self._changed.put_nowait(goal_id)

    async def start(self) -> None:
        """Catch up every open thread, then follow the events."""
        for thread in await asyncio.to_thread(self.store.slack.open_threads):
            self.changed(thread.goal_id)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await background.stop(task)

    async def follow(self, thread: SlackThread) -> None:
        """Keep ``thread`` up to date from now on (stored first: it survives a restart)."""
        await asyncio.to_thread(self.store.slack.put_thread, thread)
        self.changed(thread.goal_id)

    async def reopen(self, goal_id: str) -> None:
        """The goal runs again (a task retried or skipped after it ended): follow it again."""
        thread = await asyncio.to_thread(self.store.slack.thread_of_goal, goal_id)
        if thread is not None and thread.ended:
            await asyncio.to_thread(self.store.slack.put_thread, thread.evolve(ended=False))
        self.changed(goal_id)

    async def _run(self) -> None:
        while True:
            goals = {await self._changed.get()}
            while not self._changed.empty():
                goals.add(self._changed.get_nowait())
            for goal_id in goals:
                try:
                    await self.refresh(goal_id)
                except Exception:  # one thread's trouble never stops the others
                    log.exception("updating the Slack thread of goal %s failed", goal_id)
            await asyncio.sleep(self.interval)

    async def refresh(self, goal_id: str) -> None:
        """Bring the goal's thread to what the store says now."""
        if self.delivery.paused:
            return
        thread = await asyncio.to_thread(self.store.slack.thread_of_goal, goal_id)
        if thread is None or thread.ended:
            return
        goal = await asyncio.to_thread(self.store.get_goal, goal_id)
        if goal is None:
            return
        tasks = await asyncio.to_thread(self.store.load_tasks, goal_id)
        usage = await asyncio.to_thread(self.store.usage, goal_id) + goal.usage
        before = thread
        plan_shown, progress_shown = self._shown.get(goal_id, ("", ""))
        if tasks:
            plan = messages.plan(goal, tasks)
            if not thread.plan_ts:
                ts = await self.delivery.post(thread.channel, plan, thread_ts=thread.thread_ts)
                if ts is not None:
                    thread, plan_shown = thread.evolve(plan_ts=ts), plan.text
            elif plan.text != plan_shown and await self.delivery.update(
                thread.channel, thread.plan_ts, plan
            ):
                plan_shown = plan.text
        if goal.state in GOAL_DONE:
            thread = await self._end(thread, goal_id)
        else:
            text = messages.working(goal, tasks, usage)
            if not thread.progress_ts:
                ts = await self.delivery.post(thread.channel, text, thread_ts=thread.thread_ts)
                if ts is not None:
                    thread, progress_shown = thread.evolve(progress_ts=ts), text.text
            elif text.text != progress_shown and await self.delivery.update(
                thread.channel, thread.progress_ts, text
            ):
                progress_shown = text.text
        self._shown[goal_id] = (plan_shown, progress_shown)
        if thread != before:
            await asyncio.to_thread(self.store.slack.put_thread, thread)

    async def _end(self, thread: SlackThread, goal_id: str) -> SlackThread:
        """Post the end (re-read: the goal and its tasks as they ended) and react on the
        message that started the goal."""
        goal = await asyncio.to_thread(self.store.get_goal, goal_id)
        assert goal is not None
        tasks = await asyncio.to_thread(self.store.load_tasks, goal_id)
        usage = await asyncio.to_thread(self.store.usage, goal_id) + goal.usage
        if thread.progress_ts:  # the progress message shows the final count too
            await self.delivery.update(
                thread.channel, thread.progress_ts, messages.working(goal, tasks, usage)
            )
        summary = await asyncio.to_thread(goal_summary.read, self.store, goal_id)
        end = messages.ended(summary)
        if await self.delivery.post(thread.channel, end, thread_ts=thread.thread_ts) is None:
            return thread  # tried again at the next change or start
        await self.delivery.react(thread.channel, thread.thread_ts, messages.outcome_reaction(goal))
        self._shown.pop(goal_id, None)
        return thread.evolve(ended=True)
