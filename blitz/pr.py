"""The pull request that ends a goal: its title and its Markdown description.

Everything here is a pure function of the goal's records, so a resumed process writes the same
description as the one that died, and tests need nothing but domain objects. Both are redacted
(:mod:`blitz.redact`) before anything else sees them, whatever the records hold: the records
first, so no cell or title cut short splits a secret beyond recognition, then the text.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Sequence

from blitz.domain import Attempt, GateResult, Goal, Recovery, Task, TaskState, Usage
from blitz.failures import first_assertion
from blitz.redact import redact, redact_record

TITLE_LIMIT = 72
"""GitHub shows about this many characters of a title in lists before cutting it."""

BODY_LIMIT = 60_000
"""GitHub rejects bodies over 65,536 characters; stay below with room for the footer."""

CELL_LIMIT = 200
"""Longest table cell, so one verbose root cause cannot swamp the table."""

FAILURES_LISTED = 10
"""Failing tests named under a failed task; the rest are counted."""

DETAILS_LIMIT = 3000
"""Characters of a failing gate's output (its end) kept in the collapsed block."""

_UNSETTLED = (TaskState.FAILED, TaskState.CRASHED, TaskState.SKIPPED, TaskState.CANCELLED)
"""Task states listed with their reasons: work the pull request does not contain."""


def pr_title(goal: Goal) -> str:
    """The pull request title: ``blitz: <goal title>`` on one line, at most 72 characters."""
    return redact(_shorten(f"blitz: {_one_line(redact(goal.title))}", TITLE_LIMIT))


def describe(
    *,
    goal: Goal,
    tasks: Sequence[Task],
    attempts: Sequence[Attempt],
    recoveries: Sequence[Recovery],
    scripted: bool = False,
    unconfined: bool = False,
) -> str:
    """The pull request description in GitHub Markdown: what was asked, what each task did, how
    failures were recovered, what was left out and what it cost.

    ``scripted`` marks a demo run by the scripted planner and backend, so nobody mistakes its
    output for an agent's work. ``unconfined`` warns that the agents ran without the sandbox.
    """
    goal, tasks = redact_record(goal), redact_record(tuple(tasks))
    attempts, recoveries = redact_record(tuple(attempts)), redact_record(tuple(recoveries))
    return redact(_describe(goal, tasks, attempts, recoveries, scripted, unconfined))


def _describe(
    goal: Goal,
    tasks: Sequence[Task],
    attempts: Sequence[Attempt],
    recoveries: Sequence[Recovery],
    scripted: bool,
    unconfined: bool,
) -> str:
    by_task: dict[str, list[Attempt]] = {}
    # Within an attempt number, the selected best-of-N candidate comes last (it is "the" attempt).
    for attempt in sorted(attempts, key=lambda a: (a.task_id, a.number, a.selected, a.candidate)):
        by_task.setdefault(attempt.task_id, []).append(attempt)
    titles = {task.id: task.title for task in tasks}

    sections = [f"# blitz: {_one_line(goal.title)}"]
    if scripted:
        sections.append(
            "> [!NOTE]\n"
            "> **Demo run.** This pull request was produced by blitz's scripted planner and "
            "scripted backend, not by an AI agent. Its changes are canned demo output."
        )
    if unconfined:
        sections.append(
            "> [!WARNING]\n"
            '> **Unconfined agents.** The sandbox was off (`[sandbox] mode = "off"`): the agents '
            "behind this pull request ran with the user's access to files and network. Review "
            "the change with that in mind."
        )
    sections.append(f"## Goal\n\n{goal.title.strip() or '(untitled goal)'}")
    if goal.follows:
        sections.append(f"A follow-up of goal {_code(goal.follows)}, on its branch.")
    sections.append(_summary(goal, tasks, recoveries))
    if tasks:
        sections.append(_task_table(tasks, by_task))
    explored = _exploration(tasks, by_task)
    if explored:
        sections.append(explored)
    if recoveries:
        sections.append(_recovery_table(recoveries, titles))
    left_out = [task for task in tasks if task.state in _UNSETTLED]
    if left_out:
        sections.append(_left_out(left_out, by_task))
    sections.append(_cost(attempts))

    body = "\n\n".join(sections)
    if len(body) > BODY_LIMIT:
        body = body[:BODY_LIMIT].rstrip() + "\n\n*(description truncated: too long for GitHub)*"
    return f"{body}\n\n{_footer(goal, tasks, attempts)}\n"


# -- sections --------------------------------------------------------------------------------


def _summary(goal: Goal, tasks: Sequence[Task], recoveries: Sequence[Recovery]) -> str:
    counts = Counter(task.state for task in tasks)
    parts = [
        f"{counts[TaskState.SUCCEEDED]} {_plural(counts[TaskState.SUCCEEDED], 'task')} succeeded",
        f"{counts[TaskState.SKIPPED]} skipped",
        f"{counts[TaskState.FAILED] + counts[TaskState.CRASHED]} failed",
    ]
    # States a settled goal rarely has are named only when present, to keep the line short.
    parts += [
        f"{counts[state]} {state}"
        for state in (
            TaskState.REPLACED,
            TaskState.CANCELLED,
            TaskState.PENDING,
            TaskState.READY,
            TaskState.RUNNING,
        )
        if counts[state]
    ]
    line = ", ".join(parts) + f"; {len(recoveries)} {_plural(len(recoveries), 'recovery')}."
    lines = ["## Summary", ""]
    if goal.summary.strip():
        lines += [goal.summary.strip(), ""]
    lines.append(f"**{line}**")
    return "\n".join(lines)


def _task_table(tasks: Sequence[Task], by_task: dict[str, list[Attempt]]) -> str:
    rows = [
        "## Tasks",
        "",
        "| Task | Title | Status | Commit | Gates | Attempts |",
        "| --- | --- | --- | --- | --- | ---: |",
    ]
    for task in tasks:
        history = by_task.get(task.id, [])
        last = history[-1] if history else None
        commit = _code(task.commit[:7]) if task.commit else "—"
        gates = _gates(last.gates) if last else "—"
        count = max(task.attempts, len(history))
        cells = [_code(task.id), _cell(task.title), _status(task.state), commit, gates, str(count)]
        rows.append("| " + " | ".join(cells) + " |")
    if any(g.preexisting and not g.passed for a in by_task.values() for g in a[-1].gates):
        rows += [
            "",
            "*pre-existing*: the gate fails on the base branch too, so it is not "
            "blamed on the task.",
        ]
    return "\n".join(rows)


def _exploration(tasks: Sequence[Task], by_task: dict[str, list[Attempt]]) -> str:
    """Every best-of-N candidate, and why the winner won."""
    parts = []
    for task in tasks:
        rounds: dict[int, list[Attempt]] = {}
        for attempt in by_task.get(task.id, []):
            if attempt.candidate:
                rounds.setdefault(attempt.number, []).append(attempt)
        for number, candidates in sorted(rounds.items()):
            rows = [
                f"### Best of {len(candidates)}: {_code(task.id)} {_cell(task.title)}"
                + (f" (attempt {number})" if len(rounds) > 1 else ""),
                "",
                "| Candidate | Backend | Result | Verdict | Cost | Kept as |",
                "| ---: | --- | --- | --- | ---: | --- |",
            ]
            for a in sorted(candidates, key=lambda a: a.candidate):
                backend = f"{a.backend}:{a.model}" if a.model else a.backend
                result = "**selected**" if a.selected else str(a.state)
                cells = [
                    str(a.candidate),
                    _code(backend),
                    result,
                    _cell(_shorten(_one_line(a.verdict), 200)) or "—",
                    _usd(a.usage.cost_usd),
                    _code(a.ref) if a.ref else "—",
                ]
                rows.append("| " + " | ".join(cells) + " |")
            parts.append("\n".join(rows))
    if not parts:
        return ""
    return "## Best-of-N exploration\n\n" + "\n\n".join(parts)


def _recovery_table(recoveries: Sequence[Recovery], titles: dict[str, str]) -> str:
    rows = [
        "## Recoveries",
        "",
        "| Failed task | Root cause | Action | New tasks |",
        "| --- | --- | --- | --- |",
    ]
    for recovery in sorted(recoveries, key=lambda r: r.created_at):
        failed = _code(recovery.task_id)
        if titles.get(recovery.task_id):
            failed += " " + _cell(titles[recovery.task_id])
        new = ", ".join(_code(t) for t in recovery.new_tasks) or "—"
        cells = [failed, _cell(recovery.root_cause) or "—", str(recovery.action), new]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _left_out(tasks: Sequence[Task], by_task: dict[str, list[Attempt]]) -> str:
    lines = ["## Skipped and failed tasks", ""]
    for task in tasks:
        history = by_task.get(task.id, [])
        reason = task.reason or (history[-1].error if history else "") or "no reason recorded"
        first, *rest = reason.strip().splitlines() or [""]
        lines.append(
            f"- {_code(task.id)} {_one_line(task.title)} ({task.state}): "
            f"{_shorten(_one_line(first), 300)}"
        )
        gates = history[-1].gates if history else ()
        failing = [g for g in gates if not (g.passed or g.preexisting)]
        for gate in failing:
            lines += _failing_gate(gate)
        if not failing and any(line.strip() for line in rest):
            lines += _details("the whole reason", reason)
    return "\n".join(lines)


def _failing_gate(gate: GateResult) -> list[str]:
    """A failing gate under its task: the tests that failed, the first assertion, and its
    output a click away."""
    lines = []
    if gate.new_failures:
        named = ", ".join(_code(test) for test in gate.new_failures[:FAILURES_LISTED])
        more = len(gate.new_failures) - FAILURES_LISTED
        lines.append(
            f"  - {_code(gate.name)}: {len(gate.new_failures)} failing "
            f"{_plural(len(gate.new_failures), 'test')}: {named}"
            + (f" and {more} more" if more > 0 else "")
        )
    assertion = first_assertion(gate.output_tail)
    if assertion:
        lines.append(f"  - first assertion: {_code(_shorten(assertion, CELL_LIMIT))}")
    what = "timed out" if gate.timed_out else f"exit {gate.exit_code}"
    lines += _details(f"output of {gate.name} ({what}): {gate.command}", gate.output_tail)
    return lines


def _details(summary: str, text: str) -> list[str]:
    """``text`` in a collapsed block (its last :data:`DETAILS_LIMIT` characters), indented under
    a list item."""
    text = text.strip("\n")
    if not text.strip():
        return []
    if len(text) > DETAILS_LIMIT:
        text = "…" + text[-DETAILS_LIMIT:]
    fence = "`" * max(3, max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    summary = html.escape(_shorten(_one_line(summary), CELL_LIMIT))
    block = [f"<details><summary>{summary}</summary>", "", f"{fence}text", *text.splitlines()]
    block += [fence, "", "</details>"]
    return [f"  {line}" if line else "" for line in block]


def _cost(attempts: Sequence[Attempt]) -> str:
    total = sum((a.usage for a in attempts), Usage())
    return "\n".join(
        [
            "## Cost",
            "",
            "| Input tokens | Output tokens | Cached tokens | USD |",
            "| ---: | ---: | ---: | ---: |",
            f"| {total.input_tokens:,} | {total.output_tokens:,} | {total.cached_tokens:,} "
            f"| {_usd(total.cost_usd)} |",
            "",
            f"Agent attempts only ({len(attempts)} {_plural(len(attempts), 'attempt')}); "
            "planning and recovery calls are not included.",
        ]
    )


def _footer(goal: Goal, tasks: Sequence[Task], attempts: Sequence[Attempt]) -> str:
    where = f" on branch {_code(goal.branch)}" if goal.branch else ""
    return (
        f"---\n<sub>Opened by blitz for goal {_code(goal.id)}{where}: "
        f"{len(tasks)} {_plural(len(tasks), 'task')}, "
        f"{len(attempts)} {_plural(len(attempts), 'attempt')}.</sub>"
    )


# -- formatting ------------------------------------------------------------------------------


def _gates(results: Sequence[GateResult]) -> str:
    if not results:
        return "—"
    marks = []
    for result in results:
        if result.passed:
            mark = f"{result.name} ✓"
        elif result.preexisting:
            mark = f"{result.name} ✗ (pre-existing)"
        elif result.timed_out:
            mark = f"{result.name} ✗ (timed out)"
        else:
            mark = f"{result.name} ✗"
        marks.append(_cell(mark))
    return " ".join(marks)


def _status(state: TaskState) -> str:
    return f"**{state}**" if state in (TaskState.FAILED, TaskState.CRASHED) else str(state)


def _usd(amount: float) -> str:
    if 0 < amount < 0.01:
        return "< $0.01"
    return f"${amount:,.2f}"


def _cell(text: str) -> str:
    """Text safe inside a table cell: one line, pipes escaped, not too long."""
    return _shorten(_one_line(text), CELL_LIMIT).replace("|", "\\|")


def _code(text: str) -> str:
    """An inline code span for an identifier, escaped for table cells."""
    text = _one_line(text).replace("|", "\\|")
    return f"`{text}`" if text and "`" not in text else text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _plural(count: int, word: str) -> str:
    if count == 1:
        return word
    return word[:-1] + "ies" if word.endswith("y") else word + "s"
