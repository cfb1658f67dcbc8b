"""A model provider's circuit breaker as model calls and agent runs use it: its key, how
messages name the provider, the refusal while it is open, and :class:`ProviderCircuit` (admit a
call, then judge what it said of the provider)."""

from __future__ import annotations

from blitz.breaker import BreakerBoard, Change, provider_key
from blitz.waiting import Outage


def breaker_key(provider: str) -> str:
    """The key of a model provider's circuit breaker."""
    return provider_key(provider)


def provider_label(provider: str) -> str:
    """How messages name ``provider``."""
    return {"anthropic": "Anthropic", "openai": "OpenAI"}.get(provider, f"the {provider} server")


class ProviderUnavailable(Outage):
    """The provider's circuit breaker is open: the call was not made. Retry after ``retry_after``
    seconds (None when a probe call is already under way)."""


def unavailable(breakers: BreakerBoard, key: str, who: str) -> ProviderUnavailable:
    """The refusal of a call while ``who``'s breaker (``key``) is open: why, and when to retry."""
    breaker = breakers.get(key)
    retry_at = breaker.retry_at()
    if retry_at is None:
        when, retry_after = "a probe call is under way", None
    else:
        retry_after = max(0.0, retry_at - breakers.clock.monotonic())
        when = f"next try in {retry_after:.0f}s"
    last = f" (last: {breaker.last_error})" if breaker.last_error else ""
    return ProviderUnavailable(
        f"{who} is unavailable: its circuit breaker opened after repeated failures{last}; {when}",
        retry_after=retry_after,
    )


class ProviderCircuit:
    """One model provider's circuit breaker as a call (or an agent's run) uses it: admitted or
    refused, then told what the call said of the provider. Without a breaker board, every call
    is admitted and nothing is recorded."""

    def __init__(self, breakers: BreakerBoard | None, provider: str) -> None:
        self.breakers = breakers
        self.key = breaker_key(provider)
        self.provider = provider

    def admit(self) -> list[str]:
        """The half-open probes taken for the call; :class:`ProviderUnavailable` while the
        breaker is open."""
        if self.breakers is None:
            return []
        probes = self.breakers.admit([self.key])
        if probes is None:
            raise unavailable(self.breakers, self.key, provider_label(self.provider))
        return probes

    def check(self) -> None:
        """:class:`ProviderUnavailable` while the breaker is open; no probe is taken, for a
        gate in front of calls whose runs are admitted elsewhere (the model proxy)."""
        if self.breakers is None:
            return
        if self.breakers.get(self.key).retry_at() is not None:
            raise unavailable(self.breakers, self.key, provider_label(self.provider))

    def judge(
        self,
        probes: list[str],
        *,
        reached: bool | None,
        error: str = "",
        retry_after: float | None = None,
    ) -> list[Change]:
        """Tell the breaker how the call went: the provider answered (``reached`` True, whatever
        it said), failed (False: an outage, ``error`` says how, ``retry_after`` how long the
        provider asked to be left alone), or was never reached (None: the probes are given
        back). Returns the breaker's state changes, which the board also keeps for its owner to
        announce and persist (:meth:`BreakerBoard.drain`)."""
        if self.breakers is None:
            return []
        if reached is None:
            self.breakers.release(probes)
            return []
        changes = self.breakers.record(
            [self.key], ok=reached, error="" if reached else error, retry_after=retry_after
        )
        self.breakers.note(changes)
        return changes
