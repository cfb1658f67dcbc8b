"""Where the proxy forwards to, and which headers cross it in each direction.

The client's credential (the attempt's token) never leaves the proxy; the upstream's key is added
on the way out and is never echoed back. Hop-by-hop headers stay on their own hop. Everything else
passes unchanged: ``anthropic-version``, ``anthropic-beta``, ``openai-beta``, the SDKs' own
headers, and on the way back the provider's ``retry-after``, rate-limit and request-id headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Provider = Literal["anthropic", "openai"]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Request headers that do not cross: the client's credential, what the HTTP client recomputes,
# and accept-encoding (the proxy decodes what it meters, so it asks for what it can decode).
_NOT_FORWARDED = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"authorization",
    b"x-api-key",
    b"accept-encoding",
}

OAUTH_PREFIX = "sk-ant-oat"
"""Anthropic OAuth tokens (Claude subscriptions) start so; they go as a bearer token."""

OAUTH_BETA = b"oauth-2025-04-20"
"""The ``anthropic-beta`` flag Anthropic wants with an OAuth token."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """A real API the proxy forwards to.

    ``provider`` is the wire format: ``"anthropic"`` (Messages API) or ``"openai"`` (Chat
    Completions and Responses, also any OpenAI-compatible server). ``base_url`` is as the
    settings hold it: ``https://api.anthropic.com`` (no ``/v1``), ``https://api.openai.com/v1``.
    ``api_key`` may be empty for a local server that wants none. ``oauth`` sends an Anthropic key
    as ``Authorization: Bearer`` (None: when it looks like an OAuth token).
    """

    provider: str
    base_url: str
    api_key: str = field(repr=False)
    oauth: bool | None = None

    def __post_init__(self) -> None:
        if self.provider not in ("anthropic", "openai"):
            raise ValueError(f"an upstream speaks 'anthropic' or 'openai', not {self.provider!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"an upstream base URL starts with http:// or https://: {self!r}")

    @property
    def bearer(self) -> bool:
        """Whether the key goes as ``Authorization: Bearer`` rather than ``x-api-key``."""
        if self.provider == "openai":
            return True
        return self.api_key.startswith(OAUTH_PREFIX) if self.oauth is None else self.oauth

    def url(self, path: str, query: bytes) -> str:
        """The upstream URL of ``path`` (what follows the client's base URL)."""
        url = self.base_url.rstrip("/") + path
        return f"{url}?{query.decode('latin-1')}" if query else url

    def request_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The client's headers as sent upstream: its credential replaced by the real key."""
        dropped = _NOT_FORWARDED | _connection_tokens(headers)
        out = [(name, value) for name, value in headers if name.lower() not in dropped]
        if not self.api_key:
            return out
        key = self.api_key.encode()
        if not self.bearer:
            out.append((b"x-api-key", key))
            return out
        out.append((b"authorization", b"Bearer " + key))
        if self.provider == "anthropic":
            out = _with_beta(out, OAUTH_BETA)
        return out


def response_headers(
    headers: Iterable[tuple[bytes, bytes]], *, decoded: bool
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers as sent to the client; ``decoded`` when the body is
    passed on decoded (then its encoding and length no longer hold)."""
    headers = list(headers)
    dropped = HOP_BY_HOP | _connection_tokens(headers)
    if decoded:
        dropped |= {b"content-encoding", b"content-length"}
    return [(name.lower(), value) for name, value in headers if name.lower() not in dropped]


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Headers named by ``Connection``, which are hop-by-hop too."""
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
        if token.strip()
    )


def _with_beta(headers: list[tuple[bytes, bytes]], flag: bytes) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``flag`` among the ``anthropic-beta`` flags."""
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"anthropic-beta":
            flags = [f.strip() for f in value.split(b",")]
            if flag not in flags:
                headers[index] = (name, value + b"," + flag)
            return headers
    return [*headers, (b"anthropic-beta", flag)]
