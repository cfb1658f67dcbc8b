"""The project's gates and the task's command checks (:data:`~blitz.backends.base.ACCEPTANCE`),
run when the embedded agent calls ``finish``: one that fails on the change sends the finish back
with what it printed, so the agent fixes its work in the same run.

Small models rarely run the tests themselves (Qwen2.5-Coder-1.5B finished with a slugify that
its own weak test could not fault, and never ran the suite); the gates would fail after the run
and the task would wait for a recovery and a new attempt, the model's context gone. Told here,
it still has the code in view. The attempt's own gates judge the change afterwards as always:
this run is the agent's, in the agent's jail, and decides nothing. A gate that times out here
is not sent back (its length says nothing of the change), and after :data:`ROUNDS` send-backs
the model's finish is believed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from blitz.backends.base import ACCEPTANCE, GateCommand, trim
from blitz.backends.tools import AgentTools
from blitz.look_only import looking
from blitz.process import Completed

ROUNDS = 2
"""Times a finish is sent back for a failing gate in one run."""

SHOWN = 2400
"""Characters of a failing gate's output shown to the model (its start and end)."""

FAILING = (
    "You called finish, but {what} fails with your change (`{command}`,"
    " {status}):\n{output}\n\nFix what makes it fail (the code; a test only if the test itself"
    " is wrong), then call finish."
)
"""What the model is told when a gate fails on its change."""


@dataclass(frozen=True, slots=True)
class Checked:
    """What the gates said of a change: ``passed`` (None: there are none, or one timed out);
    ``said``: the first failing one and its output, or the commands that passed."""

    passed: bool | None
    said: str


class FinishGates:
    """The gates of one run's finish, each finish checked until one fails, :data:`ROUNDS`
    times at most."""

    def __init__(self, tools: AgentTools, gates: Sequence[GateCommand], timeout: float) -> None:
        """``timeout``: the most one gate may run (also capped by the tools' command timeout)."""
        self.tools = tools
        self.gates = tuple(gates)
        self.timeout = min(timeout, tools.limits.command_timeout)
        self.rounds = 0
        self._timed_out = False  # the last look at the gates ended at one that timed out

    async def pass_now(self) -> bool:
        """Whether there are gates and every one of them passes now (none timed out): the
        change is judged, with no rounds counted and nothing believed."""
        for gate in self.gates:
            done, changed = await self._run(gate)
            if done.timed_out or not done.ok or changed:
                return False
        return bool(self.gates)

    async def _run(self, gate: GateCommand) -> tuple[Completed, list[str]]:
        """A gate's outcome, and for an acceptance check, the files it changed (put back: it
        may only look, :mod:`blitz.look_only`)."""
        if gate.name != ACCEPTANCE:
            return await self.tools.execute(gate.command, self.timeout), []
        async with looking(self.tools.root) as changed:
            done = await self.tools.execute(gate.command, self.timeout)
        return done, changed

    async def failure(self) -> tuple[str, str]:
        """What to send a finish back with, and a line saying so ("", "": every gate passed,
        timed out, or the rounds are spent)."""
        if not self.gates or self.rounds >= ROUNDS:
            return "", ""
        failing = await self._first_failing()
        if failing is None:
            return "", ""
        self.rounds += 1
        gate, done = failing
        what, line = _named(gate)
        text = FAILING.format(
            what=what, command=gate.command, status=_status(done), output=_shown(done)
        )
        return text, f"re-asked: finish was called with {line} failing"

    async def on_draft(self) -> Checked:
        """What the gates say of a draft just put in place (:mod:`blitz.backends.embedded_draft`):
        the first failing gate and its output, or that they all pass; nothing when there are
        none, or one timed out. No round is counted: nothing was finished."""
        if not self.gates:
            return Checked(None, "")
        failing = await self._first_failing()
        if failing is None:
            if self._timed_out:
                return Checked(None, "")
            return Checked(True, ", ".join(f"`{gate.command}`" for gate in self.gates))
        gate, done = failing
        what, _ = _named(gate)
        said = f"{what} fails (`{gate.command}`, {_status(done)}):\n{_shown(done)}"
        return Checked(False, said)

    async def _first_failing(self) -> tuple[GateCommand, Completed] | None:
        """The first gate that fails on the change, and its outcome (None: each passed, or one
        timed out, said by ``_timed_out``; an acceptance check that changed files is skipped)."""
        self._timed_out = False
        for gate in self.gates:
            done, changed = await self._run(gate)
            if done.timed_out:
                self._timed_out = True
                return None
            if changed:  # the planner's mistake, not the agent's: the attempt's checks fail it
                continue
            if not done.ok:
                return gate, done
        return None


def _named(gate: GateCommand) -> tuple[str, str]:
    """A gate as the model is told of it, and as the run's line says it."""
    if gate.name == ACCEPTANCE:
        return "the task's acceptance check", "the task's acceptance check"
    return f"the project's {gate.name} check", f"the {gate.name} gate"


def _status(done: Completed) -> str:
    return f"exit code {done.exit_code if done.exit_code is not None else -1}"


def _shown(done: Completed) -> str:
    return trim(done.output.strip(), SHOWN) or "(no output)"
