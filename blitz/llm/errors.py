"""What a provider failure means.

:func:`classify` sorts an exception from a model call into four kinds:

* ``transient`` - rate limits (429), overload (529, 503), server errors (5xx), timeouts, refused
  or dropped connections, streams broken off mid-way, garbage from a gateway. Retried.
* ``config`` - the user must act: a rejected key (401), no access (403), an exhausted balance or
  spend limit, an unknown model (404), a request the provider rejects as such (400, 422).
  Never retried. A 400/422 about the request's *shape* (a schema or grammar the server cannot
  use, tools it does not support: reason ``request_shape``) is one the caller may fix itself by
  asking differently (prompted JSON, tool calls written as text).
* ``bad_output`` - the provider worked but the model's output was unusable: tool calls or
  structured output still invalid after pydantic-ai's own re-asks, output cut at the token limit,
  an answer stopped while it streamed because it repeated itself (reason ``repeating``) or ran
  past the cap on a whole call (``too_long``): :class:`OutputStopped`.
* ``other`` - anything else: a context window overflow (not retried, the request must shrink),
  or an exception that is no provider failure at all (a bug), which passes through unchanged.

Retrying is :mod:`blitz.llm.retries`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from pydantic_ai.exceptions import (
    ContentFilterError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelContextWindowExceededError,
    ModelHTTPError,
    ModelNotFoundError,
    ModelOverloadedError,
    ModelQuotaExceededError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    ModelRequestTimeout,
    ModelServerError,
    ModelTimeoutError,
    ModelUnavailableError,
    OutputTokenLimitExceeded,
    UnexpectedModelBehavior,
)
from pydantic_ai.messages import ModelResponse
from pydantic_ai.usage import RequestUsage

from blitz.errors import ConfigError, RunError
from blitz.llm.breakers import provider_label
from blitz.redact import redact
from blitz.waiting import Outage

Kind = Literal["transient", "config", "bad_output", "other"]

MAX_MESSAGE = 400
"""Characters of a provider's own error message kept in a failure's message."""

_BILLING_WORDS = (
    "credit balance",
    "billing",
    "spend limit",
    "spending limit",
    "usage limit",
    "insufficient_quota",
    "exceeded your current quota",
    "payment required",
    "out of credits",
)
"""How providers and gateways word an exhausted balance or spend cap, whatever status they send."""

_DROPPED_OUTPUT = (
    "streamed response ended without content",
    "invalid response from",
    "expected json",
)
"""UnexpectedModelBehavior messages that mean the response was lost on the way, not that the model
misbehaved."""

_SHAPE_WORDS = (
    # llama.cpp: its JSON-schema-to-grammar conversion, and its Responses-to-chat conversion
    "unable to generate parser",
    "json schema error",
    "json schema conversion failed",
    "cannot determine type of",
    # Ollama and vLLM: a model or server without tool calls
    "does not support tools",
    "enable-auto-tool-choice",
    # Anthropic and OpenAI refusing a tool's or an output's schema
    "input_schema",
    "invalid schema",
    "invalid_function_parameters",
    "response_format",
)
"""How servers word a 400/422 about the request's shape (its schemas, its tools), as opposed to its
key, model or size."""

_OWN_SERVER_SHAPE_WORDS = ("schema", "grammar", "tool")
"""What any server of one's own says about a structured-output or tool request it cannot serve.
Not read from Anthropic or OpenAI, whose 400s about a conversation's tool calls (``tool_use`` ids,
say) are blitz's to fix, not a reason to ask without tools."""

HOSTED = ("anthropic", "openai")

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
_CONFIG_STATUS = frozenset({400, 401, 402, 403, 404, 405, 413, 415, 422})


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderFailure:
    """One failed model call, classified.

    ``reason`` refines ``kind`` (``rate_limit``, ``overloaded``, ``unavailable``, ``server``,
    ``timeout``, ``connection``, ``auth``, ``permission``, ``billing``, ``not_found``,
    ``rejected``, ``request_shape``, ``context_window``, ``output``, ``repeating``, ``too_long``,
    ``unknown``). ``message`` is one redacted line
    that says what happened and, for config failures, what to fix.
    """

    kind: Kind
    status: int | None
    retry_after: float | None
    message: str
    reason: str = "unknown"


class OutputStopped(Exception):
    """A streamed answer abandoned before its end: it repeated itself (``reason`` ``repeating``)
    or ran past the cap on a whole call (``too_long``), see :mod:`blitz.llm.streaming`; or an
    answer that held nothing, refused where a call was due (``empty``, see
    :mod:`blitz.llm.text_calls`)."""

    def __init__(self, reason: Literal["repeating", "too_long", "empty"], message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.partial: ModelResponse | None = None
        """What had streamed when the answer was stopped (a call written before a loop of prose
        may still be made: :mod:`blitz.llm.text_calls`)."""


def stopped_answer(exc: BaseException) -> ModelResponse | None:
    """What had streamed of the stopped answer behind ``exc`` (an :class:`OutputStopped` among
    its causes, carrying it), or None."""
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None:
            break
        if isinstance(cause, OutputStopped) and cause.partial is not None:
            return cause.partial
        cause = cause.__cause__ or cause.__context__
    return None


def stopped_usage(exc: BaseException) -> RequestUsage | None:
    """The usage of the stopped answer behind ``exc`` (:func:`stopped_answer`), or None."""
    partial = stopped_answer(exc)
    return None if partial is None else partial.usage


class ProviderConfigError(ConfigError):
    """The provider refused the call for a reason the user must fix; never retried."""

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class ProviderError(RunError):
    """A provider call failed for good: out of attempts (retryable later), or for a reason that
    retrying the same call cannot fix."""

    def __init__(
        self, message: str, *, failure: ProviderFailure, attempts: int, retryable: bool
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.failure = failure
        self.attempts = attempts
        self.retry_after = failure.retry_after


class ProviderDown(ProviderError, Outage):
    """A provider outage the call gave up on: out of attempts on transient failures, or told to
    wait longer than a call waits. The work waits (:class:`blitz.waiting.Outage`) and tries
    again; it has not failed."""


class ModelOutputError(RunError):
    """The model's output stayed unusable after pydantic-ai's re-asks; another attempt may do
    better."""

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(failure.message, retryable=True)
        self.failure = failure


def key_setting(provider: str) -> str:
    """Where the user sets the API key of ``provider``."""
    return {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}.get(
        provider, "the compatible API key setting"
    )


def classify(
    exc: BaseException, *, provider: str = "", now: float | None = None
) -> ProviderFailure:
    """Classify a failed model call. ``provider`` names it in messages (``anthropic``); ``now``
    (epoch seconds) resolves a ``Retry-After`` given as an HTTP date, else it is read as absent."""
    if isinstance(exc, ProviderConfigError | ModelOutputError | ProviderError):
        return exc.failure
    if isinstance(exc, UnexpectedModelBehavior):
        return _unexpected(exc)
    if isinstance(exc, OutputStopped):
        return ProviderFailure(
            kind="bad_output",
            status=None,
            retry_after=None,
            reason=exc.reason,
            message=_line(f"the model's output was unusable: {exc.message}"),
        )
    if isinstance(exc, ModelAPIError):
        return _model_api_error(exc, provider, now)
    sdk = _sdk_error(exc, provider, now)
    if sdk is not None:
        return sdk
    if isinstance(exc, TimeoutError):
        return _transient("timeout", None, f"timed out: {_text(exc)}")
    if isinstance(exc, ConnectionError):
        return _transient("connection", None, f"connection failed: {_text(exc)}")
    return ProviderFailure(
        kind="other", status=None, retry_after=None, message=_line(f"{type(exc).__name__}: {exc}")
    )


def _unexpected(exc: UnexpectedModelBehavior) -> ProviderFailure:
    text = exc.message
    if not isinstance(exc, ContentFilterError | OutputTokenLimitExceeded) and any(
        phrase in text.lower() for phrase in _DROPPED_OUTPUT
    ):
        return _transient("connection", None, f"the response was lost on the way: {text}")
    return ProviderFailure(
        kind="bad_output",
        status=None,
        retry_after=None,
        reason="output",
        message=_line(f"the model's output was unusable: {text}"),
    )


def _model_api_error(exc: ModelAPIError, provider: str, now: float | None) -> ProviderFailure:
    status = exc.status_code if isinstance(exc, ModelHTTPError) else None
    headers = exc.headers if isinstance(exc, ModelHTTPError) else None
    retry_after = parse_retry_after(headers, now) if headers else None
    if retry_after is None:
        retry_after = exc.retry_after
    detail = _body_message(exc.body) or exc.message
    where = f" ({status})" if status is not None else ""
    who = provider_label(provider) if provider else "the provider"
    # Spend caps come in many wordings and statuses; a rate limit's wording is not trusted.
    rate_limited = isinstance(exc, ModelRateLimitError)
    if isinstance(exc, ModelQuotaExceededError) or _says_billing(
        "" if rate_limited else detail, exc.provider_error_code
    ):
        return _config(
            "billing",
            status,
            f"{who} refused the call{where}: the account is out of credit or over its spend "
            f"limit; add credit or raise the limit ({detail})",
        )
    if isinstance(exc, ModelRateLimitError):
        return _transient("rate_limit", status, f"rate limited{where}: {detail}", retry_after)
    if isinstance(exc, ModelOverloadedError):
        return _transient("overloaded", status, f"overloaded{where}: {detail}", retry_after)
    if isinstance(exc, ModelUnavailableError):
        return _transient("unavailable", status, f"unavailable{where}: {detail}", retry_after)
    if isinstance(exc, ModelServerError):
        return _transient("server", status, f"server error{where}: {detail}", retry_after)
    if isinstance(exc, ModelTimeoutError | ModelRequestTimeout):
        return _transient("timeout", status, f"timed out: {exc.message}", retry_after)
    if isinstance(exc, ModelConnectionError):
        return _transient("connection", status, f"connection failed: {exc.message}", retry_after)
    if isinstance(exc, ModelContextWindowExceededError):
        return ProviderFailure(
            kind="other",
            status=status,
            retry_after=None,
            reason="context_window",
            message=_line(f"the request is longer than the model's context window: {detail}"),
        )
    if isinstance(exc, ModelAuthenticationError) or status in (401, 403):
        if status == 403:
            return _config(
                "permission",
                status,
                f"{who} refused access{where}: check that the key in {key_setting(provider)} may "
                f"use this model ({detail})",
            )
        return _config(
            "auth",
            status,
            f"{who} rejected the API key{where}: check {key_setting(provider)} ({detail})",
        )
    if isinstance(exc, ModelNotFoundError) or status == 404:
        return _config(
            "not_found",
            status,
            f"{who} does not know this model{where}: check the model name and base URL ({detail})",
        )
    if isinstance(exc, ModelRequestRejectedError):
        if status in (400, 422) and _about_shape(detail, provider):
            return _request_shape(status, who, detail)
        return _config("rejected", status, f"{who} rejected the request{where}: {detail}")
    if status is not None:
        return _by_status(status, who, detail, retry_after, provider)
    # A provider failure of no known category (a gateway's non-JSON body, an unknown stream
    # error): worth the bounded retries.
    return _transient("unknown", None, f"{who} failed: {detail}", retry_after)


def _by_status(
    status: int, who: str, detail: str, retry_after: float | None, provider: str
) -> ProviderFailure:
    if status in _TRANSIENT_STATUS or status >= 500:
        return _transient("server", status, f"{who} failed ({status}): {detail}", retry_after)
    if status in (400, 422) and _about_shape(detail, provider):
        return _request_shape(status, who, detail)
    if status in _CONFIG_STATUS:
        return _config("rejected", status, f"{who} rejected the request ({status}): {detail}")
    return ProviderFailure(
        kind="other",
        status=status,
        retry_after=retry_after,
        message=_line(f"{who} answered {status}: {detail}"),
    )


def _sdk_error(exc: BaseException, provider: str, now: float | None) -> ProviderFailure | None:
    """Exceptions of the SDKs and of httpx2, for code that calls them without pydantic-ai."""
    import anthropic
    import httpx2
    import openai

    who = provider_label(provider) if provider else "the provider"
    if isinstance(
        exc, anthropic.APITimeoutError | openai.APITimeoutError | httpx2.TimeoutException
    ):
        return _transient("timeout", None, f"timed out: {_text(exc)}")
    if isinstance(exc, anthropic.APIConnectionError | openai.APIConnectionError):
        return _transient("connection", None, f"connection failed: {_text(exc)}")
    if isinstance(exc, httpx2.TransportError):
        return _transient("connection", None, f"connection failed: {_text(exc)}")
    if isinstance(exc, anthropic.APIStatusError | openai.APIStatusError | httpx2.HTTPStatusError):
        status = exc.response.status_code
        retry_after = parse_retry_after(exc.response.headers, now)
        body = _response_text(exc.response) if isinstance(exc, httpx2.HTTPStatusError) else exc.body
        detail = _body_message(body) or _text(exc)
        code = getattr(exc, "code", None)
        if status == 402 or _says_billing(detail if status != 429 else "", code):
            return _config(
                "billing",
                status,
                f"{who} refused the call ({status}): the account is out of credit or over its "
                f"spend limit; add credit or raise the limit ({detail})",
            )
        if status == 401:
            return _config(
                "auth",
                status,
                f"{who} rejected the API key ({status}): check {key_setting(provider)} ({detail})",
            )
        if status == 429:
            return _transient(
                "rate_limit", status, f"rate limited ({status}): {detail}", retry_after
            )
        return _by_status(status, who, detail, retry_after, provider)
    return None


def _response_text(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:  # a streamed response whose body was never read
        return ""


def _transient(
    reason: str, status: int | None, message: str, retry_after: float | None = None
) -> ProviderFailure:
    return ProviderFailure(
        kind="transient",
        status=status,
        retry_after=retry_after,
        reason=reason,
        message=_line(message),
    )


def _config(reason: str, status: int | None, message: str) -> ProviderFailure:
    return ProviderFailure(
        kind="config", status=status, retry_after=None, reason=reason, message=_line(message)
    )


def _about_shape(text: str, provider: str) -> bool:
    lowered = text.lower()
    words = _SHAPE_WORDS if provider in HOSTED else _SHAPE_WORDS + _OWN_SERVER_SHAPE_WORDS
    return any(word in lowered for word in words)


def _request_shape(status: int, who: str, detail: str) -> ProviderFailure:
    return _config(
        "request_shape",
        status,
        f"{who} cannot serve a request of this shape ({status}): {detail}; the model or server "
        "may not support tool calls or this JSON schema",
    )


def _says_billing(text: str, code: object) -> bool:
    lowered = f"{text} {code if isinstance(code, str) else ''}".lower()
    return any(word in lowered for word in _BILLING_WORDS)


def _body_message(body: object) -> str:
    """The provider's own message from an error body (``{"error": {"message": ...}}`` and the
    like), or the body itself when it is text."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message")
            if isinstance(message, str):
                return message
        elif isinstance(inner, str):
            return inner
        message = body.get("message")
        return message if isinstance(message, str) else ""
    if isinstance(body, str):
        try:
            return _body_message(json.loads(body)) or body
        except ValueError:
            return body
    return ""


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _line(text: str) -> str:
    """One redacted line of bounded length."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 3] + "..."


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds, or an HTTP date read
    against ``now`` in epoch seconds; without ``now`` a date is ignored). None if absent or bad."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _number(raw_ms)
        if seconds is not None:
            return seconds / 1000
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    if now is None:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None
