"""What a notification says: a one-line title, a short text for people (Slack, email) and a JSON
payload for machines (the webhook), built from the notification and the goal it is about.

What a notification says of its goal is :mod:`blitz.goal_summary`'s paragraph (how far it got,
its cost, its pull request, why it failed or waits), its steps worded as the commands that take
them; the JSON counts come from :mod:`blitz.progress`. Everything leaves through
:meth:`Message.text` and :meth:`Message.payload`, both redacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blitz import goal_summary, progress
from blitz.events import headline
from blitz.goal_summary import Action, GoalSummary, Step
from blitz.redact import redact, redact_data
from blitz.store.base import Store
from blitz.store.outbox import Notification

TEST_KIND = "notify.test"

_TITLES = {
    "goal.succeeded": "✅ Goal {goal} succeeded",
    "goal.failed": "❌ Goal {goal} failed",
    "plan.awaiting_approval": "⏸ Goal {goal} waits for its plan to be approved",
    "budget.exceeded": "💸 Budget exceeded",
    "project.paused": "⏸ Project {project} paused",
    "breaker.opened": "⚠ A circuit breaker opened",
}
_WHAT_TO_DO = {
    "goal.failed": "See why: blitz status {goal_id}",
    "plan.awaiting_approval": "Approve it: blitz approve {goal_id} (or in the dashboard)",
    "budget.exceeded": "Raise [budget] in blitz.toml if the work is worth more",
    "project.paused": "Once fixed: blitz projects resume {project}",
    "breaker.opened": "Its tasks wait until it closes; nothing is lost",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One notification as sinks send it. ``key``: its idempotency key."""

    key: str
    kind: str
    title: str
    lines: tuple[str, ...] = ()
    ts: float = 0.0
    project: Mapping[str, Any] | None = None
    goal: Mapping[str, Any] | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The title and what follows, for people."""
        return redact("\n".join((self.title, *self.lines)))

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body."""
        body = {
            "id": self.key,
            "idempotency_key": self.key,
            "event": self.kind,
            "test": self.kind == TEST_KIND,
            "title": self.title,
            "text": "\n".join(self.lines),
            "ts": self.ts,
            "project": dict(self.project) if self.project is not None else None,
            "goal": dict(self.goal) if self.goal is not None else None,
            "data": dict(self.data),
        }
        return dict(redact_data(body))


def compose(notification: Notification, store: Store) -> Message:
    """The message of ``notification``, with the goal and project it is about as they are now."""
    n = notification
    project = store.get_project(n.project_id) if n.project_id else None
    goal = store.get_goal(n.goal_id) if n.goal_id else None
    if goal is not None and project is None:
        project = store.get_project(goal.project_id)
    goal_out: dict[str, Any] | None = None
    lines: list[str] = []
    if goal is not None:
        done = progress.of(store.load_tasks(goal.id))
        cost = (store.usage(goal.id) + goal.usage).cost_usd
        goal_out = {
            "id": goal.id,
            "title": goal.title,
            "state": goal.state.value,
            "branch": goal.branch,
            "pr_url": goal.pr_url,
            "tasks": {"done": done.done, "total": done.total, "by_state": dict(done.by_state)},
            "cost_usd": round(cost, 4),
            "error": goal.error,
        }
        lines.extend(goal_summary.read(store, goal.id).paragraph(command_step).splitlines())
    said = headline(n.message)
    if said and not any(said in line for line in lines):  # the summary may say it already
        lines.append(said)
    names = {
        "goal": n.goal_id,
        "goal_id": n.goal_id,
        "project": project.name if project is not None else n.project_id,
    }
    if n.kind in _WHAT_TO_DO and goal is None:  # a goal's paragraph says what to do
        lines.append(_WHAT_TO_DO[n.kind].format(**names))
    title = _TITLES.get(n.kind, n.kind).format(**names)
    if project is not None and "{project}" not in _TITLES.get(n.kind, ""):
        title += f" ({project.name})"
    return Message(
        key=n.key,
        kind=n.kind,
        title=title,
        lines=tuple(lines),
        ts=n.ts,
        project={"id": project.id, "name": project.name} if project is not None else None,
        goal=goal_out,
        data=n.data,
    )


def command_step(summary: GoalSummary, step: Step) -> str:
    """A step as the command that takes it, or the dashboard's button where the command line
    has none."""
    goal = summary.goal_id
    match step.action:
        case Action.APPROVE:
            return f"approve the plan: blitz approve {goal}"
        case Action.REJECT:
            return "reject it in the dashboard"
        case Action.RETRY:
            return f"retry task {step.task} in the dashboard"
        case Action.SKIP:
            return f"skip task {step.task} in the dashboard"
        case Action.PUBLISH:
            return f"publish it again: blitz publish {goal}"
        case Action.RESUME_PROJECT:
            return f"resume the project: blitz projects resume {step.project}"
        case Action.FOLLOW_UP:
            return f'continue it: blitz run --follows {goal} "..."'
        case Action.RERUN:
            return "run it again (the dashboard's Run again)"
    return goal_summary.plain_step(summary, step)


def trial_message(key: str, sink: str, ts: float) -> Message:
    """What ``blitz notify test`` sends to ``sink``."""
    return Message(
        key=key,
        kind=TEST_KIND,
        title="🔔 blitz test notification",
        lines=(f"Sent by `blitz notify test` to {sink}: this sink works.",),
        ts=ts,
    )
