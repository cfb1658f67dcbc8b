"""A goal in one line or one paragraph, for the places that tell a person about it in words
rather than a table: Slack's thread, notifications, MCP's answers.

Built on :mod:`blitz.progress` (the same ``done/total`` as the CLI, the API and the dashboard)
from the goal's records only, so it reads the same wherever it is made. It says how far the
goal got (tasks done, running, failed), what it cost, where its pull request is, and when a
person is needed, why and what they can do: as :class:`Step` values, which each place words in
its own terms (a Slack thread says "reply `retry b`", MCP names its tool); :func:`plain_step`
is the wording of a place that has none of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from blitz import progress
from blitz.domain import GOAL_DONE, PUBLISH_PENDING, Goal, GoalState, Project, Task, TaskState
from blitz.errors import NotFound
from blitz.events import headline
from blitz.progress import Progress
from blitz.store.base import Store

FAILED_NAMED = 3
"""Failed tasks named (with their reason and a retry / skip step each); the rest are counted."""

REASON_LIMIT = 300
"""Characters of a reason shown on its line."""


class Action(StrEnum):
    """What a person can do next, each one of :mod:`blitz.actions` (or a new goal)."""

    APPROVE = "approve"  # the plan waits for approval
    REJECT = "reject"
    RETRY = "retry"  # a failed task, another attempt
    SKIP = "skip"  # a failed task, left out
    PUBLISH = "publish"  # publishing failed: push and open the pull request again
    RESUME_PROJECT = "resume_project"  # the project is paused
    FOLLOW_UP = "follow_up"  # a new goal continuing this one's branch and pull request
    RERUN = "rerun"  # the goal again, from the start


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One thing a person can do next; ``task`` for retry and skip, ``project`` for resuming."""

    action: Action
    task: str = ""
    project: str = ""


StepWords = Callable[["GoalSummary", Step], str]
"""How a place words a step (``plain_step``, or a Slack or MCP wording)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GoalSummary:
    """A goal as a person is told about it. ``reason``: why it failed, was cancelled or waits
    (one line, ""); ``failures``: ``(task id, reason)`` of the failed tasks named; ``paused``:
    the project's pause reason while the goal is unfinished; ``publish_error``: why publishing
    is pending (a goal that succeeded, not yet pushed)."""

    goal_id: str
    title: str
    state: GoalState
    project: str
    progress: Progress
    running: tuple[str, ...]
    failed: tuple[str, ...]
    cost_usd: float
    pr_url: str
    branch: str
    follows: str = ""
    reason: str = ""
    failures: tuple[tuple[str, str], ...] = ()
    paused: str = ""
    publish_error: str = ""
    steps: tuple[Step, ...] = ()

    @property
    def ended(self) -> bool:
        return self.state in GOAL_DONE

    @property
    def pr_link(self) -> str:
        """The pull request's URL; "" when there is none, or only its description in a file
        (the goal's branch was not pushed: no remote, not on GitHub, no token)."""
        return self.pr_url if self.pr_url.startswith(("https://", "http://")) else ""

    def _pr(self) -> str:
        if self.pr_link:
            return f"pull request {self.pr_link}"
        return f"pull request description in {self.pr_url} (not pushed)" if self.pr_url else ""

    def line(self) -> str:
        """One line: ``g-1 running: 2/5 tasks done, 1 running, 1 failed; $0.42``, then the pull
        request, or why it failed or waits."""
        parts = [f"{self.progress.done}/{self.progress.total} tasks done"]
        if self.running:
            parts.append(f"{len(self.running)} running")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        text = f"{self.goal_id} {self._state()}: {', '.join(parts)}; {_usd(self.cost_usd)}"
        if self.pr_url:
            text += f"; {self._pr()}"
        why = self._why()
        return f"{text}: {why}" if why and not self.pr_url else text

    def paragraph(self, words: StepWords | None = None) -> str:
        """A few lines: the goal, how far it got and what it cost, its pull request, why it
        failed or waits, and what can be done (each step worded by ``words``)."""
        words = words or plain_step
        lines = [f"{_one_line(self.title)} ({self.goal_id}, {self.project}): {self._state()}"]
        counts = [f"{self.progress.done}/{self.progress.total} tasks done"]
        if self.running:
            counts.append(f"{len(self.running)} running ({', '.join(self.running)})")
        if self.failed:
            counts.append(f"{len(self.failed)} failed ({', '.join(self.failed)})")
        skipped = self.progress.by_state.get(TaskState.SKIPPED.value, 0)
        if skipped:
            counts.append(f"{skipped} skipped")
        lines.append(f"{', '.join(counts)}; {_usd(self.cost_usd)} spent")
        if self.follows:
            lines.append(f"A follow-up of goal {self.follows}, on branch {self.branch}")
        if self.pr_url:
            pr = self._pr()
            lines.append(pr[0].upper() + pr[1:])
        why = self._why()
        if why:
            lines.append(f"Why: {why}")
        for task, reason in self.failures:
            lines.append(f"- {task}: {reason}")
        if self.steps:
            lines.append("What to do: " + "; ".join(words(self, step) for step in self.steps))
        return "\n".join(lines)

    def _state(self) -> str:
        if self.state is GoalState.SUCCEEDED and self.publish_error:
            return "succeeded, publishing pending"
        if self.paused and not self.ended:
            return f"{self.state.value}, project paused"
        return self.state.value.replace("_", " ")

    def _why(self) -> str:
        if self.publish_error:
            return f"publishing failed: {self.publish_error}"
        if self.paused and not self.ended:
            return f"the project is paused: {self.paused}"
        return self.reason


def plain_step(summary: GoalSummary, step: Step) -> str:
    """A step in plain words, naming no command."""
    match step.action:
        case Action.APPROVE:
            return "approve the plan"
        case Action.REJECT:
            return "reject it"
        case Action.RETRY:
            return f"retry task {step.task}"
        case Action.SKIP:
            return f"skip task {step.task}"
        case Action.PUBLISH:
            return "publish it again"
        case Action.RESUME_PROJECT:
            return f"resume project {step.project}"
        case Action.FOLLOW_UP:
            return "start a follow-up goal on its branch"
        case Action.RERUN:
            return "run it again"


def summarize(
    goal: Goal,
    tasks: Sequence[Task],
    *,
    cost_usd: float,
    project: Project | None = None,
) -> GoalSummary:
    """The summary of ``goal`` from its records: its tasks, what it spent in all (attempts,
    planning and recovery) and its project (for its name and whether it is paused)."""
    found = progress.of(tasks)
    running = tuple(t.id for t in tasks if t.state is TaskState.RUNNING)
    failed = tuple(t.id for t in tasks if t.state in (TaskState.FAILED, TaskState.CRASHED))
    failures = tuple(
        (t.id, _short(headline(t.reason) or "no reason recorded"))
        for t in tasks
        if t.id in failed[:FAILED_NAMED]
    )
    name = project.name if project is not None else goal.project_id
    paused = (project.pause_reason or "by the user") if project and project.paused else ""
    pending = goal.state is GoalState.SUCCEEDED and goal.publish_state == PUBLISH_PENDING
    reason = ""
    if goal.state is GoalState.AWAITING_APPROVAL:
        reason = f"the plan ({found.total} tasks) waits for approval"
    elif goal.state in (GoalState.FAILED, GoalState.CANCELLED):
        reason = _short(headline(goal.error)) or goal.state.value
    summary = GoalSummary(
        goal_id=goal.id,
        title=goal.title,
        state=goal.state,
        project=name,
        progress=found,
        running=running,
        failed=failed,
        cost_usd=cost_usd,
        pr_url=goal.pr_url,
        branch=goal.branch,
        follows=goal.follows,
        reason=reason,
        failures=failures,
        paused=paused,
        publish_error=(_short(headline(goal.publish_error)) or "unknown error") if pending else "",
    )
    return _with_steps(summary, name)


def _with_steps(summary: GoalSummary, project: str) -> GoalSummary:
    steps: list[Step] = []
    if summary.state is GoalState.AWAITING_APPROVAL:
        steps += [Step(action=Action.APPROVE), Step(action=Action.REJECT)]
    if summary.paused and not summary.ended:
        steps.append(Step(action=Action.RESUME_PROJECT, project=project))
    if summary.publish_error:
        steps.append(Step(action=Action.PUBLISH))
    if summary.state is GoalState.FAILED:
        for task, _ in summary.failures:
            steps += [Step(action=Action.RETRY, task=task), Step(action=Action.SKIP, task=task)]
        if not summary.failures:
            steps.append(Step(action=Action.RERUN))
    if summary.state is GoalState.CANCELLED:
        steps.append(Step(action=Action.RERUN))
    committed = summary.state is GoalState.SUCCEEDED or summary.progress.done > 0
    if summary.ended and summary.state is not GoalState.CANCELLED and committed:
        steps.append(Step(action=Action.FOLLOW_UP))  # something on its branch to build on
    return replace(summary, steps=tuple(steps))


def read(store: Store, goal_id: str) -> GoalSummary:
    """The summary of the goal ``goal_id`` as the store has it now (blocking: call it in a
    worker thread from a loop); :class:`~blitz.errors.NotFound` if there is none."""
    goal = store.get_goal(goal_id)
    if goal is None:
        raise NotFound(f"no goal {goal_id!r}")
    spent = store.usage(goal.id) + goal.usage
    return summarize(
        goal,
        store.load_tasks(goal.id),
        cost_usd=spent.cost_usd,
        project=store.get_project(goal.project_id),
    )


def _short(text: str) -> str:
    text = _one_line(text)
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1].rstrip() + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usd(amount: float) -> str:
    return "< $0.01" if 0 < amount < 0.01 else f"${amount:,.2f}"
