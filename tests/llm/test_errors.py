from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from pydantic import BaseModel
from pydantic_ai import Agent

from blitz.breaker import BreakerBoard, BreakerPolicy
from blitz.domain import BreakerState
from blitz.errors import ConfigError, RunError
from blitz.llm.breakers import ProviderUnavailable, breaker_key
from blitz.llm.errors import (
    ModelOutputError,
    ProviderConfigError,
    ProviderDown,
    ProviderError,
    ProviderFailure,
    classify,
    parse_retry_after,
)
from blitz.llm.retries import RetryStats, call_with_retries
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ErrorReply, ModelServer, Reply
from blitz.waiting import Outage, RetryPolicy

from . import ANTHROPIC_KEY, anthropic_error, model_for, openai_error


class WatchedClock(ManualClock):
    """A ManualClock that records every wait; with ``auto`` it also lets the wait pass at once."""

    def __init__(self, *, auto: bool = True) -> None:
        super().__init__()
        self.auto = auto
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.auto:
            self.advance(seconds)
            await asyncio.sleep(0)
        else:
            await super().sleep(seconds)


async def failure_of(model: Any, **run: Any) -> BaseException:
    """The exception a real agent run against ``model`` raises."""
    async with model:
        try:
            await Agent(model, **run).run("hi")
        except Exception as exc:
            return exc
    raise AssertionError("the run succeeded")


def run_once(fake: ModelServer, provider: str, **config: Any) -> Callable[[], Awaitable[str]]:
    """One logical call: an agent run against ``fake`` with a blitz-built model."""
    model = model_for(fake, provider, **config)

    async def call() -> str:
        async with model:
            result = await Agent(model).run("hi")
        return result.output

    return call


# --- classify: real failures from real runs ----------------------------------------------------

CREDIT = "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing."

CASES = [
    # provider, reply, kind, status, reason
    (
        "anthropic",
        anthropic_error(429, "rate_limit_error", "slow down"),
        "transient",
        429,
        "rate_limit",
    ),
    (
        "anthropic",
        anthropic_error(529, "overloaded_error", "Overloaded"),
        "transient",
        529,
        "overloaded",
    ),
    ("anthropic", anthropic_error(500, "api_error", "Internal"), "transient", 500, "server"),
    (
        "anthropic",
        anthropic_error(503, "api_error", "unavailable"),
        "transient",
        503,
        "unavailable",
    ),
    (
        "anthropic",
        Reply(error=ErrorReply(status=502, body="<html>bad gateway</html>")),
        "transient",
        502,
        "server",
    ),
    (
        "anthropic",
        anthropic_error(400, "invalid_request_error", "bad field"),
        "config",
        400,
        "rejected",
    ),
    (
        "anthropic",
        anthropic_error(401, "authentication_error", "invalid x-api-key"),
        "config",
        401,
        "auth",
    ),
    (
        "anthropic",
        anthropic_error(403, "permission_error", "no access"),
        "config",
        403,
        "permission",
    ),
    ("anthropic", anthropic_error(404, "not_found_error", "model: x"), "config", 404, "not_found"),
    ("anthropic", anthropic_error(400, "invalid_request_error", CREDIT), "config", 400, "billing"),
    (
        "anthropic",
        anthropic_error(402, "billing_error", "payment required"),
        "config",
        402,
        "billing",
    ),
    (
        "anthropic",
        anthropic_error(400, "invalid_request_error", "prompt is too long: 300000 tokens"),
        "other",
        400,
        "context_window",
    ),
    ("anthropic", Reply(cut_midway=True), "transient", None, "connection"),
    (
        "openai",
        openai_error(429, "rate_limit_exceeded", "Rate limit reached"),
        "transient",
        429,
        "rate_limit",
    ),
    (
        "openai",
        openai_error(
            429, "insufficient_quota", "You exceeded your current quota", "insufficient_quota"
        ),
        "config",
        429,
        "billing",
    ),
    (
        "openai",
        openai_error(401, "invalid_api_key", "Incorrect API key provided"),
        "config",
        401,
        "auth",
    ),
    (
        "openai",
        openai_error(500, None, "The server had an error", "server_error"),
        "transient",
        500,
        "server",
    ),
    ("openai", Reply(cut_midway=True), "transient", None, "connection"),
    (
        "openai-compatible",
        openai_error(403, None, "Monthly spending limit reached for this key", "forbidden"),
        "config",
        403,
        "billing",
    ),
    (
        "ollama",
        openai_error(503, None, "model is loading", "server_error"),
        "transient",
        503,
        "unavailable",
    ),
]


@pytest.mark.parametrize(("provider", "reply", "kind", "status", "reason"), CASES)
async def test_classify_real_failures(
    fake: ModelServer, provider: str, reply: Reply, kind: str, status: int | None, reason: str
) -> None:
    fake.add(reply)
    exc = await failure_of(model_for(fake, provider))
    failure = classify(exc, provider=provider)
    assert (failure.kind, failure.status, failure.reason) == (kind, status, reason), failure
    assert len(fake.requests) == 1  # the SDK did not retry behind our back


async def test_a_timeout_is_transient(fake: ModelServer) -> None:
    fake.add(Reply(text="done", delay=2.0))
    exc = await failure_of(model_for(fake, "openai-compatible", timeout=0.3))
    failure = classify(exc)
    assert (failure.kind, failure.reason) == ("transient", "timeout")


async def test_a_refused_connection_is_transient() -> None:
    with ModelServer() as gone:
        model = model_for(gone, "openai")
    exc = await failure_of(model)  # the server has stopped listening
    assert classify(exc).kind == "transient"


async def test_retry_after_is_read_in_seconds_milliseconds_and_as_a_date(
    fake: ModelServer,
) -> None:
    now = 1_800_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    for headers, expected in (
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"Retry-After": date}, 30.0),
    ):
        fake.add(anthropic_error(429, "rate_limit_error", "slow down", headers=headers))
        exc = await failure_of(model_for(fake, "anthropic"))
        assert classify(exc, now=now).retry_after == pytest.approx(expected)


def test_parse_retry_after_ignores_what_it_cannot_read() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "-3"}) is None
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None  # no now
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=2e9) == 0.0


async def test_the_config_message_says_what_to_fix(fake: ModelServer) -> None:
    fake.add(anthropic_error(401, "authentication_error", f"invalid x-api-key {ANTHROPIC_KEY}"))
    failure = classify(await failure_of(model_for(fake, "anthropic")), provider="anthropic")
    assert failure.message.startswith(
        "Anthropic rejected the API key (401): check ANTHROPIC_API_KEY"
    )
    assert ANTHROPIC_KEY not in failure.message  # redacted


class Answer(BaseModel):
    value: int


async def test_output_that_stays_invalid_is_bad_output(fake: ModelServer) -> None:
    # The model answers in text, never calling the output tool: pydantic-ai re-asks, then gives up.
    exc = await failure_of(model_for(fake, "anthropic"), output_type=Answer, retries=1)
    failure = classify(exc)
    assert failure.kind == "bad_output", failure
    assert len(fake.requests) == 2


async def test_sdk_and_transport_exceptions_are_classified_too(fake: ModelServer) -> None:
    fake.add(anthropic_error(429, "rate_limit_error", "slow down", headers={"retry-after": "3"}))
    client = anthropic.AsyncAnthropic(
        api_key="k" * 20, base_url=fake.anthropic_base_url, max_retries=0
    )
    try:
        with pytest.raises(anthropic.RateLimitError) as info:
            await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=10,
                messages=[{"role": "user", "content": "hi"}],
            )
    finally:
        await client.close()
    assert classify(info.value) == ProviderFailure(
        kind="transient",
        status=429,
        retry_after=3.0,
        reason="rate_limit",
        message="rate limited (429): slow down",
    )
    fake.add(openai_error(429, "insufficient_quota", "You exceeded your current quota"))
    oai = openai.AsyncOpenAI(api_key="k" * 20, base_url=fake.openai_base_url, max_retries=0)
    try:
        with pytest.raises(openai.RateLimitError) as quota:
            await oai.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
    finally:
        await oai.close()
    assert classify(quota.value).reason == "billing"
    request = httpx2.Request("POST", "http://127.0.0.1/x")
    response = httpx2.Response(401, request=request, json={"error": {"message": "no"}})
    status_error = httpx2.HTTPStatusError("401", request=request, response=response)
    assert classify(status_error, provider="openai").message.endswith("check OPENAI_API_KEY (no)")
    assert classify(httpx2.ConnectError("refused")).kind == "transient"
    assert classify(httpx2.ReadTimeout("slow")).reason == "timeout"
    assert classify(TimeoutError()).kind == "transient"
    assert classify(ValueError("a bug")).kind == "other"


# --- call_with_retries -------------------------------------------------------------------------


def breakers_for(clock: ManualClock, threshold: int = 3) -> BreakerBoard:
    return BreakerBoard(
        clock, policies={"provider": BreakerPolicy(threshold=threshold, cooldown=60)}
    )


async def test_transient_failures_are_retried_until_the_call_succeeds(fake: ModelServer) -> None:
    fake.add(
        anthropic_error(503, "api_error", "unavailable"),
        anthropic_error(529, "overloaded_error", "Overloaded"),
        Reply(text="finally"),
    )
    clock = WatchedClock()
    board = breakers_for(clock)
    stats = RetryStats()
    result = await call_with_retries(
        run_once(fake, "anthropic"),
        clock=clock,
        breakers=board,
        provider="anthropic",
        base_delay=2.0,
        stats=stats,
        jitter=lambda: 0.0,
    )
    assert result == "finally"
    assert len(fake.requests) == 3  # exactly one HTTP request per attempt
    assert stats.retries == 2
    assert clock.waits == [1.0, 2.0]  # base_delay * 2**n, halved by the (zero) jitter
    assert stats.waited == 3.0
    assert [f.status for f in stats.failures] == [503, 529]
    assert board.get(breaker_key("anthropic")).failures == 0  # the success reset the count


async def test_retry_after_is_honoured_on_the_clock(fake: ModelServer) -> None:
    fake.add(anthropic_error(429, "rate_limit_error", "slow down", headers={"retry-after": "7"}))
    clock = WatchedClock(auto=False)
    task = asyncio.create_task(
        call_with_retries(
            run_once(fake, "anthropic"), clock=clock, breakers=None, provider="anthropic"
        )
    )
    while not clock.waits:
        await asyncio.sleep(0.01)
    assert clock.waits == [7.0]
    clock.advance(6.9)
    await asyncio.sleep(0.1)
    assert not task.done() and len(fake.requests) == 1
    clock.advance(0.2)
    assert await asyncio.wait_for(task, 10) == "done"
    assert len(fake.requests) == 2


async def test_a_rejected_key_is_not_retried(fake: ModelServer) -> None:
    fake.add(anthropic_error(401, "authentication_error", "invalid x-api-key"))
    clock = WatchedClock()
    board = breakers_for(clock, threshold=1)
    with pytest.raises(ProviderConfigError) as info:
        await call_with_retries(
            run_once(fake, "anthropic"), clock=clock, breakers=board, provider="anthropic"
        )
    assert isinstance(info.value, ConfigError)
    assert "Anthropic rejected the API key (401): check ANTHROPIC_API_KEY" in str(info.value)
    assert len(fake.requests) == 1 and clock.waits == []
    # The provider answered: that is no outage.
    assert board.get(breaker_key("anthropic")).state is BreakerState.CLOSED


async def test_running_out_of_attempts_is_a_retryable_run_error(fake: ModelServer) -> None:
    fake.add(*[anthropic_error(500, "api_error", "Internal")] * 4)
    clock = WatchedClock()
    stats = RetryStats()
    with pytest.raises(ProviderError) as info:
        await call_with_retries(
            run_once(fake, "anthropic"),
            clock=clock,
            breakers=None,
            provider="anthropic",
            max_attempts=4,
            stats=stats,
        )
    assert isinstance(info.value, RunError) and info.value.retryable
    assert "Anthropic failed 4 times" in str(info.value) and "(500)" in str(info.value)
    assert info.value.attempts == 4
    assert len(fake.requests) == 4
    assert stats.retries == 3 and len(clock.waits) == 3
    assert all(0.5 * 2**n <= wait < 2**n for n, wait in enumerate(clock.waits))


async def test_a_wait_longer_than_max_delay_ends_the_call_as_an_outage(fake: ModelServer) -> None:
    fake.add(
        anthropic_error(429, "rate_limit_error", "daily limit", headers={"retry-after": "3600"})
    )
    clock = WatchedClock()
    with pytest.raises(ProviderDown, match="asked to wait 3600s") as info:
        await call_with_retries(
            run_once(fake, "anthropic"), clock=clock, breakers=None, provider="anthropic"
        )
    # An outage to wait out for as long as the provider said, not a failure of the work.
    assert isinstance(info.value, Outage) and isinstance(info.value, ProviderError)
    assert info.value.retryable and info.value.retry_after == 3600
    assert len(fake.requests) == 1 and clock.waits == []


async def test_running_out_of_attempts_on_an_outage_says_to_wait(fake: ModelServer) -> None:
    fake.add(*[anthropic_error(529, "overloaded_error", "Overloaded")] * 2)
    clock = WatchedClock()
    with pytest.raises(ProviderDown, match="failed 2 times") as info:
        await call_with_retries(
            run_once(fake, "anthropic"),
            clock=clock,
            breakers=None,
            provider="anthropic",
            policy=RetryPolicy(max_attempts=2),
        )
    assert isinstance(info.value, Outage) and info.value.retry_after is None


async def test_breaker_changes_are_kept_on_the_board_without_stats(fake: ModelServer) -> None:
    fake.add(
        *[anthropic_error(429, "rate_limit_error", "slow down", headers={"retry-after": "5"})] * 3
    )
    clock = WatchedClock()
    board = breakers_for(clock, threshold=3)
    with pytest.raises(ProviderDown):
        await call_with_retries(
            run_once(fake, "anthropic"), clock=clock, breakers=board, provider="anthropic",
            max_attempts=3,
        )  # fmt: skip
    (opened,) = board.drain()
    assert (opened.key, opened.new) == (breaker_key("anthropic"), BreakerState.OPEN)
    assert board.drain() == []
    # Opened by a provider that asked for 5 s, it stays open 5 s rather than its cooldown.
    assert board.get(breaker_key("anthropic")).retry_at() == clock.monotonic() + 5


async def test_the_breaker_opens_and_later_calls_fail_fast(fake: ModelServer) -> None:
    fake.add(*[anthropic_error(529, "overloaded_error", "Overloaded")] * 10)
    clock = WatchedClock()
    board = breakers_for(clock, threshold=3)
    stats = RetryStats()
    call = run_once(fake, "anthropic")
    with pytest.raises(ProviderUnavailable) as info:
        await call_with_retries(
            call, clock=clock, breakers=board, provider="anthropic", max_attempts=6, stats=stats
        )
    assert info.value.retryable
    assert "circuit breaker" in str(info.value) and "529" in str(info.value)
    assert len(fake.requests) == 3
    assert [c.new for c in stats.breaker_changes] == [BreakerState.OPEN]
    # Another logical call does not reach the provider at all.
    with pytest.raises(ProviderUnavailable):
        await call_with_retries(call, clock=clock, breakers=board, provider="anthropic")
    assert len(fake.requests) == 3
    # After the cooldown one probe goes through; its success closes the breaker.
    fake.clear()
    clock.advance(61)
    assert (
        await call_with_retries(call, clock=clock, breakers=board, provider="anthropic") == "done"
    )
    assert board.get(breaker_key("anthropic")).state is BreakerState.CLOSED


async def test_bad_output_is_a_retryable_run_error_and_no_outage(fake: ModelServer) -> None:
    model = model_for(fake, "anthropic")
    clock = WatchedClock()
    board = breakers_for(clock, threshold=1)

    async def call() -> Answer:
        async with model:
            return (await Agent(model, output_type=Answer, retries=1).run("hi")).output

    with pytest.raises(ModelOutputError) as info:
        await call_with_retries(call, clock=clock, breakers=board, provider="anthropic")
    assert info.value.retryable
    assert len(fake.requests) == 2  # pydantic-ai's own re-ask, and no retry on top
    assert board.get(breaker_key("anthropic")).state is BreakerState.CLOSED


async def test_a_context_overflow_is_not_retried(fake: ModelServer) -> None:
    fake.add(anthropic_error(400, "invalid_request_error", "prompt is too long: 300000 tokens"))
    with pytest.raises(ProviderError, match="context window") as info:
        await call_with_retries(
            run_once(fake, "anthropic"), clock=WatchedClock(), breakers=None, provider="anthropic"
        )
    assert not info.value.retryable
    assert len(fake.requests) == 1


async def test_other_exceptions_pass_through_and_give_the_probe_back() -> None:
    clock = WatchedClock()
    board = breakers_for(clock, threshold=1)
    key = breaker_key("x")
    board.record([key], ok=False, error="down")
    clock.advance(61)  # half-open: the next call is the probe

    async def buggy() -> None:
        raise KeyError("a bug of ours")

    with pytest.raises(KeyError):
        await call_with_retries(buggy, clock=clock, breakers=board, provider="x")
    assert board.get(key).state is BreakerState.HALF_OPEN
    assert board.allow([key])  # the probe was given back


async def test_a_cancelled_call_gives_the_probe_back() -> None:
    clock = WatchedClock()
    board = breakers_for(clock, threshold=1)
    key = breaker_key("x")
    board.record([key], ok=False, error="down")
    clock.advance(61)
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(call_with_retries(hangs, clock=clock, breakers=board, provider="x"))
    await started.wait()
    assert not board.get(key).would_allow()  # the probe is out
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert board.get(key).would_allow()


@pytest.mark.parametrize(
    ("provider", "reply"),
    [
        ("anthropic", anthropic_error(529, "overloaded_error", "Overloaded")),
        ("openai", openai_error(500, None, "The server had an error", "server_error")),
        ("vllm", openai_error(503, None, "busy", "server_error")),
    ],
)
async def test_one_logical_call_makes_exactly_max_attempts_requests(
    fake: ModelServer, provider: str, reply: Reply
) -> None:
    fake.add(*[reply] * 10)
    with pytest.raises(ProviderError):
        await call_with_retries(
            run_once(fake, provider),
            clock=WatchedClock(),
            breakers=None,
            provider=provider,
            max_attempts=3,
        )
    assert len(fake.requests) == 3
    assert {r.headers.get("x-stainless-retry-count") for r in fake.requests} == {"0"}


async def test_max_attempts_must_be_positive() -> None:
    async def never() -> None:
        raise AssertionError

    with pytest.raises(ValueError, match="max_attempts"):
        await call_with_retries(
            never, clock=WatchedClock(), breakers=None, provider="x", max_attempts=0
        )
