"""What an attempt's agent is told besides its task's title: the task's instructions with the
plan's hints (the files it is expected to touch, its acceptance checks), and the project's
gates its change will be judged by.
"""

from __future__ import annotations

from blitz.backends.base import ACCEPTANCE, GateCommand
from blitz.domain import Baseline, Task
from blitz.validation import Validator


def instructions(task: Task) -> str:
    """The task's instructions as its agent reads them, with the plan's hints: the files it is
    expected to touch, and its acceptance checks."""
    text = task.instructions or task.title
    if task.files:
        text += f"\n\nFiles this task is expected to touch: {', '.join(task.files)}"
    if task.checks:
        checks = "; ".join(
            (c.path and f"file {c.path} exists") or f"`{c.command}` passes" for c in task.checks
        )
        text += f"\n\nAcceptance checks: {checks}"
    return text


def gates(
    validator: Validator | None, baseline: Baseline | None, task: Task | None = None
) -> tuple[GateCommand, ...]:
    """The commands an attempt's change will be judged by, in the order they run: the
    project's gates that passed on the goal's base (one failing there already would send the
    agent after failures that are not its own; the gates excuse them), then the ``task``'s
    acceptance checks that are commands (named :data:`ACCEPTANCE`)."""
    checks = tuple(
        GateCommand(ACCEPTANCE, c.command)
        for c in (task.checks if task is not None else ())
        if c.kind == "command" and c.command.strip()
    )
    if validator is None:
        return checks
    failing = {result.name for result in baseline.results if not result.passed} if baseline else ()
    configured = validator.gates.configured()
    return tuple(GateCommand(n, c) for n, c in configured.items() if n not in failing) + checks
