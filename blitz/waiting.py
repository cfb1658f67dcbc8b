"""Waiting out a model provider: the one retry and waiting policy of every model call.

A provider that is overloaded, rate-limited or unreachable is an :class:`Outage`: the work that
needs it waits, it does not fail. :class:`RetryPolicy` says how long: within one call, a bounded
number of tries with exponential backoff (or the provider's ``Retry-After`` when that is longer,
up to ``max_delay``); once the call gives up, :meth:`RetryPolicy.wait` says how long the work
waits before it is tried again (the provider's ``Retry-After``, of any length, else the next step
of the same backoff).

Used by the model calls of the planner and the embedded agent
(:func:`blitz.llm.retries.call_with_retries`), by the engine, which parks a task whose attempt
ended in an outage (:attr:`blitz.backends.base.AgentResult.unavailable`), and by the planning
jobs (:func:`wait_out`). The model proxy and the agent CLIs behind it share the provider's
breaker, which a ``Retry-After`` keeps open that long (:mod:`blitz.breaker`). Core code: no SDK
is imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from blitz.clock import Clock
from blitz.errors import RunError

T = TypeVar("T")


class Outage(RunError):
    """The provider cannot be used for now: wait ``retry_after`` seconds (None: no time is known,
    the provider's breaker or the policy decides), then try again."""

    retry_after: float | None = None

    def __init__(
        self, message: str, *, retry_after: float | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How model calls are retried and how long work waits for a provider.

    ``max_attempts`` tries per call, the n-th retry after ``base_delay * 2**(n-1)`` seconds
    (capped at ``max_delay``, scaled by jitter into [0.5, 1)), or after the provider's
    ``Retry-After`` when that is longer. A ``Retry-After`` beyond ``max_delay`` ends the call: the
    work waits that long instead of holding its slot.
    """

    max_attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must not be negative")

    def backoff(self, retry: int, jitter: float = 1.0) -> float:
        """Seconds before the ``retry``-th retry (1 for the first), ``jitter`` in [0, 1)."""
        return min(self.max_delay, self.base_delay * 2 ** (retry - 1)) * (0.5 + jitter / 2)

    def within_call(self, retry_after: float | None) -> bool:
        """Whether a call told to wait ``retry_after`` seconds waits inside the call."""
        return retry_after is None or retry_after <= self.max_delay

    def wait(self, retry_after: float | None) -> float:
        """Seconds the work waits after a call gave up on an outage: the provider's
        ``Retry-After`` whatever its length, else the backoff step after the call's last."""
        if retry_after is not None:
            return retry_after
        return self.backoff(self.max_attempts + 1)


async def wait_out(
    call: Callable[[], Awaitable[T]],
    *,
    clock: Clock,
    policy: RetryPolicy,
    patience: float | None,
    on_wait: Callable[[Outage, float], None] | None = None,
) -> T:
    """``call()``, made again after each :class:`Outage` once the policy's wait is over, for at
    most ``patience`` seconds in all (None: for as long as it takes); the last outage is raised
    when waiting longer would pass that bound. ``on_wait(outage, seconds)`` is told of each
    wait. For work that owns no slot to give back, such as planning."""
    started = clock.monotonic()
    while True:
        try:
            return await call()
        except Outage as outage:
            seconds = policy.wait(outage.retry_after)
            if patience is not None and clock.monotonic() - started + seconds > patience:
                raise
            if on_wait is not None:
                on_wait(outage, seconds)
            await clock.sleep(seconds)
