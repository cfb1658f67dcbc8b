"""Best-of-N exploration: N attempts of one task compete, one integrates, the rest are kept as refs.

Each attempt turns its finished work into a :class:`Candidate` and offers it to the task's
:class:`Selection`, which waits for the others (mode ``all``) or crowns the first that passes
(mode ``first``), ranks them (:func:`rank`), lets a :class:`Judge` break an exact tie between
passing candidates, and tells exactly one candidate at a time to integrate. A winner whose
integration fails hands the win to the next passing candidate; losers hear their verdict only
once it is final. Every candidate gets a one-line verdict (:func:`explain`).

Pure: no I/O and no SDK. The model judge is :class:`blitz.llm.judge.ModelJudge`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from blitz.domain import Attempt, Usage
from blitz.redact import redact

Mode = Literal["all", "first"]

UNAVAILABLE = "judge unavailable"
"""How a judge's reason starts when it could not choose and the ranking order stands."""

ERROR_CHARS = 160
"""Characters kept of a candidate's error: one line for a verdict."""


# -- candidates ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One attempt's finished work as the selection compares it."""

    attempt_id: str
    label: str  # e.g. "claude-code:sonnet #2"
    passed: bool  # every gate and check passed or failed on the base branch too
    new_failures: int = 0  # new failing tests; a failing gate that names none counts 1
    tests_passed: int = 0  # read from the gates' output; 0 when no runner's summary was found
    diff_lines: int = 0  # lines added plus lines removed
    cost_usd: float = 0.0
    error: str = ""  # why it failed, in one line


def candidate_of(attempt: Attempt, *, label: str, passed: bool, error: str = "") -> Candidate:
    """The candidate for an attempt whose gates have run. ``passed`` is the caller's verdict
    (False when the agent failed or produced nothing); a failing gate makes it False too."""
    blamed = [g for g in attempt.gates if not (g.passed or g.preexisting)]
    passed = passed and not blamed
    return Candidate(
        attempt_id=attempt.id,
        label=label,
        passed=passed,
        new_failures=sum(max(1, len(g.new_failures)) for g in blamed),
        tests_passed=sum(count_passed(g.output_tail) for g in attempt.gates),
        diff_lines=_stat_lines(attempt.diff_stat) or count_changed_lines(attempt.diff),
        cost_usd=attempt.usage.cost_usd,
        error="" if passed else one_line(error or attempt.error or f"{blamed[0].name} failed"),
    )


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# pytest "12 passed, 1 skipped in 0.3s", cargo "test result: ok. 12 passed;", jest "Tests: 12
# passed, 12 total", vitest "Tests  12 passed (12)"; not jest's suites or vitest's files.
_PASSED = re.compile(r"\b(\d+) passed\b")
_NOT_TESTS = ("Test Suites:", "Test Files", "Snapshots:")
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in ")
_UNITTEST_END = re.compile(r"^(?:OK|FAILED)(?: \((.*)\))?\s*$")
_UNITTEST_NOT_PASSED = re.compile(r"\b(?:failures|errors|skipped)=(\d+)")
_GO_OK = re.compile(r"^ok\s+\S+\s+(?:\d|\(cached\))")
_GO_PASS = re.compile(r"^\s*--- PASS: ")
_STAT = re.compile(r"(\d+) (insertion|deletion)s?\([+-]\)")
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def count_passed(output: str) -> int:
    """Tests reported passing in a test run's output (pytest, unittest, jest, vitest, go test,
    cargo test), best effort: 0 when no summary is recognised. ``go test`` without ``-v``
    reports packages, and each ``ok`` package counts 1."""
    passed = ran = go_ok = go_pass = 0
    for raw in output.splitlines():
        line = _ANSI.sub("", raw)
        if m := _UNITTEST_RAN.match(line):
            ran = int(m[1])
        elif ran and (m := _UNITTEST_END.match(line)):
            passed += max(0, ran - sum(map(int, _UNITTEST_NOT_PASSED.findall(m[1] or ""))))
            ran = 0
        elif _GO_OK.match(line):
            go_ok += 1
        elif _GO_PASS.match(line):
            go_pass += 1
        elif not line.lstrip().startswith(_NOT_TESTS):
            passed += sum(int(n) for n in _PASSED.findall(line))
    return passed + (go_pass or go_ok)


def count_changed_lines(diff: str) -> int:
    """Lines added plus lines removed in a unified diff, counted within hunks only, so file
    headers (and removed lines that look like them) are told apart."""
    changed = old = new = 0
    for line in diff.splitlines():
        if old > 0 or new > 0:
            tag = line[:1]
            if tag in ("-", "+"):
                changed += 1
                old, new = (old - 1, new) if tag == "-" else (old, new - 1)
                continue
            if tag == "\\":  # "\ No newline at end of file"
                continue
            if tag in (" ", ""):
                old, new = old - 1, new - 1
                continue
        m = _HUNK.match(line)
        old, new = (int(m[1] or 1), int(m[2] or 1)) if m else (0, 0)
    return changed


def _stat_lines(stat: str) -> int:
    """Insertions plus deletions from ``git diff --stat``'s last line (uncapped, unlike the
    diff an attempt keeps); 0 when there is none."""
    return sum(int(n) for n, _ in _STAT.findall(stat.rstrip().rpartition("\n")[2]))


def one_line(text: str, limit: int = ERROR_CHARS) -> str:
    """The first non-blank line of ``text``, redacted and cut to ``limit`` characters."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = redact(" ".join(first.split()))
    return first if len(first) <= limit else first[: limit - 3] + "..."


# -- ranking and verdicts ------------------------------------------------------------------------


def _key(c: Candidate) -> tuple[bool, int, int, int, float]:
    # Costs compare in whole cents, as verdicts show them: $0.021 and $0.024 are the same cost.
    return (not c.passed, c.new_failures, -c.tests_passed, c.diff_lines, round(c.cost_usd, 2))


def rank(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Best first: passing before not, then fewer new failures, more tests passed, a smaller
    diff, a lower cost, and finally the earlier candidate in ``candidates``."""
    return sorted(candidates, key=_key)


def explain(
    winner: Candidate | None, candidates: Iterable[Candidate], *, judge_reason: str = ""
) -> dict[str, str]:
    """A one-line verdict per attempt id: why ``winner`` won and why each other candidate lost
    to it (to nobody, when ``winner`` is None). ``judge_reason`` is what the judge said when it
    chose among candidates equal on every criterion."""
    candidates = list(candidates)
    verdicts = {}
    for c in candidates:
        if winner is None:
            verdicts[c.attempt_id] = "failed: " + _failure(c)
        elif c.attempt_id == winner.attempt_id:
            tied = sum(o.passed and _key(o) == _key(c) for o in candidates) - 1
            merits = _merits(c) + _tie(tied, judge_reason)
            verdicts[c.attempt_id] = f"won: passed all gates, {merits}"
        else:
            verdicts[c.attempt_id] = "lost: " + _defeat(c, winner, judge_reason)
    return verdicts


def _merits(c: Candidate) -> str:
    tests = f"{c.tests_passed} test{'s' * (c.tests_passed != 1)} passed, " if c.tests_passed else ""
    return f"{tests}{c.diff_lines}-line diff, ${c.cost_usd:.2f}"


def _tie(tied: int, reason: str) -> str:
    if tied < 1:
        return ""
    others = f"{tied} equal attempt{'s' * (tied != 1)}"
    if reason and not reason.startswith(UNAVAILABLE):
        return f"; chosen by the judge over {others}: {reason}"
    return f"; earlier than {others}" + (f" ({reason})" if reason else "")


def _failure(c: Candidate) -> str:
    if c.new_failures:
        text = f"{c.new_failures} new test failure{'s' * (c.new_failures != 1)}"
        return text + (f" ({c.error})" if c.error else "")
    return c.error or "no reason given"


def _defeat(loser: Candidate, winner: Candidate, judge_reason: str) -> str:
    if not loser.passed:
        return _failure(loser) if loser.new_failures else "failed: " + _failure(loser)
    if _key(loser) < _key(winner):
        return "another attempt passed first"
    if loser.tests_passed != winner.tests_passed:
        return f"fewer tests passed ({loser.tests_passed} vs {winner.tests_passed})"
    if loser.diff_lines != winner.diff_lines:
        return f"same results, larger diff ({loser.diff_lines} vs {winner.diff_lines} lines)"
    if _key(loser) != _key(winner):
        costs = f"${loser.cost_usd:.2f} vs ${winner.cost_usd:.2f}"
        return f"same results and diff size, higher cost ({costs})"
    if judge_reason and not judge_reason.startswith(UNAVAILABLE):
        return f"tie broken by the judge: {judge_reason}"
    return "same results, the earlier attempt was kept" + (
        f" ({judge_reason})" if judge_reason else ""
    )


# -- the judge -----------------------------------------------------------------------------------


class Judge(Protocol):
    """Chooses among passing candidates that the ranking cannot tell apart."""

    async def pick(
        self, task_title: str, instructions: str, candidates: Sequence[tuple[Candidate, str]]
    ) -> tuple[int, str]:
        """The index of the chosen (candidate, diff) pair and a one-line reason. A judge that
        cannot choose returns 0 and a reason starting with :data:`UNAVAILABLE`."""
        ...

    def take_usage(self) -> Usage:
        """The tokens and cost of the calls made since the last take (none for a judge that
        calls no model)."""
        ...


# -- the selection -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    candidate: Candidate
    diff: str
    verdict: asyncio.Future[bool] | None  # None: withdrew without offering

    @property
    def waiting(self) -> bool:
        return self.verdict is not None and not self.verdict.done()


class Selection:
    """Decides which of the ``expected`` attempts of one task integrates; shared by them.

    Each attempt either :meth:`offer`\\ s its candidate and waits for the verdict, or
    :meth:`withdraw`\\ s. In mode ``all`` nothing is decided until every attempt has reported;
    in mode ``first`` the first passing offer wins at once and ``cancel_others`` is called
    (once, synchronously, after :attr:`winner` is set). One candidate at a time is told to
    integrate and must report :meth:`integrated` or :meth:`integration_failed`; losers are
    told only once the outcome is final. Ties on every criterion among passing candidates go
    to ``judge`` (mode ``all``); without one, the earlier offer wins.
    """

    def __init__(
        self,
        expected: int,
        *,
        mode: Mode = "all",
        judge: Judge | None = None,
        task_title: str = "",
        instructions: str = "",
        cancel_others: Callable[[], None] | None = None,
    ) -> None:
        if expected < 1:
            raise ValueError(f"a selection needs at least one attempt, not {expected}")
        if mode not in ("all", "first"):
            raise ValueError(f"mode must be 'all' or 'first', not {mode!r}")
        self.expected = expected
        self.mode = mode
        self.judge = judge
        self.task_title = task_title
        self.instructions = instructions
        self.cancel_others = cancel_others
        self._entries: dict[str, _Entry] = {}  # in the order they reported
        self._cancelled: set[str] = set()
        self._failed: dict[str, str] = {}  # integration errors
        self._order: list[str] | None = None  # mode all: the final ranking, the judge's pick first
        self._judging: asyncio.Task[None] | None = None
        self._judge_reason = ""
        self._current: str | None = None  # told to integrate, not yet reported back
        self._integrated: str | None = None
        self._first_won = False
        self._done = False

    @property
    def winner(self) -> str | None:
        """The attempt id that integrated or is integrating; None while undecided or if none."""
        return self._integrated or self._current

    @property
    def done(self) -> bool:
        """Whether the outcome is final: a winner integrated, or no candidate can."""
        return self._done

    async def offer(self, candidate: Candidate, diff: str = "") -> bool:
        """Offer a finished candidate and wait: True means integrate now (then report back),
        False that it lost for good. Cancelled while waiting, it counts as withdrawn."""
        self._admit(candidate.attempt_id)
        verdict = asyncio.get_running_loop().create_future()
        self._entries[candidate.attempt_id] = _Entry(candidate, diff, verdict)
        self._settle()
        try:
            return await verdict
        except asyncio.CancelledError:
            self._abandon(candidate.attempt_id)
            raise

    def withdraw(
        self, attempt_id: str, error: str, *, label: str = "", cancelled: bool = False
    ) -> None:
        """An attempt that ended without a candidate (the agent crashed, nothing was produced;
        ``cancelled`` when it was stopped) reports so, as a failed candidate."""
        self._admit(attempt_id)
        failed = Candidate(
            attempt_id=attempt_id, label=label or attempt_id, passed=False, error=one_line(error)
        )
        self._entries[attempt_id] = _Entry(failed, "", None)
        if cancelled:
            self._cancelled.add(attempt_id)
        self._settle()

    def integrated(self, attempt_id: str) -> None:
        """The candidate told to integrate did: every waiting candidate loses."""
        self._reporting(attempt_id)
        self._integrated = attempt_id
        self._finish()

    def integration_failed(self, attempt_id: str, error: str) -> None:
        """The candidate told to integrate could not: the next passing one is told to."""
        self._reporting(attempt_id)
        self._failed[attempt_id] = one_line(error) or "no reason given"
        self._settle()

    @property
    def verdicts(self) -> dict[str, str]:
        """A one-line verdict per attempt id that reported (see :func:`explain`)."""
        ranked = self._ranked()
        winner = self._entries[self.winner].candidate if self.winner else None
        verdicts = explain(winner, ranked, judge_reason=self._judge_reason)
        for c in ranked:
            entry = self._entries[c.attempt_id]
            if winner is None and not self._done and entry.waiting:
                verdicts[c.attempt_id] = "waiting for the verdict"
            if c.attempt_id in self._failed:
                verdicts[c.attempt_id] = f"lost: integration failed: {self._failed[c.attempt_id]}"
            elif c.attempt_id in self._cancelled:
                why = "another attempt passed first" if self._first_won else "stopped early"
                verdicts[c.attempt_id] = f"cancelled: {why}"
        if winner is not None and self.mode == "first":
            won = verdicts[winner.attempt_id]
            verdicts[winner.attempt_id] = won.replace("passed", "first to pass", 1)
        return verdicts

    def summary(self) -> str:
        """Every candidate and its verdict, the winner first, for events, status and the PR."""
        verdicts, ranked = self.verdicts, self._ranked()
        head = f"best of {self.expected}: "
        if self.winner is not None:
            head += f"{self._entries[self.winner].candidate.label} won"
            ranked.sort(key=lambda c: c.attempt_id != self.winner)
        elif self._done:
            head += "no attempt " + ("integrated" if self._failed else "passed")
        else:
            head += f"{len(self._entries)} of {self.expected} reported, no winner yet"
        lines = [head, *(f"  {c.label}: {verdicts[c.attempt_id]}" for c in ranked)]
        missing = self.expected - len(self._entries)
        if self._done and missing:
            lines.append(f"  {missing} more stopped before reporting")
        return "\n".join(lines)

    # -- the machinery -----------------------------------------------------------------------

    def _admit(self, attempt_id: str) -> None:
        if attempt_id in self._entries:
            raise ValueError(f"attempt {attempt_id} has already reported to this selection")
        if len(self._entries) >= self.expected:
            raise ValueError(f"attempt {attempt_id} is one more than the {self.expected} expected")

    def _reporting(self, attempt_id: str) -> None:
        if attempt_id != self._current:
            raise ValueError(f"attempt {attempt_id} was not told to integrate")
        self._current = None

    def _ranked(self) -> list[Candidate]:
        if self._order is not None:
            return [self._entries[i].candidate for i in self._order]
        return rank(e.candidate for e in self._entries.values())

    def _settle(self) -> None:
        """Move towards the outcome after any report: decide, tell the next candidate to
        integrate, or end with every waiting candidate lost."""
        if self._done:
            self._finish()  # a late offer in mode first
            return
        if self._current is not None or self._judging is not None:
            return
        undecided = self.mode == "all" and self._order is None
        if undecided and (len(self._entries) < self.expected or not self._decide()):
            return
        if not self._next() and len(self._entries) >= self.expected:
            self._finish()

    def _decide(self) -> bool:
        """Fix the final ranking (mode all); False when the judge must be asked first."""
        ranked = self._ranked()
        eligible = [c for c in ranked if self._entries[c.attempt_id].waiting and c.passed]
        tied = [c for c in eligible if _key(c) == _key(eligible[0])]
        if self.judge is not None and len(tied) > 1:
            self._judging = asyncio.get_running_loop().create_task(self._ask_judge(ranked, tied))
            return False
        self._order = [c.attempt_id for c in ranked]
        return True

    async def _ask_judge(self, ranked: list[Candidate], tied: list[Candidate]) -> None:
        assert self.judge is not None
        pairs = [(c, self._entries[c.attempt_id].diff) for c in tied]
        try:
            index, reason = await self.judge.pick(self.task_title, self.instructions, pairs)
        except Exception as exc:  # a broken judge must not hold up the task
            index, reason = 0, f"{UNAVAILABLE}: {one_line(str(exc)) or type(exc).__name__}"
        if not (isinstance(index, int) and 0 <= index < len(tied)):
            index, reason = 0, f"{UNAVAILABLE}: it chose {index!r} of {len(tied)} candidates"
        chosen = tied[index]
        if self._entries[chosen.attempt_id].waiting:  # else it was cancelled meanwhile
            self._judge_reason = one_line(reason, 300)
        self._order = [chosen.attempt_id, *(c.attempt_id for c in ranked if c is not chosen)]
        self._judging = None
        self._settle()

    def _next(self) -> bool:
        """Tell the best waiting passing candidate to integrate; False when there is none."""
        for c in self._ranked():
            entry = self._entries[c.attempt_id]
            if c.passed and entry.waiting and entry.verdict is not None:
                self._current = c.attempt_id
                entry.verdict.set_result(True)
                if self.mode == "first" and not self._first_won:
                    self._first_won = True
                    if self.cancel_others is not None:
                        self.cancel_others()
                return True
        return False

    def _finish(self) -> None:
        self._done = True
        for entry in self._entries.values():
            if entry.waiting and entry.verdict is not None:
                entry.verdict.set_result(False)

    def _abandon(self, attempt_id: str) -> None:
        """An offer cancelled while waiting: withdrawn, or, if it had just been told to
        integrate, an integration that failed."""
        verdict = self._entries[attempt_id].verdict
        assert verdict is not None
        if verdict.done() and not verdict.cancelled():
            if verdict.result() and self._current == attempt_id:
                self.integration_failed(attempt_id, "cancelled before it could integrate")
            return
        self._cancelled.add(attempt_id)
        if self._judging is not None and not any(e.waiting for e in self._entries.values()):
            self._judging.cancel()  # nobody is left to hear the verdict
            self._judging = None
        self._settle()
