"""The one place model calls are retried.

:func:`call_with_retries` makes one logical call, retrying transient failures with exponential
backoff and jitter (honouring ``Retry-After``) and feeding every outcome to the provider's circuit
breaker (:class:`blitz.llm.breakers.ProviderCircuit`). SDK clients are built with
``max_retries=0`` (:mod:`blitz.llm.models`), so this is the only retry loop: ``max_attempts``
attempts mean exactly that many HTTP requests.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic_ai.exceptions import ModelAPIError

from blitz.breaker import BreakerBoard, Change
from blitz.clock import Clock
from blitz.llm.breakers import ProviderCircuit, provider_label
from blitz.llm.errors import (
    ModelOutputError,
    ProviderConfigError,
    ProviderError,
    ProviderFailure,
    classify,
)

T = TypeVar("T")


@dataclass(slots=True)
class RetryStats:
    """What :func:`call_with_retries` went through; pass one in to read it (or to add up several
    calls): retries made, seconds waited, every failure seen, and the breaker changes to persist
    and announce."""

    retries: int = 0
    waited: float = 0.0
    failures: list[ProviderFailure] = field(default_factory=list)
    breaker_changes: list[Change] = field(default_factory=list)


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    clock: Clock,
    breakers: BreakerBoard | None,
    provider: str,
    max_attempts: int = 4,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    stats: RetryStats | None = None,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Make one logical model call, at most ``max_attempts`` times.

    Transient failures are retried after ``base_delay * 2**n`` seconds (capped at ``max_delay``,
    scaled by a random factor in [0.5, 1)), or after the provider's ``Retry-After`` when that is
    longer; a provider asking for more than ``max_delay`` ends the call at once. Raises
    :class:`ProviderUnavailable` without calling while the provider's breaker is open,
    :class:`ProviderConfigError` on a config failure, :class:`ModelOutputError` on unusable output,
    :class:`ProviderError` (retryable) once out of attempts or told to wait too long, a
    non-retryable :class:`ProviderError` for a context window overflow, and any other exception
    unchanged. ``stats`` collects retries, waits, failures and breaker changes.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    stats = stats if stats is not None else RetryStats()
    circuit = ProviderCircuit(breakers, provider)
    attempt = 0
    while True:
        attempt += 1
        probes = circuit.admit()  # raises ProviderUnavailable while the breaker is open
        try:
            result = await fn()
        except Exception as exc:
            failure = classify(exc, provider=provider, now=clock.time())
            stats.failures.append(failure)
            if failure.kind == "transient":
                stats.breaker_changes += circuit.judge(probes, reached=False, error=failure.message)
            elif failure.kind != "other" or isinstance(exc, ModelAPIError):
                # The provider answered: its machinery works, whatever the answer said.
                stats.breaker_changes += circuit.judge(probes, reached=True)
            else:
                circuit.judge(probes, reached=None)
            _raise_unless_retryable(exc, failure, provider, attempt, max_attempts, max_delay)
        except BaseException:
            # Cancelled or interrupted mid-call: there is no outcome, so give the probe back.
            circuit.judge(probes, reached=None)
            raise
        else:
            stats.breaker_changes += circuit.judge(probes, reached=True)
            return result
        wait = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + jitter() / 2)
        if failure.retry_after is not None:
            wait = max(wait, failure.retry_after)
        stats.retries += 1
        stats.waited += wait
        await clock.sleep(wait)


def _raise_unless_retryable(
    exc: Exception,
    failure: ProviderFailure,
    provider: str,
    attempt: int,
    max_attempts: int,
    max_delay: float,
) -> None:
    """Raise what ``failure`` ends the call with; return if the call may be tried again."""
    who = provider_label(provider)
    if failure.kind == "config":
        raise ProviderConfigError(failure) from exc
    if failure.kind == "bad_output":
        raise ModelOutputError(failure) from exc
    if failure.kind == "other":
        if failure.reason == "context_window":
            raise ProviderError(
                f"{who}: {failure.message}", failure=failure, attempts=attempt, retryable=False
            ) from exc
        raise exc
    if failure.retry_after is not None and failure.retry_after > max_delay:
        raise ProviderError(
            f"{who} asked to wait {failure.retry_after:g}s before retrying, longer than the "
            f"{max_delay:g}s limit: {failure.message}",
            failure=failure,
            attempts=attempt,
            retryable=True,
        ) from exc
    if attempt >= max_attempts:
        plural = "s" if attempt > 1 else ""
        raise ProviderError(
            f"{who} failed {attempt} time{plural}; last: {failure.message}",
            failure=failure,
            attempts=attempt,
            retryable=True,
        ) from exc
