"""The embedded agent against a scripted model server when the provider fails: rate limits,
overloads, server errors and dropped connections, retried and fed to the provider's breaker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import task
from embedded_helpers import (
    KEY,
    MODELS,
    InstantClock,
    backend,
    call,
    finish,
)

from blitz.backends.base import Outcome
from blitz.breaker import BreakerBoard, BreakerState
from blitz.testing.model_server import ModelServer


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


# -- provider failures --------------------------------------------------------------------------


async def test_an_overloaded_provider_is_retried_then_the_attempt_waits_for_it(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"error": {"status": 529}}, "times": -1})
    clock = InstantClock()
    breakers = BreakerBoard(clock)

    result = await backend(server, clock=clock, breakers=breakers, model_attempts=3).run(
        task(worktree)
    )

    # An outage, not the task's crash: the task waits for the provider and runs again.
    assert not result.ok and result.unavailable and not result.crashed
    assert result.outcome is Outcome.UNAVAILABLE and not result.config_error
    assert "failed 3 times" in result.error and "overloaded" in result.error
    assert len(server.requests) == 3
    assert len(clock.slept) == 2  # backoff between the attempts, on the injected clock
    assert breakers.get("provider:anthropic").failures == 3


async def test_a_transient_failure_mid_run_is_retried_and_the_run_goes_on(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [call("list_dir")]}},
        finish(match_tool_result="README.md"),
    )
    server.fail_next(1, 503)

    result = await backend(server).run(task(worktree))

    assert result.ok, result.error
    assert [r.status for r in server.requests] == [503, 200, 200]


async def test_an_open_breaker_ends_the_run_at_once_as_an_outage(
    server: ModelServer, worktree: Path
) -> None:
    clock = InstantClock()
    breakers = BreakerBoard(clock)
    for _ in range(5):
        breakers.record(["provider:anthropic"], ok=False, error="overloaded")
    assert breakers.get("provider:anthropic").state is BreakerState.OPEN

    result = await backend(server, clock=clock, breakers=breakers).run(task(worktree))

    assert not result.ok and result.unavailable and not result.crashed
    assert "circuit breaker" in result.error
    assert result.retry_after == pytest.approx(60.0)  # the breaker's cooldown
    assert server.requests == []


async def test_a_long_retry_after_ends_the_run_as_an_outage_that_says_how_long(
    server: ModelServer, worktree: Path
) -> None:
    server.fail_next(1, 429, retry_after=90)
    clock = InstantClock()

    result = await backend(server, clock=clock, breakers=BreakerBoard(clock)).run(task(worktree))

    assert not result.ok and result.unavailable and not result.crashed
    assert result.retry_after == 90 and "asked to wait 90s" in result.error
    assert len(server.requests) == 1 and clock.slept == []


@pytest.mark.parametrize("model", MODELS)
async def test_a_rejected_key_is_a_config_error_and_not_retried(
    server: ModelServer, worktree: Path, model: str
) -> None:
    wrong = "sk-ant-wrong-key-9876543210"

    result = await backend(server, model, key=wrong).run(task(worktree))

    assert not result.ok and not result.crashed
    assert "rejected the API key (401)" in result.config_error
    assert result.error == result.config_error
    assert len(server.requests) == 1
    assert wrong not in repr(result)


async def test_a_stream_cut_mid_response_every_time_is_an_outage(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"reply": {"text": "partial answer, then nothing", "cut_stream_after": 4}, "times": -1}
    )

    result = await backend(server).run(task(worktree))

    assert not result.ok and result.unavailable and not result.crashed
    assert len(server.requests) == 4
    # Streamed or not is the model layer's choice (pydantic-ai streams Anthropic calls only
    # without a max_tokens); a cut either way is the same outage.


async def test_a_missing_worktree_is_a_crash(server: ModelServer, tmp_path: Path) -> None:
    result = await backend(server).run(task(tmp_path / "gone"))

    assert not result.ok and result.crashed
    assert "is not a directory" in result.error
    assert server.requests == []
