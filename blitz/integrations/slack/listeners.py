"""What blitz does with what Slack sends: a mention or a message in a mapped channel starts a
goal, a reply in a goal's thread steers it (or continues it), a click on the plan's buttons
approves or rejects it. Everything goes through :mod:`blitz.actions`.

Bolt acknowledges each event before its listener runs (within Slack's 3 s), so the listener's
first call, the 👀 reaction, follows the acknowledgement at once. Slack delivers a message that
mentions the bot twice (``app_mention`` and ``message``) and retries what it thinks was missed:
every delivery is taken once by its event id, and every message once by its channel and ts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from blitz import actions, goal_summary
from blitz.domain import Goal
from blitz.errors import UserError
from blitz.integrations.slack import messages
from blitz.integrations.slack.channels import project_for
from blitz.integrations.slack.commands import Command, Verb, parse, words
from blitz.integrations.slack.delivery import Delivery
from blitz.integrations.slack.settings import SlackSettings
from blitz.integrations.slack.threads import ThreadKeeper
from blitz.redact import redact
from blitz.store.slack import SlackThread

if TYPE_CHECKING:
    from blitz.server.host import Host

log = logging.getLogger("blitz.slack")

IGNORED_SUBTYPES = frozenset({"bot_message", "message_changed", "message_deleted", "channel_join"})


class Listeners:
    """The bolt listeners of one daemon."""

    def __init__(
        self, host: Host, settings: SlackSettings, delivery: Delivery, keeper: ThreadKeeper
    ) -> None:
        self.host = host
        self.users = settings.users
        self.channels = settings.channels
        self.delivery = delivery
        self.keeper = keeper

    def register(self, bolt: AsyncApp) -> None:
        bolt.event("app_mention")(self.on_mention)
        bolt.event("message")(self.on_message)
        bolt.action(messages.APPROVE)(self.on_approve)
        bolt.action(messages.REJECT)(self.on_reject)

    # -- events -----------------------------------------------------------------------------

    async def on_mention(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        await self._take(body, event, mentioned=True)

    async def on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("subtype") in IGNORED_SUBTYPES or event.get("bot_id"):
            return
        await self._take(body, event, mentioned=False)

    async def _take(self, body: dict[str, Any], event: dict[str, Any], *, mentioned: bool) -> None:
        store = self.host.store
        event_id = str(body.get("event_id", ""))
        if event_id and not await asyncio.to_thread(store.slack.first_time, f"event:{event_id}"):
            return  # Slack retried a delivery already taken
        channel, user = str(event.get("channel", "")), str(event.get("user", ""))
        ts, thread_ts = str(event.get("ts", "")), str(event.get("thread_ts", ""))
        if not channel or not ts or not user:
            return
        if thread_ts and thread_ts != ts:
            threads = await asyncio.to_thread(store.slack.threads_at, channel, thread_ts)
            if threads and await self._first(channel, ts):
                await self._reply(threads[-1], channel, user, ts, str(event.get("text", "")))
            elif mentioned and not threads and await self._first(channel, ts):
                await self.delivery.post(
                    channel,
                    messages.Text(
                        "This thread is not a goal's: mention me in the channel to start one."
                    ),
                    thread_ts=thread_ts,
                )
            return
        project = await asyncio.to_thread(project_for, store, channel)
        if not mentioned and (project is None or (self.channels and channel not in self.channels)):
            return  # a message in a channel blitz does not work in
        if not await self._first(channel, ts):
            return
        refusal = self._refusal(channel, user)
        if project is None:
            refusal = refusal or (
                "This channel has no project: `blitz slack map CHANNEL PROJECT` maps it "
                f"(this channel is `{channel}`)."
            )
        if refusal:
            await self.delivery.post(channel, messages.Text(refusal), thread_ts=ts)
            return
        assert project is not None
        await self.delivery.react(channel, ts, "eyes")
        await self._start(channel, user, ts, project.path, words(str(event.get("text", ""))))

    async def _first(self, channel: str, ts: str) -> bool:
        return await asyncio.to_thread(self.host.store.slack.first_time, f"message:{channel}:{ts}")

    def _refusal(self, channel: str, user: str) -> str:
        if self.channels and channel not in self.channels:
            return "I don't take goals in this channel (it is not in BLITZ_SLACK_ALLOWED_CHANNELS)."
        if self.users and user not in self.users:
            return f"<@{user}>, you are not allowed to start or steer goals here."
        if self.host.draining:
            return "blitz is shutting down; send this again once it is back."
        return ""

    async def _start(
        self, channel: str, user: str, ts: str, repo: str, title: str, *, follows: str = ""
    ) -> Goal | None:
        request = actions.GoalRequest(title=title, follows=follows)
        try:
            submitted = await actions.new_goal(self.host.app, self.host.engine, Path(repo), request)
        except UserError as exc:
            await self.delivery.post(
                channel, messages.Text(redact(f":x: Not started: {exc}")), thread_ts=ts
            )
            return None
        thread = SlackThread(
            goal_id=submitted.goal.id,
            channel=channel,
            thread_ts=ts,
            user=user,
            created_at=time.time(),
        )
        await self.keeper.follow(thread)
        return submitted.goal

    # -- thread replies ---------------------------------------------------------------------

    async def _reply(
        self, thread: SlackThread, channel: str, user: str, ts: str, text: str
    ) -> None:
        refusal = self._refusal(channel, user)
        if refusal:
            await self.delivery.post(channel, messages.Text(refusal), thread_ts=thread.thread_ts)
            return
        command = parse(text)
        try:
            said = await self._steer(thread, user, ts, command)
        except UserError as exc:
            said = f":warning: {exc}"
        if said:
            await self.delivery.post(
                channel, messages.Text(redact(said)), thread_ts=thread.thread_ts
            )

    async def _steer(self, thread: SlackThread, user: str, ts: str, command: Command) -> str:
        """Do what ``command`` asks of the thread's goal; what to answer ("" for nothing)."""
        app, engine, store = self.host.app, self.host.engine, self.host.store
        goal = actions.goal_of(store, thread.goal_id)
        if command.verb is Verb.STATUS:
            summary = await asyncio.to_thread(goal_summary.read, store, goal.id)
            return messages.status(summary).text
        if command.verb is Verb.UNCLEAR:
            return command.text
        if command.verb is Verb.CANCEL:
            await actions.cancel(app, engine, goal.id, f"cancelled in Slack by {user}")
            return f"Cancelling goal `{goal.id}`."
        if command.verb is Verb.APPROVE:
            await actions.approve(app, engine, goal.id)
            self.keeper.changed(goal.id)
            return f"Approved by <@{user}>."
        if command.verb in (Verb.RETRY, Verb.SKIP):
            act = actions.retry if command.verb is Verb.RETRY else actions.skip
            await act(app, engine, goal.id, command.task)
            await self.keeper.reopen(goal.id)
            done = "Retrying" if command.verb is Verb.RETRY else "Skipping"
            return f"{done} `{command.task}`."
        return await self._follow_up(thread, goal, user, ts, command.text)

    async def _follow_up(
        self, thread: SlackThread, goal: Goal, user: str, ts: str, text: str
    ) -> str:
        """A follow-up goal continuing ``goal`` on its branch and pull request, in this thread."""
        project = actions.project_of(self.host.store, goal.project_id)
        await self.delivery.react(thread.channel, ts, "eyes")
        started = await self._start(
            thread.channel, user, thread.thread_ts, project.path, text, follows=goal.id
        )
        return f"Follow-up goal `{started.id}` continues `{goal.id}`." if started else ""

    # -- the plan's buttons -----------------------------------------------------------------

    async def on_approve(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await self._decide(body, action, approve=True)

    async def on_reject(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await self._decide(body, action, approve=False)

    async def _decide(self, body: dict[str, Any], action: dict[str, Any], *, approve: bool) -> None:
        user = str(body.get("user", {}).get("id", ""))
        channel = str(body.get("channel", {}).get("id", ""))
        goal_id = str(action.get("value", ""))
        thread = await asyncio.to_thread(self.host.store.slack.thread_of_goal, goal_id)
        if thread is None:
            return
        refusal = self._refusal(channel, user)
        if refusal:
            await self.delivery.whisper(channel, user, refusal, thread_ts=thread.thread_ts)
            return
        app, engine = self.host.app, self.host.engine
        try:
            if approve:
                await actions.approve(app, engine, goal_id)
                said = f"Approved by <@{user}>."
            else:
                await actions.reject(app, engine, goal_id, f"rejected in Slack by {user}")
                said = f"Rejected by <@{user}>."
        except UserError as exc:
            said = f":warning: {exc}"
        self.keeper.changed(goal_id)
        await self.delivery.post(channel, messages.Text(redact(said)), thread_ts=thread.thread_ts)
