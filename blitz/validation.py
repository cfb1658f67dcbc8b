"""Validation: running a project's gates and a task's checks in a worktree, and judging the
results against the baseline (the same gates run once on the goal's base commit).

A gate that already failed on the base commit is not blamed on a task unless the task made it
worse: new failing test ids are blamed, the old ones are not. Failing ids are read from the
output of the common test runners (:mod:`blitz.failures`).

Results without a baseline (including the baseline itself) carry every failing id they found in
``new_failures``: judged against nothing, every failure is new. Judging reads the baseline's ids
from there, so they survive even when the output tail was cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePath

from blitz import process
from blitz.domain import Baseline, Check, GateResult, Gates
from blitz.errors import ConfigError, RunError
from blitz.failures import parse_failures
from blitz.process import DEFAULT_CAP, Completed
from blitz.sandbox import Policy, SandboxUnavailable

NAME_LIMIT = 60
"""Longest command shown in a check's name (``check:command:<cmd>``)."""

LISTED_FAILURES = 5
"""New failing ids named in a summary line before "and N more"."""

# -- running -----------------------------------------------------------------------------------


class Validator:
    """Runs a project's gates and a task's checks in a worktree.

    Commands get ``env`` (by default the current environment without secrets, plus ``CI=true``
    so test runners do not wait for a terminal) and keep the last ``cap`` bytes of their output;
    results keep the last ``tail_chars`` characters of that.
    """

    def __init__(
        self,
        gates: Gates,
        *,
        env: Mapping[str, str] | None = None,
        cap: int = DEFAULT_CAP,
        tail_chars: int = 4000,
        sandbox: Policy | None = None,
    ) -> None:
        """``sandbox``: the policy gates run under (a jail per command); None runs them as they
        are (tests of the judging, and benchmarks)."""
        self.gates = gates
        self.sandbox = sandbox
        explicit = env
        if env is None:
            env = process.clean_env()
            env.setdefault("CI", "true")
        self._env = dict(env)
        # In a jail: the jail's allowlist plus what the caller chose to pass (else CI=true);
        # blitz's own environment stays outside.
        self._gate_env = dict(explicit) if explicit is not None else {"CI": "true"}
        self._cap = cap
        self._tail_chars = tail_chars

    async def run_gates(
        self, worktree: Path, *, baseline: Baseline | None = None
    ) -> tuple[GateResult, ...]:
        """Run every configured gate, in order, each to the end even when an earlier one failed
        (the record shows them all), judging failures against ``baseline`` when given."""
        before = {result.name: result for result in baseline.results} if baseline else {}
        results = []
        for name, command in self.gates.configured().items():
            done = await self._run(command, worktree, self.gates.timeout)
            results.append(self._judge(name, command, done, before.get(name)))
        return tuple(results)

    async def baseline(self, worktree: Path, *, goal_id: str, sha: str) -> Baseline:
        """Run the gates on the goal's base commit (checked out in ``worktree``), unjudged."""
        return Baseline(goal_id=goal_id, sha=sha, results=await self.run_gates(worktree))

    async def run_checks(self, worktree: Path, checks: Sequence[Check]) -> tuple[GateResult, ...]:
        """Run a task's acceptance checks in order; none is judged against the baseline."""
        results = []
        for check in checks:
            if check.kind == "file_exists":
                results.append(_file_exists(worktree, check.path))
            elif check.kind == "command":
                results.append(await self._command_check(worktree, check))
            else:
                results.append(
                    _refused(
                        f"check:{check.kind}", check.kind, f"unknown check kind {check.kind!r}"
                    )
                )
        return tuple(results)

    async def _command_check(self, worktree: Path, check: Check) -> GateResult:
        name = f"check:command:{_shorten(check.command)}"
        if not check.command.strip():
            return _refused(name, check.command, "the check has no command")
        done = await self._run(check.command, worktree, check.timeout)
        return GateResult(
            name=name,
            command=check.command,
            passed=done.ok,
            exit_code=done.exit_code,
            duration=done.duration,
            output_tail=self._tail(done),
            timed_out=done.timed_out,
        )

    async def _run(self, command: str, worktree: Path, timeout: float) -> Completed:
        try:
            if self.sandbox is None:
                return await process.run(
                    command, cwd=worktree, timeout=timeout, env=self._env, cap=self._cap
                )
            jail = self.sandbox.jail(worktree)
            return await jail.run(command, timeout=timeout, env=self._gate_env, cap=self._cap)
        except SandboxUnavailable as exc:
            # The user must install bubblewrap or turn the sandbox off: the project pauses.
            raise ConfigError(str(exc)) from exc
        except OSError as exc:
            # The worktree is gone or unusable: the machinery broke, not the task's work.
            raise RunError(f"cannot run {command!r} in {worktree}: {exc}") from exc

    def _tail(self, done: Completed) -> str:
        tail = done.tail(self._tail_chars)
        if done.timed_out:
            tail += f"\n[timed out after {_seconds(done.duration)}; the command was stopped]"
        return tail

    def _judge(
        self, name: str, command: str, done: Completed, before: GateResult | None
    ) -> GateResult:
        passed = done.ok and not done.timed_out
        preexisting = False
        new: frozenset[str] = frozenset()
        if not passed:
            now = parse_failures(done.output)
            new = now
            # A baseline of another command (the gates were reconfigured) says nothing.
            if before is not None and not before.passed and before.command == command:
                old = frozenset(before.new_failures) | parse_failures(before.output_tail)
                new = now - old
                preexisting = _preexisting(now, old, done.timed_out, before.timed_out)
        return GateResult(
            name=name,
            command=command,
            passed=passed,
            exit_code=done.exit_code,
            duration=done.duration,
            output_tail=self._tail(done),
            timed_out=done.timed_out,
            preexisting=preexisting,
            new_failures=tuple(sorted(new)),
        )


def _preexisting(
    now: frozenset[str], old: frozenset[str], timed_out: bool, timed_out_before: bool
) -> bool:
    """Whether a gate failing now, which also failed on the baseline, fails the same way."""
    if timed_out and not timed_out_before:
        return False  # a hang the base commit did not have
    if now - old:
        return False  # new failing tests
    if now or not old:
        return True  # the same (or fewer) failing tests, or nothing recognisable in either
    # Failing ids were recognised on the baseline but none now: it broke in another way
    # (unless both runs hung, and the output simply stopped before any id).
    return timed_out and timed_out_before


def _file_exists(worktree: Path, path: str) -> GateResult:
    name = f"check:file_exists:{path}"
    command = f"file_exists {path}"
    if not path:
        return _refused(name, command, "the check has no path")
    if PurePath(path).is_absolute():
        return _refused(
            name, command, f"refused: {path} is absolute; give it relative to the worktree"
        )
    root = worktree.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        return _refused(name, command, f"refused: {path} resolves outside the worktree")
    exists = target.exists()
    return GateResult(
        name=name,
        command=command,
        passed=exists,
        exit_code=0 if exists else 1,
        duration=0.0,
        output_tail=f"{path} exists" if exists else f"{path} does not exist",
    )


def _refused(name: str, command: str, why: str) -> GateResult:
    return GateResult(
        name=name, command=command, passed=False, exit_code=None, duration=0.0, output_tail=why
    )


# -- reporting ---------------------------------------------------------------------------------


def verdict(results: Iterable[GateResult]) -> bool:
    """True when every result passed or failed on the base branch too."""
    return all(result.passed or result.preexisting for result in results)


def summarize(results: Iterable[GateResult]) -> str:
    """One line per gate or check, e.g. ``test: FAILED (exit 1, 2 new failures: a, b)``."""
    lines = [_line(result) for result in results]
    return "\n".join(lines) if lines else "no gates ran"


def _line(result: GateResult) -> str:
    if result.passed:
        return f"{result.name}: passed"
    if result.preexisting:
        if result.timed_out:
            return f"{result.name}: timed out on base branch too (not blamed)"
        return f"{result.name}: failed on base branch too (not blamed)"
    if result.timed_out:
        return f"{result.name}: TIMED OUT after {_seconds(result.duration)}"
    detail = "not run" if result.exit_code is None else f"exit {result.exit_code}"
    if result.exit_code is None and result.output_tail:
        detail = result.output_tail.splitlines()[0]
    if result.new_failures:
        count = len(result.new_failures)
        named = ", ".join(result.new_failures[:LISTED_FAILURES])
        if count > LISTED_FAILURES:
            named += f" and {count - LISTED_FAILURES} more"
        detail += f", {count} new failure{'s' if count > 1 else ''}: {named}"
    return f"{result.name}: FAILED ({detail})"


def _seconds(duration: float) -> str:
    return f"{duration:.0f}s" if duration >= 10 else f"{duration:.1f}s".replace(".0s", "s")


def _shorten(text: str, limit: int = NAME_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
