"""The voice protocol's client messages: every text frame is a message or a refusal with a close
code, never another exception (property tests), and the grammar takes any transcript."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blitz.voice import frames
from blitz.voice.frames import End, Endpointing, Hello, Refused, Stop, Typed, parse
from blitz.voice.intent import Known
from blitz.voice.intent import parse as understand

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=10,
)
MESSAGES = st.fixed_dictionaries(
    {"type": st.sampled_from(["hello", "end", "endpoint", "text", "stop", "dance", 3, "ü" * 60])},
    optional={
        "format": st.sampled_from(["pcm16", "webm", "mp3", 1]),
        "sample_rate": st.sampled_from([16000, 48000, 123, "16000", True]),
        "text": st.text() | st.integers(),
        "endpoint": st.sampled_from(["vad", "client", "later", None, 0]),
    },
)


@given(st.text() | JSON.map(json.dumps) | MESSAGES.map(json.dumps))
def test_every_text_frame_is_a_message_or_a_refusal_with_a_close_code(text: str) -> None:
    try:
        message = parse(text)
    except Refused as exc:
        assert exc.code in (frames.UNSUPPORTED, frames.INVALID, frames.TOO_BIG)
        assert exc.reason and len(exc.reason.encode()) <= 123
    else:
        assert isinstance(message, Hello | End | Typed | Stop | Endpointing)


def test_the_messages() -> None:
    assert parse('{"type": "hello"}') == Hello(format="pcm16", sample_rate=16000)
    assert parse('{"type": "hello", "format": "webm", "sample_rate": 48000}') == Hello(
        format="webm", sample_rate=48000, endpoint="client"
    )
    assert parse('{"type": "hello", "endpoint": "client"}') == Hello(endpoint="client")
    assert parse('{"type": "endpoint", "endpoint": "vad"}') == Endpointing("vad")
    assert parse('{"type": "end"}') == End()
    assert parse('{"type": "stop"}') == Stop()
    assert parse('{"type": "text", "text": "  status "}') == Typed("status")


@given(st.text())
def test_the_grammar_takes_any_transcript(text: str) -> None:
    understand(text, Known(projects=("calc", "api-server")))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"type": "hello", "endpoint": "later"}', "hello: 'endpoint' must be 'vad' or 'client'"),
        ('{"type": "hello", "format": "webm", "endpoint": "vad"}', "hello: 'endpoint' 'vad' needs"),
        ('{"type": "endpoint"}', "endpoint: 'endpoint' must be 'vad' or 'client'"),
    ],
)
def test_an_endpoint_that_does_not_fit_is_refused(text: str, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        parse(text)
    assert refused.value.code == frames.INVALID and refused.value.reason.startswith(reason)
