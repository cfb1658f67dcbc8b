from __future__ import annotations

import pytest

from blitz.breaker import (
    GLOBAL,
    Breaker,
    BreakerBoard,
    BreakerPolicy,
    Change,
    backend_key,
    project_key,
)
from blitz.domain import BreakerRecord, BreakerState
from blitz.errors import ConfigError
from blitz.testing.clock import ManualClock

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
POLICY = BreakerPolicy(threshold=3, cooldown=60.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def opened(clock: ManualClock, key: str = "backend:x", policy: BreakerPolicy = POLICY) -> Breaker:
    breaker = Breaker(key, policy, clock)
    for _ in range(policy.threshold):
        breaker.record_failure("boom")
    assert breaker.state is OPEN
    return breaker


def test_key_helpers() -> None:
    assert GLOBAL == "global"
    assert project_key("p-1") == "project:p-1"
    assert backend_key("claude-code") == "backend:claude-code"


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"cooldown": -1.0}])
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]


def test_opens_after_threshold_consecutive_failures(clock: ManualClock) -> None:
    breaker = Breaker("backend:x", POLICY, clock)
    assert breaker.state is CLOSED
    assert breaker.record_failure("one") is None
    assert breaker.record_failure("two") is None
    assert breaker.allow()
    change = breaker.record_failure("three")
    assert change == Change(
        key="backend:x", old=CLOSED, new=OPEN, reason="3 consecutive failures: three"
    )
    assert breaker.state is OPEN
    assert not breaker.allow()
    assert breaker.last_error == "three"
    assert breaker.retry_at() == clock.monotonic() + 60.0


def test_success_while_closed_resets_the_count(clock: ManualClock) -> None:
    breaker = Breaker("backend:x", POLICY, clock)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.record_success() is None
    assert breaker.failures == 0
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CLOSED


def test_goes_half_open_when_the_cooldown_elapses(clock: ManualClock) -> None:
    breaker = opened(clock)
    clock.advance(59.9)
    assert breaker.state is OPEN
    assert breaker.poll() is None
    clock.advance(0.1)
    assert breaker.retry_at() is None
    assert breaker.state is HALF_OPEN
    assert breaker.poll() == Change(
        key="backend:x", old=OPEN, new=HALF_OPEN, reason="cooldown elapsed"
    )
    assert breaker.poll() is None


def test_half_open_admits_exactly_one_probe(clock: ManualClock) -> None:
    breaker = opened(clock)
    clock.advance(60)
    assert breaker.would_allow()
    assert breaker.allow()
    assert not breaker.would_allow()
    assert not breaker.allow()
    assert not breaker.allow()
    breaker.release_probe()
    assert breaker.allow()
    assert not breaker.allow()


def test_probe_success_closes(clock: ManualClock) -> None:
    breaker = opened(clock)
    clock.advance(60)
    assert breaker.allow()
    change = breaker.record_success()
    assert change == Change(key="backend:x", old=HALF_OPEN, new=CLOSED, reason="probe succeeded")
    assert breaker.state is CLOSED
    assert breaker.failures == 0
    assert breaker.allow() and breaker.allow()
    # It takes the full threshold again to reopen.
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CLOSED


def test_probe_failure_reopens_with_a_new_cooldown(clock: ManualClock) -> None:
    breaker = opened(clock)
    clock.advance(75)
    assert breaker.allow()
    change = breaker.record_failure("still down")
    assert change is not None
    assert (change.old, change.new) == (HALF_OPEN, OPEN)
    assert "probe failed" in change.reason and "still down" in change.reason
    assert breaker.retry_at() == clock.monotonic() + 60.0
    clock.advance(59)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()  # a fresh probe for the new half-open period


def test_outcomes_while_open_neither_close_nor_extend(clock: ManualClock) -> None:
    breaker = opened(clock)
    retry_at = breaker.retry_at()
    clock.advance(30)
    assert breaker.record_failure("late crash") is None
    assert breaker.record_success() is None
    assert breaker.state is OPEN
    assert breaker.retry_at() == retry_at
    assert breaker.last_error == "late crash"


def test_reset_forces_closed(clock: ManualClock) -> None:
    breaker = opened(clock)
    change = breaker.reset()
    assert change == Change(key="backend:x", old=OPEN, new=CLOSED, reason="reset")
    assert breaker.allow()
    assert breaker.failures == 0
    assert breaker.reset() is None


def test_to_record_of_an_open_breaker_uses_wall_time(clock: ManualClock) -> None:
    breaker = opened(clock)
    opened_wall = clock.time()
    clock.advance(10)
    assert breaker.to_record() == BreakerRecord(
        key="backend:x", state=OPEN, failures=3, opened_at=opened_wall, last_error="boom"
    )


def test_restore_open_with_remaining_cooldown(clock: ManualClock) -> None:
    record = BreakerRecord(key="backend:x", state=OPEN, failures=3, opened_at=clock.time() - 20)
    breaker = Breaker("backend:x", POLICY, clock, record)
    assert breaker.state is OPEN
    assert breaker.retry_at() == pytest.approx(clock.monotonic() + 40)
    clock.advance(39.5)
    assert not breaker.allow()
    clock.advance(0.5)
    assert breaker.allow()
    assert breaker.to_record().opened_at == record.opened_at


def test_restore_open_with_elapsed_cooldown_goes_half_open(clock: ManualClock) -> None:
    record = BreakerRecord(key="backend:x", state=OPEN, failures=3, opened_at=clock.time() - 600)
    breaker = Breaker("backend:x", POLICY, clock, record)
    assert breaker.poll() == Change(
        key="backend:x", old=OPEN, new=HALF_OPEN, reason="cooldown elapsed"
    )
    assert breaker.allow()
    assert not breaker.allow()


def test_restore_with_opened_at_in_the_future_waits_one_cooldown_at_most(
    clock: ManualClock,
) -> None:
    record = BreakerRecord(key="backend:x", state=OPEN, failures=3, opened_at=clock.time() + 3600)
    breaker = Breaker("backend:x", POLICY, clock, record)
    assert breaker.retry_at() == clock.monotonic() + 60


def test_restore_half_open_hands_out_a_fresh_probe(clock: ManualClock) -> None:
    record = BreakerRecord(key="backend:x", state=HALF_OPEN, failures=3, opened_at=1.0)
    breaker = Breaker("backend:x", POLICY, clock, record)
    assert breaker.state is HALF_OPEN
    assert breaker.poll() is None  # nothing changed since it was stored
    assert breaker.allow()
    assert not breaker.allow()


def test_restore_closed_keeps_the_count(clock: ManualClock) -> None:
    record = BreakerRecord(key="backend:x", failures=2, last_error="e")
    breaker = Breaker("backend:x", POLICY, clock, record)
    assert breaker.state is CLOSED
    change = breaker.record_failure()
    assert change is not None and change.new is OPEN


def test_round_trip_through_a_record(clock: ManualClock) -> None:
    breaker = opened(clock)
    clock.advance(45)
    again = Breaker("backend:x", POLICY, clock, breaker.to_record())
    assert again.to_record() == breaker.to_record()
    assert again.retry_at() == breaker.retry_at()


def test_restore_rejects_a_record_of_another_key(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="backend:y"):
        Breaker("backend:x", POLICY, clock, BreakerRecord(key="backend:y"))


# -- the board


def test_board_chooses_the_policy_by_key_prefix(clock: ManualClock) -> None:
    strict = BreakerPolicy(threshold=1, cooldown=5)
    lax = BreakerPolicy(threshold=10)
    board = BreakerBoard(clock, default=lax, policies={"backend": strict, "global": POLICY})
    assert board.get(backend_key("x")).policy == strict
    assert board.get(GLOBAL).policy == POLICY
    assert board.get(project_key("p")).policy == lax
    assert board.get("backend:x") is board.get("backend:x")
    assert {b.key for b in board.all()} == {"backend:x", "global", "project:p"}


def test_board_restores_records(clock: ManualClock) -> None:
    records = [
        BreakerRecord(key="backend:x", state=OPEN, failures=5, opened_at=clock.time() - 10),
        BreakerRecord(key="project:p", failures=1),
    ]
    board = BreakerBoard(clock, policies={"backend": POLICY}, records=records)
    assert board.get("backend:x").state is OPEN
    assert board.next_retry_at() == clock.monotonic() + 50
    assert board.get("project:p").failures == 1


def test_board_allow_takes_no_probe_when_another_key_refuses(clock: ManualClock) -> None:
    board = BreakerBoard(clock, default=BreakerPolicy(threshold=1, cooldown=10))
    board.record(["backend:x"], ok=False)
    clock.advance(10)  # backend:x is half-open now
    board.record(["project:p"], ok=False)  # project:p has just opened
    assert not board.allow(["global", "backend:x", "project:p"])
    assert board.get("backend:x").would_allow(), "the refused call must not use up the probe"
    assert board.admit(["global", "backend:x", "project:q"]) == ["backend:x"]
    assert not board.allow(["backend:x"])
    board.release(["backend:x"])
    assert board.allow(["backend:x", "backend:x"]), "a repeated key asks its breaker once"


def test_board_record_reports_changes_in_order(clock: ManualClock) -> None:
    board = BreakerBoard(clock, default=BreakerPolicy(threshold=2, cooldown=10))
    keys = ["global", "backend:x"]
    assert board.record(keys, ok=False, error="e1") == []
    changes = board.record(keys, ok=False, error="e2")
    assert [(c.key, c.old, c.new) for c in changes] == [
        ("global", CLOSED, OPEN),
        ("backend:x", CLOSED, OPEN),
    ]
    clock.advance(10)
    assert board.allow(keys)  # moves both to half-open without reporting it
    changes = board.record(keys, ok=True)
    assert [(c.key, c.old, c.new) for c in changes] == [
        ("global", OPEN, HALF_OPEN),
        ("global", HALF_OPEN, CLOSED),
        ("backend:x", OPEN, HALF_OPEN),
        ("backend:x", HALF_OPEN, CLOSED),
    ]
    assert board.poll() == []


def test_board_poll_reports_half_open_moves_once(clock: ManualClock) -> None:
    board = BreakerBoard(clock, default=BreakerPolicy(threshold=1, cooldown=10))
    board.record(["backend:x"], ok=False)
    clock.advance(5)
    board.record(["backend:y"], ok=False)
    assert board.poll() == []
    assert board.next_retry_at() == clock.monotonic() + 5
    clock.advance(5)
    assert [c.key for c in board.poll()] == ["backend:x"]
    assert board.poll() == []
    assert board.next_retry_at() == clock.monotonic() + 5
    clock.advance(5)
    assert [(c.key, c.new) for c in board.poll()] == [("backend:y", HALF_OPEN)]
    assert board.next_retry_at() is None


def test_board_reset(clock: ManualClock) -> None:
    board = BreakerBoard(clock, default=BreakerPolicy(threshold=1, cooldown=10))
    board.record(["global"], ok=False)
    assert [(c.old, c.new) for c in board.reset("global")] == [(OPEN, CLOSED)]
    assert board.reset("global") == []
    assert board.allow(["global"])


def test_a_failure_that_says_when_to_come_back_opens_the_breaker_that_long(
    clock: ManualClock,
) -> None:
    breaker = Breaker("provider:anthropic", POLICY, clock)
    for _ in range(POLICY.threshold - 1):
        breaker.record_failure("rate limited", retry_after=5.0)
    change = breaker.record_failure("rate limited", retry_after=90.0)
    assert change is not None and change.new is OPEN
    assert breaker.retry_at() == clock.monotonic() + 90  # not the 60 s cooldown
    clock.advance(89)
    assert breaker.state is OPEN
    clock.advance(1)
    assert breaker.state is HALF_OPEN
    # A failed probe opens it again for what the provider asked this time.
    assert breaker.allow()
    breaker.record_failure("rate limited", retry_after=2.0)
    assert breaker.retry_at() == clock.monotonic() + 2


def test_the_board_keeps_changes_noted_outside_the_engine_until_drained(
    clock: ManualClock,
) -> None:
    board = BreakerBoard(clock, default=POLICY)
    assert board.drain() == []
    changes = [board.record(["provider:x"], ok=False, error="down") for _ in range(3)]
    board.note(changes[-1])
    (opened,) = board.drain()
    assert (opened.key, opened.old, opened.new) == ("provider:x", CLOSED, OPEN)
    assert board.drain() == []
