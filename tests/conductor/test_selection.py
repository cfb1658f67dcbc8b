"""Best-of-N selection: candidates, ranking, verdicts, the judge and the shared Selection."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blitz.conductor.selection import (
    UNAVAILABLE,
    Candidate,
    Selection,
    candidate_of,
    count_changed_lines,
    count_passed,
    explain,
    rank,
)
from blitz.domain import Attempt, GateResult, Usage
from blitz.llm.judge import ModelJudge
from blitz.llm.models import parse_model
from blitz.testing.models import call, scripted_model

SPEC = parse_model("openai:gpt-5")  # priced: $1.25 in, $10 out per million tokens


def cand(attempt_id: str, *, passed: bool = True, **fields: Any) -> Candidate:
    return Candidate(attempt_id=attempt_id, label=f"agent {attempt_id}", passed=passed, **fields)


async def settle() -> None:
    """Let every ready task run until the loop is quiet again."""
    for _ in range(10):
        await asyncio.sleep(0)


def gate(name: str, *, passed: bool = True, tail: str = "", **fields: Any) -> GateResult:
    exit_code = 0 if passed else 1
    return GateResult(
        name=name, command=name, passed=passed, exit_code=exit_code, duration=1.0,
        output_tail=tail, **fields,
    )  # fmt: skip


# -- reading gate output and diffs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param("tests/a.py ....\n===== 12 passed, 2 skipped in 0.31s =====", 12, id="pytest"),
        pytest.param("..F\n3 failed, 9 passed, 1 warning in 1.20s", 9, id="pytest-q"),
        pytest.param("....\n-----\nRan 5 tests in 0.002s\n\nOK", 5, id="unittest"),
        pytest.param("Ran 5 tests in 0.002s\n\nOK (skipped=1)", 4, id="unittest-skipped"),
        pytest.param(
            "Ran 6 tests in 0.1s\n\nFAILED (failures=1, errors=2)", 3, id="unittest-failed"
        ),
        pytest.param(
            "PASS src/a.test.js\nTest Suites: 1 failed, 2 passed, 3 total\n"
            "Tests:       1 failed, 12 passed, 13 total\nSnapshots:   2 passed, 2 total",
            12,
            id="jest",
        ),
        pytest.param(
            " \x1b[2m Test Files \x1b[22m \x1b[1m\x1b[32m2 passed\x1b[39m\x1b[22m (2)\n"
            " \x1b[2m      Tests \x1b[22m \x1b[1m\x1b[32m7 passed\x1b[39m\x1b[22m (7)",
            7,
            id="vitest-colour",
        ),
        pytest.param(
            "ok  \texample.com/a\t0.012s\nok  \texample.com/b\t(cached)\n?   \texample.com/c",
            2,
            id="go",
        ),
        pytest.param(
            "=== RUN   TestA\n--- PASS: TestA (0.00s)\n    --- PASS: TestA/sub (0.00s)\n"
            "--- PASS: TestB (0.00s)\nPASS\nok  \texample.com/a\t0.01s",
            3,
            id="go-verbose",
        ),
        pytest.param(
            "test result: ok. 4 passed; 0 failed; 0 ignored\n"
            "test result: ok. 2 passed; 0 failed; 1 ignored\n"
            "test result: ok. 0 passed; 0 failed; 0 ignored",
            6,
            id="cargo",
        ),
        pytest.param("Compiling blitz v0.1\nerror[E0425]: cannot find value", 0, id="unknown"),
        pytest.param("", 0, id="empty"),
    ],
)
def test_count_passed_reads_each_runner(output: str, expected: int) -> None:
    assert count_passed(output) == expected


def test_count_changed_lines_counts_hunk_lines_not_headers() -> None:
    diff = (
        "diff --git a/q.sql b/q.sql\n"
        "--- a/q.sql\n"
        "+++ b/q.sql\n"
        "@@ -1,3 +1,3 @@\n"
        " select 1;\n"
        "--- a comment that starts with two dashes\n"
        "+++ not a header either\n"
        " select 2;\n"
        "diff --git a/new.py b/new.py\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        "+++ b/new.py\n"
        "@@ -0,0 +1 @@\n"
        "+x = 1\n"
        "\\ No newline at end of file\n"
    )
    assert count_changed_lines(diff) == 3
    assert count_changed_lines("") == 0
    truncated = "@@ -1,9 +1,9 @@\n-a\n+b\n[... diff truncated at 20 characters of 900 bytes ...]\n"
    assert count_changed_lines(truncated) == 2


def test_candidate_of_scores_an_attempt() -> None:
    attempt = Attempt(
        id="a-1", goal_id="g", task_id="t", number=1,
        gates=(
            gate("lint", passed=False, preexisting=True),  # not blamed
            gate("build"),
            gate("test", tail="== 7 passed in 0.1s =="),
            gate("check:command:make check", tail="Ran 3 tests in 0.1s\n\nOK"),
        ),
        diff="@@ -1 +1 @@\n-a\n+b\n",
        diff_stat=" a.py | 30 ++++++++++----\n 1 file changed, 20 insertions(+), 10 deletions(-)\n",
        usage=Usage(cost_usd=0.25),
    )  # fmt: skip
    got = candidate_of(attempt, label="codex #1", passed=True, error="ignored when it passed")
    assert got == Candidate(
        attempt_id="a-1", label="codex #1", passed=True, new_failures=0, tests_passed=10,
        diff_lines=30, cost_usd=0.25, error="",
    )  # fmt: skip
    # Without a stat line (a git-free run), the diff itself is counted.
    assert candidate_of(attempt.evolve(diff_stat=""), label="x", passed=True).diff_lines == 2


def test_candidate_of_blames_failing_gates_whatever_the_caller_says() -> None:
    attempt = Attempt(
        id="a-2", goal_id="g", task_id="t", number=2,
        gates=(
            gate("build", passed=False),  # no test ids: counts 1
            gate("test", passed=False, new_failures=("t::a", "t::b"), tail="2 failed, 5 passed"),
        ),
        error="gate build failed (exit 1): make\n" + "x" * 500,
    )  # fmt: skip
    got = candidate_of(attempt, label="x", passed=True)
    assert not got.passed
    assert got.new_failures == 3 and got.tests_passed == 5
    assert got.error == "gate build failed (exit 1): make"
    empty = Attempt(id="a-3", goal_id="g", task_id="t", number=3)
    why = "   \nthe agent changed no files " + "y" * 300
    nothing = candidate_of(empty, label="x", passed=False, error=why)
    assert not nothing.passed and nothing.new_failures == 0
    assert nothing.error.startswith("the agent changed no files") and len(nothing.error) == 160


# -- ranking -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        (dict(passed=True, tests_passed=0, diff_lines=900), dict(passed=False, tests_passed=99)),
        (dict(passed=False, new_failures=1), dict(passed=False, new_failures=2)),
        (dict(tests_passed=12, diff_lines=90), dict(tests_passed=11, diff_lines=1)),
        (dict(diff_lines=8, cost_usd=9.0), dict(diff_lines=40, cost_usd=0.0)),
        (dict(cost_usd=0.02), dict(cost_usd=0.05)),
    ],
    ids=["passing", "new-failures", "tests-passed", "diff", "cost"],
)
def test_rank_orders_by_each_criterion_in_turn(
    better: dict[str, Any], worse: dict[str, Any]
) -> None:
    a = cand("a", **{"passed": True, **worse})
    b = cand("b", **{"passed": True, **better})
    assert rank([a, b]) == [b, a]
    assert rank([b, a]) == [b, a]


def test_rank_keeps_the_earlier_of_equals_and_costs_compare_in_cents() -> None:
    a, b = cand("a", cost_usd=0.021), cand("b", cost_usd=0.024)
    assert rank([a, b]) == [a, b] and rank([b, a]) == [b, a]


candidates = st.builds(
    Candidate,
    attempt_id=st.just(""),
    label=st.just(""),
    passed=st.booleans(),
    new_failures=st.integers(0, 4),
    tests_passed=st.integers(0, 4),
    diff_lines=st.integers(0, 4),
    cost_usd=st.sampled_from([0.0, 0.01, 0.014, 0.016, 0.02, 1.5]),
)


def spec_key(c: Candidate) -> tuple[int, int, int, int, int]:
    """The documented order, stated independently of the module's own key."""
    return (
        0 if c.passed else 1,
        c.new_failures,
        -c.tests_passed,
        c.diff_lines,
        round(c.cost_usd * 100),
    )


@given(st.lists(candidates, max_size=8))
def test_rank_is_a_stable_total_order_with_passing_first(drawn: list[Candidate]) -> None:
    pool = [Candidate(**{**_fields(c), "attempt_id": f"c{i}"}) for i, c in enumerate(drawn)]
    ranked = rank(pool)
    assert sorted(c.attempt_id for c in ranked) == sorted(c.attempt_id for c in pool)
    position = {c.attempt_id: i for i, c in enumerate(pool)}
    for first, second in itertools.pairwise(ranked):
        assert spec_key(first) <= spec_key(second)
        if spec_key(first) == spec_key(second):
            assert position[first.attempt_id] < position[second.attempt_id]
    seen_failing = False
    for c in ranked:
        seen_failing = seen_failing or not c.passed
        assert not (seen_failing and c.passed), "a passing candidate ranked below a failing one"
    assert rank(ranked) == ranked
    assert [spec_key(c) for c in rank(reversed(pool))] == [spec_key(c) for c in ranked]


def _fields(c: Candidate) -> dict[str, Any]:
    return {name: getattr(c, name) for name in Candidate.__dataclass_fields__}


# -- verdicts ------------------------------------------------------------------------------------


def test_explain_says_why_the_winner_won_and_each_loser_lost() -> None:
    win = cand("w", tests_passed=12, diff_lines=8, cost_usd=0.02)
    pool = [
        win,
        cand("fewer", tests_passed=10, diff_lines=8, cost_usd=0.02),
        cand("larger", tests_passed=12, diff_lines=40, cost_usd=0.02),
        cand("dearer", tests_passed=12, diff_lines=8, cost_usd=0.05),
        cand("same", tests_passed=12, diff_lines=8, cost_usd=0.02),
        cand("broke", passed=False, new_failures=1, error="gate test failed (exit 1)"),
        cand("gave-up", passed=False, error="the agent gave up"),
    ]
    assert explain(win, pool) == {
        "w": "won: passed all gates, 12 tests passed, 8-line diff, $0.02; "
        "earlier than 1 equal attempt",
        "fewer": "lost: fewer tests passed (10 vs 12)",
        "larger": "lost: same results, larger diff (40 vs 8 lines)",
        "dearer": "lost: same results and diff size, higher cost ($0.05 vs $0.02)",
        "same": "lost: same results, the earlier attempt was kept",
        "broke": "lost: 1 new test failure (gate test failed (exit 1))",
        "gave-up": "lost: failed: the agent gave up",
    }
    judged = explain(win, pool, judge_reason="handles the empty case")
    assert judged["same"] == "lost: tie broken by the judge: handles the empty case"
    assert judged["w"].endswith(
        "; chosen by the judge over 1 equal attempt: handles the empty case"
    )
    fallback = explain(win, pool[:1] + pool[4:5], judge_reason=f"{UNAVAILABLE}: 401")
    assert (
        fallback["same"] == f"lost: same results, the earlier attempt was kept ({UNAVAILABLE}: 401)"
    )


def test_explain_without_a_winner_lists_the_failures() -> None:
    pool = [cand("a", passed=False, new_failures=2), cand("b", passed=False, error="timed out")]
    assert explain(None, pool) == {"a": "failed: 2 new test failures", "b": "failed: timed out"}
    assert explain(cand("w", diff_lines=1), [cand("w", diff_lines=1)]) == {
        "w": "won: passed all gates, 1-line diff, $0.00"
    }


# -- the selection: mode all ---------------------------------------------------------------------


async def test_mode_all_waits_for_everyone_then_the_best_integrates_and_the_rest_lose() -> None:
    sel = Selection(3)
    a = asyncio.create_task(sel.offer(cand("a", tests_passed=5, diff_lines=40)))
    b = asyncio.create_task(sel.offer(cand("b", passed=False, new_failures=1, error="tests")))
    await settle()
    assert not a.done() and not b.done() and sel.winner is None
    assert sel.verdicts["a"] == "waiting for the verdict"
    c = asyncio.create_task(sel.offer(cand("c", tests_passed=5, diff_lines=8), "diff of c"))
    await settle()
    assert c.done() and c.result() is True and sel.winner == "c"
    assert not a.done() and not b.done(), "losers hear nothing until the winner integrated"
    sel.integrated("c")
    await settle()
    assert (a.result(), b.result()) == (False, False) and sel.done
    assert sel.verdicts == {
        "c": "won: passed all gates, 5 tests passed, 8-line diff, $0.00",
        "a": "lost: same results, larger diff (40 vs 8 lines)",
        "b": "lost: 1 new test failure (tests)",
    }
    assert sel.summary() == (
        "best of 3: agent c won\n"
        "  agent c: won: passed all gates, 5 tests passed, 8-line diff, $0.00\n"
        "  agent a: lost: same results, larger diff (40 vs 8 lines)\n"
        "  agent b: lost: 1 new test failure (tests)"
    )


async def test_a_failed_integration_hands_the_win_to_the_runner_up() -> None:
    sel = Selection(3)
    best = asyncio.create_task(sel.offer(cand("best", diff_lines=1)))
    second = asyncio.create_task(sel.offer(cand("second", diff_lines=2)))
    sel.withdraw("crashed", "backend error: boom\ntraceback...", label="agent crashed")
    await settle()
    assert best.result() is True and not second.done()
    sel.integration_failed("best", "conflicts with work integrated meanwhile in: a.py")
    await settle()
    assert second.result() is True and sel.winner == "second" and not sel.done
    sel.integrated("second")
    assert sel.done and sel.verdicts == {
        "second": "won: passed all gates, 2-line diff, $0.00",
        "best": "lost: integration failed: conflicts with work integrated meanwhile in: a.py",
        "crashed": "lost: failed: backend error: boom",
    }


async def test_when_every_integration_fails_everyone_loses() -> None:
    sel = Selection(2)
    a = asyncio.create_task(sel.offer(cand("a")))
    b = asyncio.create_task(sel.offer(cand("b", passed=False, error="lint")))
    await settle()
    assert a.result() is True
    sel.integration_failed("a", "the goal branch kept moving")
    await settle()
    assert b.result() is False and sel.done and sel.winner is None
    assert sel.summary().splitlines()[0] == "best of 2: no attempt integrated"


async def test_no_passing_candidate_means_every_offer_loses() -> None:
    sel = Selection(3)
    a = asyncio.create_task(sel.offer(cand("a", passed=False, new_failures=2)))
    b = asyncio.create_task(sel.offer(cand("b", passed=False, error="timed out")))
    await settle()
    sel.withdraw("c", "the agent changed no files")
    await settle()
    assert (a.result(), b.result()) == (False, False) and sel.winner is None and sel.done
    assert sel.verdicts["c"] == "failed: the agent changed no files"
    assert sel.summary().splitlines()[0] == "best of 3: no attempt passed"


async def test_an_offer_cancelled_while_waiting_counts_as_withdrawn() -> None:
    sel = Selection(3)
    best = asyncio.create_task(sel.offer(cand("best", diff_lines=1)))
    await settle()
    best.cancel()
    await settle()
    assert best.cancelled()
    other = asyncio.create_task(sel.offer(cand("other", diff_lines=5)))
    sel.withdraw("gone", "crashed")
    await settle()
    assert other.result() is True, "the cancelled, better candidate is skipped"
    sel.integrated("other")
    assert sel.verdicts["best"] == "cancelled: stopped early"


async def test_cancelled_just_after_being_told_to_integrate_passes_the_win_on() -> None:
    sel = Selection(3)
    best = asyncio.create_task(sel.offer(cand("best", diff_lines=1)))
    second = asyncio.create_task(sel.offer(cand("second", diff_lines=2)))
    await settle()
    sel.withdraw("third", "crashed")  # decides: best is told True ...
    best.cancel()  # ... and cancelled before it could act on it
    await settle()
    assert best.cancelled()
    assert second.result() is True and sel.winner == "second"
    assert sel.verdicts["best"] == "lost: integration failed: cancelled before it could integrate"


async def test_reports_that_break_the_protocol_are_refused() -> None:
    sel = Selection(1)
    won = await sel.offer(cand("a"))
    assert won is True
    with pytest.raises(ValueError, match="already reported"):
        sel.withdraw("a", "again")
    with pytest.raises(ValueError, match="one more than the 1 expected"):
        await sel.offer(cand("b"))
    with pytest.raises(ValueError, match="not told to integrate"):
        sel.integrated("b")
    with pytest.raises(ValueError):
        Selection(0)
    with pytest.raises(ValueError):
        Selection(2, mode="best")  # type: ignore[arg-type]


# -- the selection: mode first -------------------------------------------------------------------


async def test_mode_first_crowns_the_first_passing_offer_and_cancels_the_others() -> None:
    seen: list[str | None] = []
    sel = Selection(4, mode="first")
    sel.cancel_others = lambda: seen.append(sel.winner)
    failing = asyncio.create_task(sel.offer(cand("failing", passed=False, error="lint")))
    await settle()
    assert not failing.done() and seen == []
    assert await sel.offer(cand("first", diff_lines=50)) is True
    assert seen == ["first"], "called once, with the winner already known"
    late = asyncio.create_task(sel.offer(cand("late", diff_lines=1)))  # better, but too late
    await settle()
    assert not late.done() and not failing.done()
    sel.integrated("first")
    await settle()
    assert (failing.result(), late.result()) == (False, False)
    sel.withdraw("stopped", "cancelled", cancelled=True)
    assert seen == ["first"]
    assert sel.verdicts == {
        "first": "won: first to pass all gates, 50-line diff, $0.00",
        "late": "lost: another attempt passed first",
        "failing": "lost: failed: lint",
        "stopped": "cancelled: another attempt passed first",
    }


async def test_mode_first_runner_up_after_a_failed_integration() -> None:
    sel = Selection(3, mode="first", cancel_others=lambda: None)
    assert await sel.offer(cand("first")) is True
    sel.integration_failed("first", "conflict")
    await settle()
    assert sel.winner is None and not sel.done, "more attempts may still pass"
    nope = asyncio.create_task(sel.offer(cand("nope", passed=False)))
    await settle()
    assert not nope.done()
    assert await sel.offer(cand("next")) is True
    sel.integrated("next")
    await settle()
    assert nope.result() is False


async def test_mode_first_with_nobody_passing_ends_when_everyone_reported() -> None:
    sel = Selection(2, mode="first")
    a = asyncio.create_task(sel.offer(cand("a", passed=False)))
    await settle()
    sel.withdraw("b", "crashed")
    await settle()
    assert a.result() is False and sel.done and sel.winner is None


async def test_the_summary_counts_attempts_stopped_before_they_reported() -> None:
    sel = Selection(3, mode="first")
    assert await sel.offer(cand("a", tests_passed=1, diff_lines=2, cost_usd=0.5)) is True
    sel.integrated("a")
    assert sel.summary() == (
        "best of 3: agent a won\n"
        "  agent a: won: first to pass all gates, 1 test passed, 2-line diff, $0.50\n"
        "  2 more stopped before reporting"
    )


# -- the judge -----------------------------------------------------------------------------------


class FakeJudge:
    def __init__(self, answer: tuple[Any, str] | Exception) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str, list[tuple[str, str]]]] = []

    async def pick(
        self, task_title: str, instructions: str, candidates: Sequence[tuple[Candidate, str]]
    ) -> tuple[int, str]:
        self.asked.append((task_title, instructions, [(c.attempt_id, d) for c, d in candidates]))
        await asyncio.sleep(0)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def take_usage(self) -> Usage:
        return Usage()


async def offer_tie(sel: Selection) -> dict[str, asyncio.Task[bool]]:
    pool = {
        "a": cand("a", tests_passed=3, diff_lines=4),
        "b": cand("b", tests_passed=3, diff_lines=4),
        "worse": cand("worse", tests_passed=3, diff_lines=9),
        "failing": cand("failing", passed=False),
    }
    tasks = {i: asyncio.create_task(sel.offer(c, f"diff {i}")) for i, c in pool.items()}
    await settle()
    return tasks


async def test_the_judge_breaks_an_exact_tie_between_passing_candidates() -> None:
    judge = FakeJudge((1, "b handles the empty input"))
    sel = Selection(4, judge=judge, task_title="Add a limiter", instructions="Use a bucket.")
    tasks = await offer_tie(sel)
    assert judge.asked == [("Add a limiter", "Use a bucket.", [("a", "diff a"), ("b", "diff b")])]
    assert tasks["b"].result() is True and sel.winner == "b"
    sel.integrated("b")
    await settle()
    assert not any(tasks[i].result() for i in ("a", "worse", "failing"))
    assert sel.verdicts["a"] == "lost: tie broken by the judge: b handles the empty input"
    assert sel.verdicts["b"].endswith(
        "chosen by the judge over 1 equal attempt: b handles the empty input"
    )
    assert sel.summary().splitlines()[1].startswith("  agent b: won")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (RuntimeError("the judge fell over\nTraceback"), f"{UNAVAILABLE}: the judge fell over"),
        ((7, "out of range"), f"{UNAVAILABLE}: it chose 7 of 2 candidates"),
        (("b", "not an index"), f"{UNAVAILABLE}: it chose 'b' of 2 candidates"),
    ],
    ids=["raises", "out-of-range", "not-an-int"],
)
async def test_a_judge_that_fails_leaves_the_ranking_order(answer: Any, reason: str) -> None:
    sel = Selection(4, judge=FakeJudge(answer))
    tasks = await offer_tie(sel)
    assert tasks["a"].result() is True and sel.winner == "a"
    assert sel.verdicts["b"] == f"lost: same results, the earlier attempt was kept ({reason})"


async def test_no_judge_is_asked_without_a_tie_or_in_mode_first() -> None:
    judge = FakeJudge((1, "unused"))
    sel = Selection(2, judge=judge)
    a = asyncio.create_task(sel.offer(cand("a", diff_lines=1)))
    b = asyncio.create_task(sel.offer(cand("b", diff_lines=2)))
    await settle()
    assert a.result() is True and not b.done() and judge.asked == []
    sel.integrated("a")
    first = Selection(2, mode="first", judge=judge)
    assert await first.offer(cand("x")) is True and judge.asked == []


async def test_a_judge_nobody_waits_for_any_more_is_cancelled() -> None:
    stopped = asyncio.Event()

    class Hanging(FakeJudge):
        async def pick(self, *args: Any) -> tuple[int, str]:
            try:
                await asyncio.Event().wait()
            finally:
                stopped.set()
            raise AssertionError("unreachable")

    sel = Selection(4, judge=Hanging((0, "")))
    tasks = await offer_tie(sel)
    for task in tasks.values():
        task.cancel()
    await settle()
    assert stopped.is_set() and all(t.cancelled() for t in tasks.values())


# -- the model judge -----------------------------------------------------------------------------


async def test_the_model_judge_breaks_a_tie_inside_a_selection() -> None:
    seen = scripted_model([call("choose", choice=2, reason="b is simpler")])
    judge = ModelJudge(seen.model, spec=SPEC)
    sel = Selection(4, judge=judge, task_title="Add a limiter")
    tasks = await offer_tie(sel)
    assert await tasks["b"] is True
    sel.integrated("b")
    assert await tasks["a"] is False
    assert sel.verdicts["a"] == "lost: tie broken by the judge: b is simpler"
    assert judge.take_usage().input_tokens == 100
