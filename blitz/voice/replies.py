"""An intent done through :mod:`blitz.actions` (the one door the CLI, the API and Slack use,
with the daemon's engine) and the short, plain answer spoken back.

:class:`Conversation` keeps what one session talks about: the goal it last named or started
(what "approve the plan" or "how is it going" means without a name) and the goal waiting to be
confirmed. Starting a goal, cancelling one, rejecting a plan and skipping a task are read back
as a question naming what they act on; only a yes does it, a no drops it, and anything else
drops it too and is done instead. A question is answered within :data:`CONFIRM_S`, or not at
all (a yes heard much later is no answer to it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import actions, goal_summary
from blitz.clock import Clock, SystemClock
from blitz.domain import GOAL_DONE, Goal, GoalState, TaskState
from blitz.errors import NotFound, UserError
from blitz.goal_summary import GoalSummary
from blitz.voice.intent import Act, GoalName, Intent, Known, closest

if TYPE_CHECKING:
    from blitz.server.host import Host

HELP = (
    "You can say: start a goal on a project, then what to do; how is it going; approve or "
    "reject the plan; cancel the goal; retry or skip a task; pause or resume a project."
)
REASON = "by voice"
KNOWN_GOALS = 50
"""Goals (newest first) that can be named by title."""
CONFIRM_S = 60.0
"""Seconds a yes/no question waits for its answer; a yes after that does nothing."""
NOT_DONE = {  # what is read back first (it starts or undoes work), and the answer to a no
    Act.START: "Not started.",
    Act.CANCEL: "Not cancelled.",
    Act.REJECT: "Not rejected.",
    Act.SKIP: "Not skipped.",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What to answer: ``confirm`` when it is a yes/no question, ``error`` when the request was
    not understood or refused."""

    text: str
    confirm: bool = False
    error: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    """A question asked: the ``intent`` to do on a yes (its goal and task resolved when asked,
    so the yes does what the question said), and when it was asked (the clock's monotonic)."""

    intent: Intent
    asked: float


class Conversation:
    """One voice session's side of the talk with the daemon (``host``); ``clock`` times the
    questions (the app's)."""

    def __init__(self, host: Host, clock: Clock | None = None) -> None:
        self.host = host
        self.clock: Clock = clock or SystemClock()
        self.goal = ""  # the goal talked about
        self.pending: Pending | None = None  # what to do, once confirmed

    async def known(self) -> Known:
        """The projects and goals that can be named, read in a worker thread."""
        store = self.host.store

        def read() -> Known:
            goals = store.list_goals()[:KNOWN_GOALS]
            return Known(
                projects=tuple(p.name for p in store.list_projects()),
                goals=tuple(GoalName(id=g.id, title=g.title) for g in goals),
            )

        return await asyncio.to_thread(read)

    async def answer(self, intent: Intent) -> Reply:
        """Do what ``intent`` asks; the reply (a refusal is an error reply, never raised)."""
        pending, self.pending = self.pending, None
        try:
            return await self._answer(intent, pending)
        except UserError as exc:
            return Reply(text=_sentence(str(exc)), error=True)

    async def _answer(self, intent: Intent, pending: Pending | None) -> Reply:
        if pending is not None and self.clock.monotonic() - pending.asked > CONFIRM_S:
            if intent.act is Act.YES:
                return Reply(
                    text="That question expired, so nothing was done. Ask again.", error=True
                )
            pending = None
        match intent.act:
            case Act.YES:
                if pending is None:
                    return Reply(text="There is nothing to confirm.", error=True)
                return await self._do(pending.intent)
            case Act.NO:
                return Reply(text=NOT_DONE[pending.intent.act] if pending else "All right.")
            case Act.START:
                if not intent.project:
                    names = ", ".join((await self.known()).projects) or "none yet"
                    raise UserError(f"Which project? There are: {names}")
                if not intent.title:
                    raise UserError(f"What should the goal on {intent.project} do?")
                return self._ask(intent, f"Start a goal on {intent.project}: {intent.title}?")
            case Act.HELP:
                return Reply(text=HELP)
            case Act.STATUS:
                return await self._status(intent.goal)
            case Act.APPROVE:
                return await self._do(await self._deciding(intent))
            case Act.REJECT:
                decided = await self._deciding(intent)
                return self._ask(decided, f"Reject the plan of {_named(decided)}?")
            case Act.CANCEL:
                goal = await self._goal(intent.goal, lambda g: g.state not in GOAL_DONE)
                cancel = Intent(act=Act.CANCEL, goal=goal.id, title=goal.title)
                return self._ask(cancel, f"Cancel {_named(cancel)}?")
            case Act.RETRY:
                return await self._do(await self._failed_task(intent))
            case Act.SKIP:
                skip = await self._failed_task(intent)
                return self._ask(skip, f"Skip task {skip.task} of {_named(skip)}?")
            case Act.PAUSE | Act.RESUME:
                return await self._project(intent)
        heard = f" {intent.title}" if intent.title else ""
        return Reply(
            text=f"Sorry, I did not understand{heard and ':'}{heard}. Say help to hear more.",
            error=True,
        )

    def _ask(self, intent: Intent, question: str) -> Reply:
        """Read ``intent`` back as ``question``: a yes within :data:`CONFIRM_S` does it."""
        self.pending = Pending(intent=intent, asked=self.clock.monotonic())
        return Reply(text=question, confirm=True)

    async def _do(self, intent: Intent) -> Reply:
        """Do ``intent``, its goal and task resolved (confirmed, or needing no question)."""
        host = self.host
        match intent.act:
            case Act.START:
                return await self._start(intent)
            case Act.APPROVE:
                await actions.approve(host.app, host.engine, intent.goal)
                return Reply(text=f"Approved the plan of the goal {intent.title}.")
            case Act.REJECT:
                await actions.reject(host.app, host.engine, intent.goal, f"rejected {REASON}")
                return Reply(text=f"Rejected the plan of the goal {intent.title}.")
            case Act.CANCEL:
                await actions.cancel(host.app, host.engine, intent.goal, f"cancelled {REASON}")
                return Reply(text=f"Cancelling the goal {intent.title}.")
            case Act.RETRY:
                await actions.retry(host.app, host.engine, intent.goal, intent.task)
                return Reply(text=f"Retrying task {intent.task}.")
            case Act.SKIP:
                await actions.skip(host.app, host.engine, intent.goal, intent.task)
                return Reply(text=f"Skipping task {intent.task}.")
        raise AssertionError(f"nothing to do for {intent.act}")

    async def _start(self, intent: Intent) -> Reply:
        host = self.host
        if host.draining:
            return Reply(text="blitz is shutting down; ask again once it is back.", error=True)
        project = await asyncio.to_thread(actions.project_of, host.store, intent.project)
        request = actions.GoalRequest(title=intent.title)
        submitted = await actions.new_goal(host.app, host.engine, Path(project.path), request)
        self.goal = submitted.goal.id
        return Reply(text=f"Started: {submitted.goal.title}, on {project.name}.")

    async def _status(self, named: str) -> Reply:
        store = self.host.store
        key = named or self.goal
        if key:
            summary = await asyncio.to_thread(goal_summary.read, store, key)
            self.goal = summary.goal_id
            return Reply(text=spoken(summary))
        goals = await asyncio.to_thread(
            lambda: [g for g in store.list_goals() if g.state not in GOAL_DONE]
        )
        if not goals:
            return Reply(text="No goal is running.")
        summaries = [await asyncio.to_thread(goal_summary.read, store, g.id) for g in goals[:3]]
        more = f" And {len(goals) - 3} more." if len(goals) > 3 else ""
        count = "One goal is" if len(goals) == 1 else f"{len(goals)} goals are"
        return Reply(text=f"{count} under way. " + " ".join(map(spoken, summaries)) + more)

    async def _deciding(self, intent: Intent) -> Intent:
        """``intent`` (approve or reject) with the goal whose plan waits for it."""
        goal = await self._goal(intent.goal, lambda g: g.state is GoalState.AWAITING_APPROVAL)
        return Intent(act=intent.act, goal=goal.id, title=goal.title)

    async def _failed_task(self, intent: Intent) -> Intent:
        """``intent`` (retry or skip) with its goal and the task meant: the one named, else
        the only failed one."""
        store = self.host.store
        goal = await self._goal(intent.goal, lambda g: g.state is GoalState.FAILED)
        tasks = await asyncio.to_thread(store.load_tasks, goal.id)
        failed = tuple(t.id for t in tasks if t.state in (TaskState.FAILED, TaskState.CRASHED))
        task = closest(intent.task, tuple(t.id for t in tasks), 0.6) if intent.task else ""
        if not task and len(failed) == 1:
            task = failed[0]
        if not task:
            which = ", ".join(failed) or "none"
            raise UserError(f"Which task? The failed ones are: {which}.")
        return Intent(act=intent.act, goal=goal.id, task=task, title=goal.title)

    async def _project(self, intent: Intent) -> Reply:
        host = self.host
        name = intent.project
        if not name:
            names = (await self.known()).projects
            if len(names) != 1:
                raise UserError("Which project? Say its name.")
            name = names[0]
        if intent.act is Act.PAUSE:
            project = await actions.pause(host.app, host.engine, name, f"paused {REASON}")
            return Reply(text=f"Paused {project.name}.")
        project = await actions.resume(host.app, host.engine, name)
        return Reply(text=f"Resumed {project.name}.")

    async def _goal(self, named: str, fits: Callable[[Goal], bool]) -> Goal:
        """The goal meant: the one named, else the one talked about, else the only one that
        ``fits`` (waits for approval, failed, unfinished...)."""
        store = self.host.store
        key = named or self.goal
        if key:
            goal = await asyncio.to_thread(actions.goal_of, store, key)
        else:
            candidates = await asyncio.to_thread(lambda: [g for g in store.list_goals() if fits(g)])
            if not candidates:
                raise NotFound("There is no goal for that.")
            if len(candidates) > 1:
                titles = "; ".join(_name(g) for g in candidates[:3])
                raise UserError(f"Which goal? {titles}.")
            goal = candidates[0]
        self.goal = goal.id
        return goal


def spoken(summary: GoalSummary) -> str:
    """A goal's state in one short spoken sentence."""
    p = summary.progress
    state = (
        "finished"
        if summary.state is GoalState.SUCCEEDED
        else summary.state.value.replace("_", " ")
    )
    text = f"{summary.title}, on {summary.project}: {state}, {p.done} of {p.total} tasks done"
    if summary.running:
        text += f", {len(summary.running)} running"
    if summary.failed:
        text += f", {len(summary.failed)} failed"
    reason = summary.reason or summary.paused
    return f"{text}. {_sentence(reason)}" if reason else f"{text}."


def _name(goal: Goal) -> str:
    return f"the goal {goal.title}"


def _named(intent: Intent) -> str:
    """The goal ``intent`` acts on, by id and title (a question says exactly which)."""
    return f"goal {intent.goal}, {intent.title}"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."
