"""The voice protocol's messages (docs/api.md, "Voice"): what a client may send, checked, and
the close codes for what it may not.

Client text frames are JSON objects with a ``type``: ``hello`` (the audio format and how an
utterance ends, optional and first), ``end`` (the utterance is over: push-to-talk released),
``endpoint`` (how utterances end from now on), ``text`` (a typed utterance) and ``stop`` (stop
the answer being spoken). Binary frames are audio in the hello's format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

MAX_FRAME = 64 * 1024
"""Bytes one frame (binary or text) may hold."""
MAX_UTTERANCE_S = 30.0
"""Seconds of speech one utterance may last."""
MAX_TEXT = 2000
"""Characters a typed utterance may have."""
RATES = (8000, 16000, 24000, 44100, 48000)
"""Sample rates a pcm16 client may send (resampled to 16 kHz)."""

GOING_AWAY = 1001  # the daemon is shutting down
POLICY = 1008  # no valid token
UNSUPPORTED = 1003  # a message of no known type
INVALID = 1007  # not JSON, or a field that does not fit
TOO_BIG = 1009  # a frame or an utterance over its limit

Format = Literal["pcm16", "webm"]
Endpoint = Literal["vad", "client"]
"""How an utterance ends: ``vad`` where the VAD hears its silence (hands-free), or ``end``;
``client`` only at ``end`` (push-to-talk: a pause while the button is held is part of it). The
VAD runs either way on pcm16, to hear speech start over an answer (barge-in)."""


class Refused(Exception):
    """The client sent what the protocol does not allow: the socket closes with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        # A close reason is at most 123 bytes of UTF-8.
        self.reason = reason.encode()[:120].decode(errors="ignore")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    format: Format = "pcm16"
    sample_rate: int = 16000
    endpoint: Endpoint = "vad"  # "client" for webm, which the VAD does not hear


@dataclass(frozen=True, slots=True)
class Endpointing:
    """Utterances end as ``endpoint`` says from now on (push-to-talk or hands-free chosen)."""

    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class End:
    """The current utterance is over."""


@dataclass(frozen=True, slots=True)
class Typed:
    """An utterance typed rather than spoken."""

    text: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the answer being spoken."""


ClientMessage = Hello | End | Typed | Stop | Endpointing


def check_size(size: int, what: str) -> None:
    if size > MAX_FRAME:
        raise Refused(TOO_BIG, f"a {what} frame is over {MAX_FRAME // 1024} KiB")


def parse(text: str) -> ClientMessage:
    """One client text frame as a message; :class:`Refused` when it is not one."""
    check_size(len(text.encode("utf-8")), "text")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(INVALID, f"a text frame must be a JSON object: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise Refused(INVALID, "a text frame must be a JSON object")
    kind = data.get("type")
    if kind == "hello":
        return _hello(data)
    if kind == "end":
        return End()
    if kind == "stop":
        return Stop()
    if kind == "endpoint":
        return Endpointing(_endpoint(data, "endpoint", None))
    if kind == "text":
        said = data.get("text")
        if not isinstance(said, str) or not said.strip():
            raise Refused(INVALID, "text: 'text' must be a non-empty string")
        if len(said) > MAX_TEXT:
            raise Refused(TOO_BIG, f"text: over {MAX_TEXT} characters")
        return Typed(said.strip())
    if kind is None:
        raise Refused(UNSUPPORTED, "a message needs a 'type' (hello, end, endpoint, text or stop)")
    raise Refused(UNSUPPORTED, f"unknown message type {str(kind)[:40]!r}")


def _hello(data: dict[str, object]) -> Hello:
    chosen = data.get("format", "pcm16")
    if chosen not in ("pcm16", "webm"):
        raise Refused(INVALID, "hello: 'format' must be 'pcm16' or 'webm'")
    rate = data.get("sample_rate", 16000)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate not in RATES:
        raise Refused(INVALID, "hello: 'sample_rate' must be one of " + ", ".join(map(str, RATES)))
    format: Format = "webm" if chosen == "webm" else "pcm16"
    return Hello(format=format, sample_rate=rate, endpoint=_endpoint(data, "hello", format))


def _endpoint(data: dict[str, object], what: str, format: Format | None) -> Endpoint:
    """The message's ``endpoint`` (in a hello, optional: ``vad`` for pcm16, ``client`` for
    webm, which only ``end`` can end)."""
    given = data.get(
        "endpoint", None if format is None else "client" if format == "webm" else "vad"
    )
    if given not in ("vad", "client"):
        raise Refused(INVALID, f"{what}: 'endpoint' must be 'vad' or 'client'")
    if given == "vad" and format == "webm":
        raise Refused(INVALID, "hello: 'endpoint' 'vad' needs 'format' 'pcm16'")
    return "vad" if given == "vad" else "client"
