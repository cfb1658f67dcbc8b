"""Per-attempt sessions of the model proxy: a token, a budget, and the usage metered so far.

A session's token stands in for the real key in the agent's environment. It is valid from
:meth:`Sessions.open` until :meth:`ProxySession.close`; it is not a secret worth registering for
redaction (it opens nothing once the attempt ends, and nothing but the proxy accepts it).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from types import TracebackType
from typing import Self

from blitz.domain import Usage
from blitz.proxy.refusals import Refusal, budget_spent

log = logging.getLogger("blitz.proxy")

TOKEN_PREFIX = "blitz-"


class ProxySession:
    """One attempt's use of the proxy: :attr:`token` for the client, :attr:`usage` so far.

    ``provider`` names the upstream (a key of the proxy's upstreams), ``wire`` its API. Once
    :attr:`usage` costs ``budget_usd`` or more, further requests are refused and
    :attr:`over_budget` is set; the budget may be lowered while the attempt runs (say, when the
    goal's own budget runs low). ``on_usage`` gets each response's usage as soon as it is known.
    """

    def __init__(
        self,
        provider: str,
        *,
        wire: str,
        budget_usd: float | None,
        on_usage: Callable[[Usage], None] | None,
        label: str,
        on_close: Callable[[ProxySession], None],
    ) -> None:
        self.token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        self.provider = provider
        self.wire = wire
        self.budget_usd = budget_usd
        self.label = label
        self.usage = Usage()
        self.over_budget = False
        self.requests = 0
        self.closed = False
        self._on_usage = on_usage
        self._on_close = on_close

    def base_url(self, origin: str) -> str:
        """The base URL to give the client (``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL``), for
        the ``origin`` it reaches the proxy at (``http://127.0.0.1:PORT``)."""
        origin = origin.rstrip("/")
        return f"{origin}/anthropic" if self.wire == "anthropic" else f"{origin}/openai/v1"

    def refusal(self) -> Refusal | None:
        """Why the next request may not be forwarded, if it may not."""
        if self.budget_usd is not None and self.usage.cost_usd >= self.budget_usd:
            self.over_budget = True
            return budget_spent(self.budget_usd)
        return None

    def record(self, usage: Usage) -> None:
        """Add one response's usage and tell ``on_usage``; its failure is logged, not raised,
        so a broken callback cannot break the agent's stream."""
        self.usage = self.usage + usage
        if self._on_usage is None:
            return
        try:
            self._on_usage(usage)
        except Exception:
            log.exception("model proxy: on_usage failed for session %s", self.label or "?")

    def close(self) -> None:
        """End the session: its token is refused from now on. Idempotent."""
        if not self.closed:
            self.closed = True
            self._on_close(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"ProxySession({self.provider!r}, label={self.label!r}, {state}, "
            f"requests={self.requests}, cost_usd={self.usage.cost_usd:.4f})"
        )


class Sessions:
    """The open sessions by token."""

    def __init__(self) -> None:
        self._by_token: dict[str, ProxySession] = {}

    def open(
        self,
        provider: str,
        *,
        wire: str,
        budget_usd: float | None,
        on_usage: Callable[[Usage], None] | None,
        label: str,
    ) -> ProxySession:
        if budget_usd is not None and not budget_usd >= 0:
            raise ValueError(f"a budget is a non-negative amount of USD, not {budget_usd}")
        session = ProxySession(
            provider,
            wire=wire,
            budget_usd=budget_usd,
            on_usage=on_usage,
            label=label,
            on_close=self._forget,
        )
        self._by_token[session.token] = session
        return session

    def find(self, token: str) -> ProxySession | None:
        """The open session of ``token``."""
        return self._by_token.get(token) if token.startswith(TOKEN_PREFIX) else None

    def __len__(self) -> int:
        return len(self._by_token)

    def _forget(self, session: ProxySession) -> None:
        self._by_token.pop(session.token, None)
