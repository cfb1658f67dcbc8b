"""The one place model calls are retried.

:func:`call_with_retries` makes one logical call, retrying transient failures as the shared
:class:`blitz.waiting.RetryPolicy` says (exponential backoff and jitter, honouring
``Retry-After``) and feeding every outcome to the provider's circuit breaker
(:class:`blitz.llm.breakers.ProviderCircuit`). SDK clients are built with ``max_retries=0``
(:mod:`blitz.llm.models`), so this is the only retry loop: ``max_attempts`` attempts mean exactly
that many HTTP requests. A call that gives up on an outage raises a :class:`blitz.waiting.Outage`
(:class:`ProviderDown`, or :class:`ProviderUnavailable` while the breaker is open) that says how
long to wait: its caller waits, it does not fail.
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
    ProviderDown,
    ProviderError,
    ProviderFailure,
    classify,
)
from blitz.waiting import RetryPolicy

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
    max_attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float | None = None,
    policy: RetryPolicy = RetryPolicy(),
    stats: RetryStats | None = None,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Make one logical model call, at most ``policy.max_attempts`` times.

    Transient failures are retried after the policy's backoff, or after the provider's
    ``Retry-After`` when that is longer; a provider asking for more than ``policy.max_delay``
    ends the call at once. ``max_attempts``, ``base_delay`` and ``max_delay`` override the
    policy's. Raises :class:`ProviderUnavailable` without calling while the provider's breaker is
    open, :class:`ProviderConfigError` on a config failure, :class:`ModelOutputError` on unusable
    output, :class:`ProviderDown` (an outage: wait its ``retry_after``) once out of attempts or
    told to wait longer than a call waits, a non-retryable :class:`ProviderError` for a context
    window overflow, and any other exception unchanged. ``stats`` collects retries, waits,
    failures and breaker changes (which the breaker board also keeps: see
    :meth:`BreakerBoard.drain`).
    """
    if max_attempts is not None or base_delay is not None or max_delay is not None:
        policy = RetryPolicy(
            max_attempts=policy.max_attempts if max_attempts is None else max_attempts,
            base_delay=policy.base_delay if base_delay is None else base_delay,
            max_delay=policy.max_delay if max_delay is None else max_delay,
        )
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
                stats.breaker_changes += circuit.judge(
                    probes, reached=False, error=failure.message, retry_after=failure.retry_after
                )
            elif failure.kind != "other" or isinstance(exc, ModelAPIError):
                # The provider answered: its machinery works, whatever the answer said.
                stats.breaker_changes += circuit.judge(probes, reached=True)
            else:
                circuit.judge(probes, reached=None)
            _raise_unless_retryable(exc, failure, provider, attempt, policy)
        except BaseException:
            # Cancelled or interrupted mid-call: there is no outcome, so give the probe back.
            circuit.judge(probes, reached=None)
            raise
        else:
            stats.breaker_changes += circuit.judge(probes, reached=True)
            return result
        wait = policy.backoff(attempt, jitter())
        if failure.retry_after is not None:
            wait = max(wait, failure.retry_after)
        stats.retries += 1
        stats.waited += wait
        await clock.sleep(wait)


def _raise_unless_retryable(
    exc: Exception, failure: ProviderFailure, provider: str, attempt: int, policy: RetryPolicy
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
    if not policy.within_call(failure.retry_after):
        raise ProviderDown(
            f"{who} asked to wait {failure.retry_after:g}s before retrying: {failure.message}",
            failure=failure,
            attempts=attempt,
            retryable=True,
        ) from exc
    if attempt >= policy.max_attempts:
        plural = "s" if attempt > 1 else ""
        raise ProviderDown(
            f"{who} failed {attempt} time{plural}; last: {failure.message}",
            failure=failure,
            attempts=attempt,
            retryable=True,
        ) from exc
