"""Secret redaction: the second line of defence that keeps keys and tokens out of the store.

:func:`redact` replaces known token shapes (Anthropic, OpenAI, GitHub, Slack and AWS keys, bearer
tokens, ``Authorization`` header values, passwords in URLs) and every value registered with
:func:`register_secret` by ``[redacted]``. The store runs every event through it before writing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

MIN_SECRET_LENGTH = 8
"""Registered values shorter than this are ignored: redacting them would mangle ordinary text."""

# One alternative per secret shape. Where an alternative has a group, the group is the label in
# front of the secret ("Bearer ", "Authorization: ", "https://user:") and is kept.
_TOKENS = re.compile(
    "|".join(
        (
            r"sk-ant-[A-Za-z0-9_\-]{8,}",  # Anthropic
            r"sk-(?:proj-)?[A-Za-z0-9_\-]{16,}",  # OpenAI
            r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{16,}",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{16,}",  # GitHub fine-grained tokens
            r"\bxox[bpars]-[A-Za-z0-9\-]{8,}",  # Slack
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
            # Header values, up to the end of the line or a closing quote.
            r"(?i:(\b(?:authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)[^\r\n\"']+)",
            r"(?i:(\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*)",
            # URL userinfo: scheme://user:password@host keeps the user and hides the password.
            r"(?i:(\b[a-z][a-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+(?=@))",
        )
    )
)

# Cheap substring tests on the lowered text that every pattern above needs one of: most text has
# none, and skipping the regex then makes redaction about twenty times cheaper.
_HINTS = (
    "sk-",
    "hp_",
    "ho_",
    "hu_",
    "hs_",
    "hr_",
    "github_pat_",
    "xox",
    "akia",
    "asia",
    "authorization",
    "x-api-key",
    "bearer",
    "://",
)

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()  # longest first, so a secret containing another goes whole


def register_secret(value: str) -> None:
    """Redact ``value`` wherever it appears from now on (values under 8 characters are ignored)."""
    global _secrets
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        if value not in _secrets:
            _secrets = tuple(sorted((*_secrets, value), key=len, reverse=True))


def registered() -> tuple[str, ...]:
    """The values registered with :func:`register_secret`, longest first."""
    return _secrets


def _keep_label(match: re.Match[str]) -> str:
    label = next((g for g in match.groups() if g is not None), "")
    return label + REDACTED


def redact(text: str) -> str:
    """``text`` with every known secret shape and registered secret replaced by ``[redacted]``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    lowered = text.lower()
    for hint in _HINTS:
        if hint in lowered:
            return _TOKENS.sub(_keep_label, text)
    return text


def redact_data(obj: Any) -> Any:
    """A copy of JSON-able ``obj`` (dicts, lists, tuples, scalars) with its strings redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, Mapping):
        return {key: redact_data(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [redact_data(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(redact_data(item) for item in obj)
    return obj
