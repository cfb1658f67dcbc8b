"""A backend behind its model provider's circuit breaker, itself a backend.

While the provider's breaker is open, :class:`CircuitBackend` refuses the attempt without starting
the agent: the result is an outage (:meth:`AgentResult.outage`), so the task waits for the
provider instead of crashing. Otherwise it runs the agent and tells the breaker what the run said
of the provider (:attr:`AgentResult.reached`): an outage counts against it, an answer (whatever
it said) for it, and a run that never reached it gives its half-open probe back. A run that ended
because the provider failed is an outage too, not the task's crash. The breaker logic itself is
:class:`blitz.llm.breakers.ProviderCircuit`, which the embedded agent's model calls use too.
"""

from __future__ import annotations

import dataclasses

from blitz.backends.base import AgentBackend, AgentRequest, AgentResult, MessageSink
from blitz.breaker import BreakerBoard
from blitz.llm.breakers import ProviderCircuit, ProviderUnavailable


class CircuitBackend:
    """``inner``, admitted and judged by the breaker of ``provider`` (``anthropic``, ...)."""

    def __init__(self, inner: AgentBackend, *, breakers: BreakerBoard, provider: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.provider = provider
        self.circuit = ProviderCircuit(breakers, provider)

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        try:
            probes = self.circuit.admit()
        except ProviderUnavailable as refused:
            return AgentResult.outage(str(refused), refused.retry_after)
        try:
            result = await self.inner.run(request, on_message)
        except BaseException:
            self.circuit.judge(probes, reached=None)  # no outcome: give the probe back
            raise
        self.circuit.judge(probes, reached=result.reached, error=result.error)
        if result.reached is False and not result.ok and not result.config_error:
            return dataclasses.replace(result, crashed=False, unavailable=True)
        return result


def behind_breaker(
    backend: AgentBackend, breakers: BreakerBoard | None, provider: str
) -> AgentBackend:
    """``backend`` behind the provider's breaker, or as it is when there is no breaker board."""
    if breakers is None:
        return backend
    return CircuitBackend(backend, breakers=breakers, provider=provider)
