"""What blitz says in a goal's thread: the plan (with Approve / Reject buttons while it waits),
one progress line edited in place, and the end. Built on :mod:`blitz.progress`, the one
definition of a goal's progress (D's ``blitz.goal_summary`` is to take this over at merge).

Each function returns a :class:`Text`: the plain text (what notifications and screen readers
show) and, where there is more to show, Block Kit blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from blitz import progress
from blitz.domain import GOAL_DONE, Goal, GoalState, Task, TaskState, Usage
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


def plan(goal: Goal, tasks: Sequence[Task]) -> Text:
    """The plan; with the buttons while it awaits approval, and who decided once it does not."""
    listed = [t for t in tasks if t.origin == "plan"] or list(tasks)
    lines = [f"{n}. `{t.id}` {t.title}" for n, t in enumerate(listed[:PLAN_SHOWN], 1)]
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


def status(goal: Goal, tasks: Sequence[Task], usage: Usage) -> Text:
    """The answer to ``status``: the state, the progress, the tasks not done."""
    head = f"Goal `{goal.id}` is *{goal.state.value}*"
    if tasks:
        head += f": {line(goal, tasks, usage)}"
    rest = [
        f"• `{t.id}` {t.state.value}" + (f": {t.reason}" if t.reason else "")
        for t in tasks
        if t.state not in (TaskState.SUCCEEDED, TaskState.REPLACED)
    ]
    if goal.pr_url:
        rest.append(f"Pull request: {goal.pr_url}")
    return Text(redact("\n".join([head, *rest[:PLAN_SHOWN]])))


def ended(goal: Goal, tasks: Sequence[Task], usage: Usage) -> Text:
    """The end: the pull request and a summary, or what went wrong and what to do."""
    summary = line(goal, tasks, usage) if tasks else "no tasks"
    if goal.state is GoalState.SUCCEEDED:
        where = f"<{goal.pr_url}|pull request>" if goal.pr_url.startswith("http") else ""
        if not where:
            where = f"branch `{goal.branch}`" + (f" ({goal.pr_url})" if goal.pr_url else "")
        text = f":white_check_mark: Done: {where}. {summary}."
        if goal.publish_error:
            text += f"\nPublishing is pending ({goal.publish_error}): `blitz publish {goal.id}`."
        return Text(redact(text))
    if goal.state is GoalState.CANCELLED:
        return Text(redact(f":no_entry_sign: Cancelled: {goal.error or 'by request'}. {summary}."))
    failed = [t for t in tasks if t.state in (TaskState.FAILED, TaskState.CRASHED)]
    todo = (
        f"Reply `retry {failed[0].id}` to try it again, `skip {failed[0].id}` to go on without "
        "it, or say what to change (a follow-up goal)."
        if failed
        else "Reply with what to change (a follow-up goal), or start a new goal."
    )
    reasons = "".join(f"\n• `{t.id}`: {t.reason or t.state.value}" for t in failed[:5])
    return Text(
        redact(f":x: Failed: {goal.error or 'the goal failed'}. {summary}.{reasons}\n{todo}")
    )


def outcome_reaction(goal: Goal) -> str:
    """The reaction put on the message that started the goal once it ended."""
    return "white_check_mark" if goal.state is GoalState.SUCCEEDED else "x"
