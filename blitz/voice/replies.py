"""An intent done through :mod:`blitz.actions` (the one door the CLI, the API and Slack use,
with the daemon's engine) and the short, plain answer spoken back.

:class:`Conversation` keeps what one session talks about: the goal it last named or started
(what "approve the plan" or "how is it going" means without a name) and the goal waiting to be
confirmed. Starting a goal is read back as a question; only a yes starts it, a no drops it, and
anything else drops it too and is done instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import actions, goal_summary
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What to answer: ``confirm`` when it is a yes/no question, ``error`` when the request was
    not understood or refused."""

    text: str
    confirm: bool = False
    error: bool = False


class Conversation:
    """One voice session's side of the talk with the daemon (``host``)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.goal = ""  # the goal talked about
        self.pending: Intent | None = None  # a goal to start, once confirmed

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

    async def _answer(self, intent: Intent, pending: Intent | None) -> Reply:
        match intent.act:
            case Act.YES:
                if pending is None:
                    return Reply(text="There is nothing to confirm.", error=True)
                return await self._start(pending)
            case Act.NO:
                return Reply(text="Not started." if pending else "All right.")
            case Act.START:
                if not intent.project:
                    names = ", ".join((await self.known()).projects) or "none yet"
                    raise UserError(f"Which project? There are: {names}")
                if not intent.title:
                    raise UserError(f"What should the goal on {intent.project} do?")
                self.pending = intent
                return Reply(
                    text=f"Start a goal on {intent.project}: {intent.title}?", confirm=True
                )
            case Act.HELP:
                return Reply(text=HELP)
            case Act.STATUS:
                return await self._status(intent.goal)
            case Act.APPROVE | Act.REJECT:
                return await self._decide(intent)
            case Act.CANCEL:
                goal = await self._goal(intent.goal, lambda g: g.state not in GOAL_DONE)
                await actions.cancel(
                    self.host.app, self.host.engine, goal.id, f"cancelled {REASON}"
                )
                return Reply(text=f"Cancelling {_name(goal)}.")
            case Act.RETRY | Act.SKIP:
                return await self._task(intent)
            case Act.PAUSE | Act.RESUME:
                return await self._project(intent)
        heard = f" {intent.title}" if intent.title else ""
        return Reply(
            text=f"Sorry, I did not understand{heard and ':'}{heard}. Say help to hear more.",
            error=True,
        )

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

    async def _decide(self, intent: Intent) -> Reply:
        goal = await self._goal(intent.goal, lambda g: g.state is GoalState.AWAITING_APPROVAL)
        host = self.host
        if intent.act is Act.APPROVE:
            await actions.approve(host.app, host.engine, goal.id)
            return Reply(text=f"Approved the plan of {_name(goal)}.")
        await actions.reject(host.app, host.engine, goal.id, f"rejected {REASON}")
        return Reply(text=f"Rejected the plan of {_name(goal)}.")

    async def _task(self, intent: Intent) -> Reply:
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
        act = actions.retry if intent.act is Act.RETRY else actions.skip
        await act(self.host.app, self.host.engine, goal.id, task)
        return Reply(text=f"{'Retrying' if intent.act is Act.RETRY else 'Skipping'} task {task}.")

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


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."
