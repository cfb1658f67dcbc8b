"""What the planner tells the model: the rules of a plan and of a recovery, the failure shown
to recovery (gate tails, diff, the agent's last messages), and the re-ask listing problems."""

from __future__ import annotations

from collections.abc import Sequence

from blitz.domain import GateResult, Recovery
from blitz.planner import RecoveryRequest

GATE_TAIL = 2_000
"""Characters of a failed gate's output shown to recovery (its end, where the error is)."""

DIFF_HEAD = 6_000
"""Characters of the failed attempt's diff shown to recovery."""

LAST_MESSAGES = 4
MESSAGE_TAIL = 1_500
"""The agent's last messages shown to recovery, and the characters kept of each (the end)."""

MAX_IDS_SHOWN = 500
"""Existing task ids listed to recovery; a collision among the rest is still caught and re-asked."""

PLAN_RULES = """\
You plan software work for autonomous coding agents. You get a goal about a git repository and a
view of that repository; answer with a plan: a short summary and a list of tasks.

Each task is done by a separate coding agent in its own git worktree, which starts from the work of
the tasks it depends on. The agent sees the repository and the task's title and instructions,
nothing else: not the goal, not this conversation, not the other tasks.

Rules for a good plan:
- Small, independent, verifiable tasks. Each task makes one coherent change to a few files and
  leaves the project building with its tests passing. Prefer a few solid tasks to many tiny ones.
- ids: unique, 1-64 characters from letters, digits, '.', '_' and '-' (e.g. "add-limiter").
- depends_on: list a task's id only when this task needs that task's changes. Tasks without
  dependencies on each other run in parallel. No cycles.
- Tests of new code go in the task that writes the code. A task that imports, calls or tests
  code another task adds depends on that task: alone, its tests would fail.
- A rename or a changed signature is one task that changes the definition and every file
  that uses it: split in two, each half breaks the project's tests.
- priority: an integer, default 0; higher runs first among ready tasks. Raise it for tasks that
  unblock others.
- instructions: self-contained and specific: which files and functions to change or add, what
  behaviour to implement, which tests to write, how to tell it is done.
- files: the files the task is expected to touch (a hint for the agent and for reviewers).
- checks: optional acceptance checks run after the project's gates:
  {"kind": "file_exists", "path": "relative/path"} or
  {"kind": "command", "command": "shell command run in the worktree", "timeout": seconds}.
  A check only looks at the change (a test, a grep); one that changes a file fails.
- allow_empty: true only for a task that may rightly change no file.
- attempts: leave it out for most tasks. For a risky task (a subtle bug, a tricky algorithm, a
  change with several plausible designs) set 2 or 3, at most {max_attempts}: that many agents try
  it side by side and the best passing result is kept. Each attempt costs a full agent run.
{routing}
- At most {max_tasks} tasks.

Every task is judged by the project's validation gates, run in its worktree; a task whose change
makes them fail has failed:
{gates}

A plan for a small goal ("Add a --quiet flag to the CLI") is one task, its tests included, and
leaves out every field it does not need:
{"summary": "Add a --quiet flag that silences progress output.", "tasks": [{"id": "add-quiet",
"title": "Add a --quiet flag to the CLI", "instructions": "In cli.py add a --quiet option that
skips the progress output. In test_cli.py test that --quiet prints nothing.", "files": ["cli.py",
"test_cli.py"]}]}
"""

RECOVERY_RULES = """\
You diagnose a failed task of an automated coding run and decide what happens next. A coding
agent worked on the task in its own git worktree; the project's validation gates or the task's
checks then failed, or the agent gave up. Find the root cause, not the symptom: read the gate
output, the diff and the agent's last messages.

Choose one action:
- retry: the task is right but the attempt went wrong; give guidance, added to the task's
  instructions for the next attempt (what went wrong and how to do it right).
- insert: something else must be done first; give the new tasks (the failed task will depend on
  them, then run again with the guidance).
- replace: the task is wrong or too big; give the tasks that take its place, together doing all
  of its work (the tasks that depended on it will depend on them).
- skip: the task is unnecessary or its work is already done; the goal can succeed without it.
- abort: the goal cannot succeed (impossible, contradictory, or a human must decide).

New tasks use the plan task format: unique ids of 1-64 letters, digits, '.', '_' or '-' that no
existing task has, a one-line title, self-contained instructions (the agent sees only them and the
repository), depends_on only when needed. New tasks must not depend on the failed task; tests of
new code go in the task that writes the code, and a rename goes in one task with every file
that uses the name. Give tasks only for insert and replace. Do not repeat a recovery that was
already tried for this task.
"""


def routing_text(backends: Sequence[str]) -> str:
    """The rule on ``backend`` and ``model``: the choices are the request's backend specs, each
    ``backend`` or ``backend:model`` (the model after the first colon, as in a portfolio)."""
    if not backends:
        return "- backend, model: leave them empty (no other agents are configured)."
    choices = []
    for spec in backends:
        backend, _, model = spec.partition(":")
        choices.append(
            f'  - backend "{backend}", ' + (f'model "{model}"' if model else "model empty")
        )
    return (
        "- backend, model: leave them empty for most tasks. For a task another agent or model\n"
        "  does better (a cheaper model for a routine, mechanical change, a stronger one for a\n"
        "  hard one) set both to one of these pairs:\n" + "\n".join(choices)
    )


def gates_text(gates: dict[str, str]) -> str:
    lines = [f"- {name}: `{command}`" for name, command in gates.items() if command]
    return "\n".join(lines) if lines else "(no gates configured: the task checks judge the work)"


def _tail(text: str, chars: int) -> str:
    text = text.rstrip()
    return text if len(text) <= chars else "[... earlier output cut ...]\n" + text[-chars:]


def _head(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars] + "\n[... rest cut ...]"


def _fenced(text: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}\n{text}\n{fence}"


def _gate_lines(gate: GateResult) -> list[str]:
    verdict = "passed" if gate.passed else "FAILED"
    if gate.timed_out:
        verdict += " (timed out)"
    elif gate.exit_code is not None and not gate.passed:
        verdict += f" (exit {gate.exit_code})"
    if gate.preexisting:
        verdict += ", as it already did on the base branch"
    lines = [f"- {gate.name} `{gate.command}`: {verdict}"]
    if gate.new_failures:
        lines.append("  new failures: " + ", ".join(gate.new_failures))
    if not gate.passed and gate.output_tail.strip():
        lines.append(_fenced(_tail(gate.output_tail, GATE_TAIL)))
    return lines


def _earlier_line(recovery: Recovery) -> str:
    line = f"- {recovery.action.value}: {recovery.root_cause}"
    if recovery.guidance:
        line += f" (guidance: {_head(recovery.guidance, 300)})"
    if recovery.new_tasks:
        line += f" (new tasks: {', '.join(recovery.new_tasks)})"
    return line


def _ids_text(ids: Sequence[str]) -> str:
    if not ids:
        return "(none)"
    shown = ", ".join(ids[:MAX_IDS_SHOWN])
    more = len(ids) - MAX_IDS_SHOWN
    return shown + (f", ... and {more} more" if more > 0 else "")


def recovery_prompt(request: RecoveryRequest) -> str:
    task, attempt = request.task, request.attempt
    parts = [
        f"Goal: {request.goal}",
        f"Failed task: {task.id}: {task.title}",
        "Instructions:\n" + _fenced(task.instructions or task.title),
    ]
    if task.guidance:
        parts.append(f"Guidance it was given:\n{task.guidance}")
    if task.depends_on:
        parts.append(f"It depends on: {', '.join(task.depends_on)}")
    parts.append(f"Attempt {attempt.number} failed: {request.error or attempt.error or '?'}")
    if attempt.summary:
        parts.append(f"The agent's summary: {_head(attempt.summary, MESSAGE_TAIL)}")
    if request.gates:
        lines = [line for gate in request.gates for line in _gate_lines(gate)]
        parts.append("Gates and checks:\n" + "\n".join(lines))
    if request.diff.strip():
        parts.append("The attempt's diff:\n" + _fenced(_head(request.diff.rstrip(), DIFF_HEAD)))
    elif attempt.diff_stat:
        parts.append(f"The attempt's diff stat:\n{attempt.diff_stat}")
    else:
        parts.append("The attempt changed no files.")
    if request.messages:
        last = request.messages[-LAST_MESSAGES:]
        parts.append(
            "The agent's last messages:\n"
            + "\n".join(_fenced(_tail(m, MESSAGE_TAIL)) for m in last)
        )
    earlier = [r for r in request.earlier if r.task_id == task.id]
    if earlier:
        parts.append(
            "Recoveries already tried for this task:\n" + "\n".join(map(_earlier_line, earlier))
        )
    parts.append(f"Existing task ids (new tasks may not reuse them): {_ids_text(request.task_ids)}")
    return "\n\n".join(parts)


def reask(problems: Sequence[str], what: str, mode: str) -> str:
    how = "with the output tool" if mode == "tool" else "as one JSON object matching the schema"
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        f"Your {what} was rejected:\n{listed}\n\n"
        f"Fix every problem and answer again, {how}, with the complete corrected {what}."
    )
