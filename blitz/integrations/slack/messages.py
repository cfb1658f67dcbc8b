"""What blitz says in a goal's thread: the plan (with Approve / Reject buttons while it waits),
one progress line edited in place, and the end. The progress line is built on
:mod:`blitz.progress`, the one definition of a goal's progress; the status and the end are
:mod:`blitz.goal_summary`'s paragraph, its steps worded as the thread's commands.

Each function returns a :class:`Text`: the plain text (what notifications and screen readers
show) and, where there is more to show, Block Kit blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from blitz import progress
from blitz.domain import GOAL_DONE, Goal, GoalState, Task, TaskState, Usage
from blitz.goal_summary import Action, GoalSummary, Step, plain_step
from blitz.integrations.slack.commands import HELP
from blitz.redact import redact

APPROVE, REJECT = "blitz_approve", "blitz_reject"
"""The action ids of the plan's buttons (their value is the goal id)."""

PLAN_SHOWN = 20
"""Tasks of a plan listed in its reply; the rest are counted."""

SECTION_MAX = 2900
"""Characters of a Block Kit section's text (Slack refuses more than 3000)."""


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    blocks: Sequence[dict[str, Any]] = field(default_factory=tuple)


def escape(text: str) -> str:
    """``text`` as Slack shows it literally: its control characters ``&``, ``<`` and ``>``
    escaped (a goal or task title written by a person or a model is not markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plan(goal: Goal, tasks: Sequence[Task]) -> Text:
    """The plan; with the buttons while it awaits approval, and who decided once it does not."""
    listed = [t for t in tasks if t.origin == "plan"] or list(tasks)
    lines = [f"{n}. `{t.id}` {escape(t.title)}" for n, t in enumerate(listed[:PLAN_SHOWN], 1)]
    if len(listed) > PLAN_SHOWN:
        lines.append(f"... and {len(listed) - PLAN_SHOWN} more")
    head = f"*Plan* ({len(listed)} task{'s' if len(listed) != 1 else ''})"
    waiting = goal.state is GoalState.AWAITING_APPROVAL
    if waiting:
        head += ": waits for approval"
    elif goal.state is GoalState.CANCELLED and not any(t.attempts for t in tasks):
        head += ": not run"
    body = redact(head + "\n" + "\n".join(lines))[:SECTION_MAX]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]
    if waiting:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"plan-{goal.id}",
                "elements": [
                    _button("Approve", APPROVE, goal.id, "primary"),
                    _button("Reject", REJECT, goal.id, "danger"),
                ],
            }
        )
    return Text(body, blocks)


def _button(label: str, action_id: str, value: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
        "style": style,
    }


def line(goal: Goal, tasks: Sequence[Task], usage: Usage) -> str:
    """``2/3 tasks done · 1 running · 0 failed · $0.12``."""
    p = progress.of(tasks)
    running = p.by_state.get(TaskState.RUNNING.value, 0)
    failed = p.by_state.get(TaskState.FAILED.value, 0) + p.by_state.get(TaskState.CRASHED.value, 0)
    cost = f"${usage.cost_usd:.2f}"
    return f"{p.done}/{p.total} tasks done · {running} running · {failed} failed · {cost}"


def working(goal: Goal, tasks: Sequence[Task], usage: Usage) -> Text:
    """The progress message, edited in place while the goal runs."""
    state = {
        GoalState.PLANNING: "Planning",
        GoalState.AWAITING_APPROVAL: "Waiting for approval",
        GoalState.RUNNING: "Working",
        GoalState.FINISHING: "Opening the pull request",
    }.get(goal.state, goal.state.value.capitalize())
    if goal.state in GOAL_DONE:
        return Text(f"{goal.state.value.capitalize()}: {line(goal, tasks, usage)}")
    said = line(goal, tasks, usage) if tasks else f"goal `{goal.id}`"
    return Text(f":gear: {state}: {said}\n_Reply here: {HELP}._")


def status(summary: GoalSummary) -> Text:
    """The answer to ``status``: the goal's paragraph (:mod:`blitz.goal_summary`)."""
    return Text(redact(f"*Status*: {escape(summary.paragraph(slack_step))}"))


def ended(summary: GoalSummary) -> Text:
    """The end: the pull request and a summary, or what went wrong and what to do."""
    head = {
        GoalState.SUCCEEDED: ":white_check_mark: Done",
        GoalState.CANCELLED: ":no_entry_sign: Cancelled",
    }.get(summary.state, ":x: Failed")
    if summary.pr_link:
        head += f": <{summary.pr_link}|pull request>"
    return Text(redact(f"{head}\n{escape(summary.paragraph(slack_step))}"))


def slack_step(summary: GoalSummary, step: Step) -> str:
    """What to do next, in the thread's terms (its commands and buttons)."""
    match step.action:
        case Action.APPROVE:
            return "click Approve (or reply `approve`)"
        case Action.REJECT:
            return "click Reject"
        case Action.RETRY:
            return f"reply `retry {step.task}`"
        case Action.SKIP:
            return f"reply `skip {step.task}`"
        case Action.PUBLISH:
            return f"run `blitz publish {summary.goal_id}`"
        case Action.RESUME_PROJECT:
            return f"run `blitz projects resume {step.project}`"
        case Action.FOLLOW_UP:
            return "reply with what to change next (a follow-up goal)"
        case Action.RERUN:
            return "mention me with the goal again"
    return plain_step(summary, step)


def outcome_reaction(goal: Goal) -> str:
    """The reaction put on the message that started the goal once it ended."""
    return "white_check_mark" if goal.state is GoalState.SUCCEEDED else "x"
