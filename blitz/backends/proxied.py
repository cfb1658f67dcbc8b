"""How an agent CLI reaches its models: through blitz's model proxy, with a per-attempt token
instead of the real key. The proxy puts the key in, meters every response into the attempt's
usage as it happens, and refuses requests once the attempt's budget is spent.

:func:`model_access` opens the attempt's proxy sessions (one per provider the CLI uses) and gives
the environment that points the CLI at them: ``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL`` at the
proxy (inside a jail, the relay's address; outside, the proxy's loopback port) and
``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY`` set to the session's token. Without a proxy (library
use, tests of the CLIs themselves), the CLI gets the real provider environment, unconfined.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from blitz.backends.base import AgentRequest, AgentResult
from blitz.domain import Usage
from blitz.sandbox import PROXY_ORIGIN, Policy

if TYPE_CHECKING:
    from blitz.proxy import ModelProxy, ProxySession

PROVIDER_ENV = {
    "anthropic": ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
    "openai": ("OPENAI_BASE_URL", "OPENAI_API_KEY"),
}
"""Per provider: the variables that carry its base URL and its key."""

KEY_VARIABLES = frozenset(key for _, key in PROVIDER_ENV.values())


@dataclass(slots=True)
class Access:
    """One attempt's way to its models: the environment for the CLI and the sessions behind it."""

    env: dict[str, str]
    sessions: list[ProxySession] = field(default_factory=list)
    budget_usd: float | None = None

    @property
    def proxied(self) -> bool:
        return bool(self.sessions)

    @property
    def usage(self) -> Usage:
        """What the proxy metered for this attempt so far."""
        total = Usage()
        for session in self.sessions:
            total += session.usage
        return total

    @property
    def over_budget(self) -> bool:
        return any(session.over_budget for session in self.sessions)

    def settle(self, result: AgentResult) -> AgentResult:
        """``result`` with the proxy's word on it: the metered usage (what was really spent,
        whatever the CLI says), and a failure when the budget cut the run short."""
        if not self.proxied:
            return result
        metered = self.usage
        if metered.input_tokens or metered.output_tokens or metered.cost_usd:
            result = dataclasses.replace(result, usage=metered)
        if self.over_budget:
            cap = f"${self.budget_usd:.2f}" if self.budget_usd is not None else "its budget"
            error = f"the attempt spent its budget of {cap}; the model proxy refused further calls"
            if result.error:
                error += f"\n{result.error}"
            return dataclasses.replace(
                result, ok=False, crashed=False, config_error="", error=error
            )
        return result


@contextlib.asynccontextmanager
async def model_access(
    proxy: ModelProxy | None,
    policy: Policy,
    providers: Sequence[str],
    request: AgentRequest,
    *,
    direct: Mapping[str, str] | None = None,
    budget_usd: float | None = None,
) -> AsyncIterator[Access]:
    """The attempt's proxy sessions for ``providers`` and the environment that points a CLI at
    them; ``direct`` (the real provider environment) is used only when there is no proxy. The
    budget is the attempt's (``request.budget_usd``) unless ``budget_usd`` is lower."""
    if proxy is None:
        yield Access(env=dict(direct or {}))
        return
    await proxy.start(policy.proxy_socket)
    origin = PROXY_ORIGIN if policy.confined else proxy.url
    budget = _lowest(request.budget_usd, budget_usd)
    access = Access(env={}, budget_usd=budget)
    try:
        for provider in providers:
            session = proxy.open(
                provider,
                budget_usd=budget,
                on_usage=request.on_usage,
                label=f"{request.goal_id}/{request.task_id}#{request.attempt}",
            )
            access.sessions.append(session)
            url_name, key_name = PROVIDER_ENV[provider]
            access.env[url_name] = session.base_url(origin)
            access.env[key_name] = session.token
        yield access
    finally:
        for session in access.sessions:
            session.close()


def _lowest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)
