"""Secret redaction: every known token shape, registered values, and nested event data."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blitz.domain import Attempt, GateResult
from blitz.redact import (
    REDACTED,
    redact,
    redact_data,
    redact_log_records,
    redact_record,
    register_secret,
    suspect,
)

ANTHROPIC = "sk-ant-api03-" + "Ab1_-" * 8
OPENAI = "sk-" + "a1B2c3D4" * 4
OPENAI_PROJECT = "sk-proj-" + "Zz9_" * 10
GITHUB = ["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]
GITHUB_PAT = "github_pat_11ABCDEFG0" + "x" * 60
SLACK = ["xoxb-1234567890-0987654321-abcdefABCDEF", "xoxp-1-2-3-abcdef12", "xoxa-2-abcdefghij",
         "xoxr-abcdefghij", "xoxs-abcdefghij"]  # fmt: skip
AWS = "AKIAIOSFODNN7EXAMPLE"
TOKENS = [ANTHROPIC, OPENAI, OPENAI_PROJECT, GITHUB_PAT, AWS, *SLACK] + [
    prefix + "0123456789abcdefABCDEF0123456789abcd" for prefix in GITHUB
]


@pytest.mark.parametrize("token", TOKENS)
def test_known_token_shapes_are_redacted(token: str) -> None:
    assert redact(f"using {token} now") == f"using {REDACTED} now"
    assert redact(token) == REDACTED
    assert redact(f'{{"key":"{token}"}}') == f'{{"key":"{REDACTED}"}}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_", "Bearer [redacted]"),
        ("got bearer abcdefgh12345678== back", "got bearer [redacted] back"),
        ("Authorization: token abc123", "Authorization: [redacted]"),
        ("authorization=Basic dXNlcjpwYXNz\nnext line", "authorization=[redacted]\nnext line"),
        (
            '{"Authorization": "Bearer abcdefghijkl", "x": 1}',
            '{"Authorization": "[redacted]", "x": 1}',
        ),
        (
            "curl -H 'Proxy-Authorization: secret' url",
            "curl -H 'Proxy-Authorization: [redacted]' url",
        ),
        ("x-api-key: 0123456789abcdef", "x-api-key: [redacted]"),
        ("https://user:pa55w0rd@github.com/o/r.git", "https://user:[redacted]@github.com/o/r.git"),
        ("postgresql://blitz:s3cret@db:5432/blitz", "postgresql://blitz:[redacted]@db:5432/blitz"),
        ("https://x-access-token:tok@host/p", "https://x-access-token:[redacted]@host/p"),
        ("clone https://:onlypass@host/r", "clone https://:[redacted]@host/r"),
    ],
)
def test_headers_bearer_tokens_and_url_passwords(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "task t12 succeeded in 3.2s (commit 3f9a1c2b)",
        "import sklearn; sk-learn and task-1",
        "ghp_short and gh_cli and my_ghp_",
        "the bearer of bad news",
        "https://github.com/owner/repo/pull/12",
        "http://127.0.0.1:8080/path@v2",
        "mailto user@example.com",
        "AKIA is not enough",
        "authorization failed for this user",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_registered_values_are_redacted_exactly() -> None:
    register_secret("plain-value-1234")
    register_secret("prefix-plain-value-1234-suffix")  # contains the first: replaced whole
    assert redact("a plain-value-1234 b") == "a [redacted] b"
    assert redact("prefix-plain-value-1234-suffix!") == "[redacted]!"
    assert redact("plain-value-123") == "plain-value-123"


def test_short_registered_values_are_ignored() -> None:
    register_secret("1234567")
    assert redact("pin 1234567") == "pin 1234567"
    register_secret("12345678")
    assert redact("pin 12345678") == "pin [redacted]"


def test_redact_data_walks_nested_json() -> None:
    data = {
        "message": f"key {OPENAI}",
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "list": [AWS, 1, {"deep": f"Bearer {'t' * 20}"}],
        "tuple": ("fine", ANTHROPIC),
    }
    original = repr(data)
    assert redact_data(data) == {
        "message": f"key {REDACTED}",
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "list": [REDACTED, 1, {"deep": f"Bearer {REDACTED}"}],
        "tuple": ("fine", REDACTED),
    }
    assert repr(data) == original  # the input is not changed
    assert redact_data(AWS) == REDACTED
    assert redact_data(7) == 7


# Text built from the pieces the patterns look for, so the examples hit them often.
FRAGMENTS = ["Bearer ", "Authorization", ": ", "=", "https://", "user:", "@", "/", "sk-", "ant-",
             "proj-", "ghp_", "github_pat_", "xoxb-", "AKIA", "x-api-key", REDACTED, "'", '"',
             "abcdefgh12345678", "ABCDEFGH12345678", "_", "-", " ", "\n", "AUTHOR\u0130ZATION",
             "authori\u0131ation", "x-api-\u212aey", "BEARER", "bEaReR ", "gh", "ASIA", "xox",
             "plain-value-1234"]  # fmt: skip
texts = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=20).map("".join)


@given(before=texts, token=st.sampled_from(TOKENS), after=texts)
def test_a_token_never_survives_whatever_surrounds_it(before: str, token: str, after: str) -> None:
    assert token not in redact(f"{before} {token} {after}")


@given(texts)
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@given(texts)
def test_text_not_suspected_is_left_alone(text: str) -> None:
    # The store checks a whole record's text with suspect() and skips redaction when it says no.
    register_secret("plain-value-1234")
    if not suspect(text):
        assert redact(text) == text


def test_redact_record_reaches_every_string_of_nested_records() -> None:
    gate = GateResult(
        name="test", command=f"run {OPENAI}", passed=False, exit_code=None, duration=1.0,
        output_tail=f"saw {AWS}", new_failures=("ok", ANTHROPIC),
    )  # fmt: skip
    attempt = Attempt(id="a", goal_id="g", task_id="t", number=1, summary=OPENAI, gates=(gate,))
    clean = redact_record(attempt)
    assert clean.summary == REDACTED
    assert clean.gates[0].command == f"run {REDACTED}"
    assert clean.gates[0].output_tail == f"saw {REDACTED}"
    assert clean.gates[0].new_failures == ("ok", REDACTED)
    assert clean.gates[0].exit_code is None and clean.number == 1
    assert attempt.summary == OPENAI  # the input is not changed


def test_log_records_are_redacted_whoever_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("log-canary-0123456789")
    redact_log_records()
    redact_log_records()  # a second call changes nothing
    log = logging.getLogger("blitz.test.redact")
    with caplog.at_level(logging.INFO):
        log.info("got %s and %d with %s", "log-canary-0123456789", 7, ValueError(OPENAI))
        log.info("header %(h)s", {"h": f"Bearer {'t' * 20}"})
        try:
            raise RuntimeError(f"failed with {ANTHROPIC}")
        except RuntimeError:
            log.exception("boom")
    text = caplog.text
    assert "log-canary-0123456789" not in text and OPENAI not in text
    assert ANTHROPIC not in text and "t" * 20 not in text
    assert "got [redacted] and 7 with [redacted]" in text
    assert f"RuntimeError: failed with {REDACTED}" in text


def test_redact_data_redacts_keys_too() -> None:
    assert redact_data({"name": 1, OPENAI: {AWS: "x"}}) == {"name": 1, REDACTED: {REDACTED: "x"}}
    assert redact_data({"late-secret-key-42": 1}) == {"late-secret-key-42": 1}
    register_secret("late-secret-key-42")  # a key found clean before is checked again
    assert redact_data({"late-secret-key-42": 1}) == {REDACTED: 1}


@pytest.mark.parametrize(
    "text",
    [
        'curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com',
        "curl -H 'x-api-key: ${ANTHROPIC_API_KEY}' url",
        "Authorization: $TOKEN",
        "git clone https://ci:$PASSWORD@example.com/r.git",
        "https://ci:${PASSWORD}@example.com/r.git",
    ],
)
def test_a_shell_variable_is_not_a_secret(text: str) -> None:
    # Gate and check commands are stored, redacted: one that names its token by variable must
    # still work when read back.
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    ["Authorization: Bearer $TOKEN-and-more", "Authorization: $2a$10$abcdefgh", "https://u:$x$y@h"],
)
def test_more_than_a_variable_is_still_redacted(text: str) -> None:
    assert REDACTED in redact(text)
