"""The proxy's own answers, in the error format of the API the client speaks.

The agent CLIs read these as they read the provider's errors: a 401 says the key is wrong (they
stop), a 400 that the request is invalid (they stop, and show the message), a 502 or 504 that the
provider is unreachable and a 503 with ``retry-after`` that its circuit breaker is open (they
retry, after that long). No refusal carries a key or an upstream's address.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

Wire = str
"""The API a client speaks: ``"anthropic"`` or ``"openai"``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """An error status and message, with the error's kind in each API's vocabulary."""

    status: int
    message: str
    anthropic_type: str
    openai_type: str
    openai_code: str
    retry_after: float | None = None  # sent as ``retry-after`` (whole seconds, rounded up)

    def body(self, wire: Wire) -> bytes:
        """The error body ``wire``'s clients expect."""
        if wire == "anthropic":
            error = {"type": self.anthropic_type, "message": self.message}
            return json.dumps({"type": "error", "error": error}).encode()
        payload = {
            "message": self.message,
            "type": self.openai_type,
            "param": None,
            "code": self.openai_code,
        }
        return json.dumps({"error": payload}).encode()

    def headers(self, body: bytes) -> list[tuple[bytes, bytes]]:
        """Response headers: JSON, its length, and for our own refusals no retry."""
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if self.status < 500:
            headers.append((b"x-should-retry", b"false"))
        if self.retry_after is not None:
            headers.append((b"retry-after", str(math.ceil(self.retry_after)).encode()))
        return headers


def unauthorized() -> Refusal:
    """An unknown, missing or ended token."""
    return Refusal(
        status=401,
        message="blitz model proxy: unknown or expired token (it is valid only for one attempt)",
        anthropic_type="authentication_error",
        openai_type="invalid_request_error",
        openai_code="invalid_api_key",
    )


def budget_spent(budget_usd: float) -> Refusal:
    """The attempt has spent its budget: no further model request is forwarded."""
    return Refusal(
        status=400,
        message=(
            f"blitz: this attempt's budget of {money(budget_usd)} is spent; "
            "no further model requests are allowed"
        ),
        anthropic_type="invalid_request_error",
        openai_type="invalid_request_error",
        openai_code="budget_exceeded",
    )


def unreachable(provider: str, *, timeout: bool) -> Refusal:
    """The upstream could not be reached (or did not answer in time)."""
    what = "did not answer in time" if timeout else "could not be reached"
    return Refusal(
        status=504 if timeout else 502,
        message=f"blitz model proxy: the {provider} API {what}",
        anthropic_type="api_error",
        openai_type="server_error",
        openai_code="upstream_unreachable",
    )


def provider_down(provider: str, reason: str, retry_after: float | None) -> Refusal:
    """The provider's circuit breaker is open: nothing is forwarded until ``retry_after``
    seconds have passed (the clients wait that long, then try again)."""
    return Refusal(
        status=503,
        message=f"blitz model proxy: the {provider} API is unavailable: {reason}",
        anthropic_type="overloaded_error",
        openai_type="server_error",
        openai_code="provider_unavailable",
        retry_after=retry_after,
    )


def not_found() -> Refusal:
    """A path outside ``/anthropic/`` and ``/openai/v1/``."""
    return Refusal(
        status=404,
        message="blitz model proxy: use /anthropic or /openai/v1 as the API's base URL",
        anthropic_type="not_found_error",
        openai_type="invalid_request_error",
        openai_code="not_found",
    )


def money(usd: float) -> str:
    """``$0.50``; small amounts keep their significant digits (``$0.0025``)."""
    return f"${usd:.2f}" if usd >= 0.01 or usd == 0 else f"${usd:.2g}"
