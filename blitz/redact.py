"""Secret redaction: the second line of defence that keeps keys and tokens out of everything
blitz writes or shows.

:func:`redact` replaces known token shapes (Anthropic, OpenAI, GitHub, Slack and AWS keys, bearer
tokens, ``Authorization`` header values, passwords in URLs) and every value registered with
:func:`register_secret` by ``[redacted]``.

It runs at the choke points every text passes on its way out, not field by field:

* the store: every string of every record and event, where rows are made
  (:mod:`blitz.store.rows`), so a new field is covered without anyone thinking of it;
* the pull request: its title and description (:mod:`blitz.pr`);
* the command line: the one console every command prints through (:mod:`blitz.cli.console`);
* the API: the JSON response class, problem documents and the event stream
  (:mod:`blitz.server.app`, :mod:`blitz.server.events`);
* logs: :func:`redact_log_records`, installed where a process configures logging.

Notifications, when they exist, go through :func:`redact` at their one sending function.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

MIN_SECRET_LENGTH = 8
"""Registered values shorter than this are ignored: redacting them would mangle ordinary text."""

_NOT_A_VARIABLE = r"(?!{word}\$\{{?[a-z_][a-z0-9_]*\}}?{end})"
"""A value that is only a reference to a shell variable, ``$NAME`` or ``${NAME}`` (after
``word``, before ``end``), is not a secret. The label's patterns can give back the blanks and
quotes after it, so ``word`` takes them too."""

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
            # Header values, up to the end of the line or a closing quote; not a shell
            # variable (a gate's `curl -H "Authorization: Bearer $TOKEN"` is no secret, and is
            # stored, so it must still work when read back).
            r"(?i:(\b(?:authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)"
            + _NOT_A_VARIABLE.format(word=r"[\s\"']*(?:[a-z]+\s+)?", end=r"(?:[\"'\r\n]|$)")
            + r"[^\r\n\"']+)",
            r"(?i:(\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*)",
            # URL userinfo: scheme://user:password@host keeps the user and hides the password.
            r"(?i:(\b[a-z][a-z0-9+.\-]*://[^\s/:@]*:)"
            + _NOT_A_VARIABLE.format(word="", end="@")
            + r"[^\s/@]+(?=@))",
        )
    )
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
            _clean_keys.clear()


def registered() -> tuple[str, ...]:
    """The values registered with :func:`register_secret`, longest first."""
    return _secrets


def _keep_label(match: re.Match[str]) -> str:
    label = next((g for g in match.groups() if g is not None), "")
    return label + REDACTED


def _shaped(text: str) -> bool:
    """Whether a pattern of ``_TOKENS`` might match ``text``. Each pattern needs something tested
    here and most text has none of it, so the regex is skipped: redaction is then about twenty
    times cheaper. Single characters go first (a ``memchr``); case-insensitive words are looked
    for in the lowered text, with the letters the regex also takes for ``i`` and ``s`` folded."""
    if "-" in text and ("sk-" in text or "xox" in text):
        return True
    if "_" in text and ("gh" in text or "github_pat_" in text):
        return True
    if "I" in text and ("AKIA" in text or "ASIA" in text):
        return True
    if ":" in text and "://" in text:
        return True
    lowered = text.lower()
    if not text.isascii():  # U+0131 and U+017F match i and s; U+0130 lowers to i + U+0307
        lowered = lowered.replace("\u0131", "i").replace("\u017f", "s").replace("\u0307", "")
    if "bearer" in lowered:
        return True
    return ("=" in text or ":" in text) and ("authorization" in lowered or "x-api-key" in lowered)


def suspect(text: str) -> bool:
    """Whether :func:`redact` might change ``text``; False is certain. The store asks this of the
    text of a whole record at once, and redacts field by field only when it says True."""
    for secret in _secrets:
        if secret in text:
            return True
    return _shaped(text)


def redact(text: str) -> str:
    """``text`` with every known secret shape and registered secret replaced by ``[redacted]``."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _TOKENS.sub(_keep_label, text) if _shaped(text) else text


_clean_keys: set[str] = set()
"""Mapping keys known to hold no secret: the few names an API answer repeats thousands of times
are checked once (forgotten when a secret is registered, or when there are too many)."""


def redact_key(key: Any) -> Any:
    """A mapping key redacted (cheap for the few keys that come again and again)."""
    if not isinstance(key, str) or key in _clean_keys:
        return key
    clean = redact(key)
    if clean == key:
        if len(_clean_keys) >= 4096:
            _clean_keys.clear()
        _clean_keys.add(key)
    return clean


def redact_data(obj: Any) -> Any:
    """A copy of JSON-able ``obj`` (dicts, lists, tuples, scalars) with its strings, keys
    included, redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, Mapping):
        return {redact_key(key): redact_data(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [redact_data(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(redact_data(item) for item in obj)
    return obj


def redact_record(record: Any) -> Any:
    """``record`` (a dataclass, or a tuple of them) with every string in it redacted, nested
    records, tuples and mappings included: for the few records shown without passing the store.
    What holds no secret is returned as it is, not copied."""
    if isinstance(record, str):
        return redact(record)
    if isinstance(record, tuple):
        items = tuple(redact_record(item) for item in record)
        return record if all(a is b for a, b in zip(items, record, strict=True)) else items
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        changes = {}
        for f in dataclasses.fields(record):
            value = getattr(record, f.name)
            clean = redact_record(value)
            if clean is not value and clean != value and f.init:
                changes[f.name] = clean
        return dataclasses.replace(record, **changes) if changes else record
    if isinstance(record, Mapping | list):
        return redact_data(record)
    return record


def _redacted_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return redact(arg)
    if arg is None or isinstance(arg, int | float):
        return arg  # %d and %f still format it
    return redact(str(arg))


def _redacted_log_record(record: logging.LogRecord) -> logging.LogRecord:
    """``record`` with its message, arguments and traceback redacted. The arguments stay
    arguments (uvicorn's access log formats them one by one), as text where not numbers."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    else:
        record.msg = redact(str(record.msg))
    if isinstance(record.args, Mapping):
        record.args = {key: _redacted_arg(value) for key, value in record.args.items()}
    elif record.args:
        record.args = tuple(_redacted_arg(arg) for arg in record.args)
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def redact_log_records() -> None:
    """Redact every log record this process makes from now on, whatever logs it and however it
    is handled: the record factory is wrapped (once; calling again changes nothing)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "redacting", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _redacted_log_record(make(*args, **kwargs))

    redacting.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)
