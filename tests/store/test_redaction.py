"""Redaction before storage, on SQLite and PostgreSQL: no secret of an event or a record reaches
the database, read back through the store or read from the database itself."""

from __future__ import annotations

from backdoor import Backdoor
from sample_records import event, gate_result, make_attempt, make_goal

from blitz.domain import BreakerRecord
from blitz.redact import register_secret
from blitz.store.sql import SqlStore


def test_events_are_redacted_before_they_are_stored(store: SqlStore, backdoor: Backdoor) -> None:
    registered = "correct-horse-battery-staple"
    register_secret(registered)
    store.write(
        events=[
            event(
                message=f"calling with key sk-ant-api03-{'a' * 30} and {registered}",
                data={
                    "header": "Authorization: Bearer abcdefghijkl",
                    "urls": ["https://bot:hunter2hunter2@git.test/repo.git"],
                    "nested": {"token": "ghp_" + "b" * 36, "count": 3, "pair": ("x", registered)},
                },
            )
        ]
    )
    store.flush_sync()
    [stored] = store.events()
    assert stored.message == "calling with key [redacted] and [redacted]"
    assert stored.data == {
        "header": "Authorization: [redacted]",
        "urls": ["https://bot:[redacted]@git.test/repo.git"],
        "nested": {"token": "[redacted]", "count": 3, "pair": ["x", "[redacted]"]},
    }
    held = backdoor.stored_text()
    assert "calling with key" in held  # the event is there to be read
    for secret in (registered, "a" * 30, "abcdefghijkl", "hunter2hunter2", "b" * 36):
        assert secret not in held


def test_diagnostic_text_of_records_is_redacted(store: SqlStore, backdoor: Backdoor) -> None:
    secret = "xoxb-1234567890-abcdefghij"
    store.write(
        make_goal(error=f"slack said {secret}"),
        make_attempt(
            error=f"auth {secret}",
            summary=secret,
            gates=(gate_result("test", output_tail=f"env: {secret}"),),
        ),
        BreakerRecord(key="global", last_error=secret),
    )
    store.flush_sync()
    goal = store.get_goal("g-1")
    assert goal is not None and goal.error == "slack said [redacted]"
    [attempt] = store.load_attempts("g-1")
    assert (attempt.error, attempt.summary) == ("auth [redacted]", "[redacted]")
    assert attempt.gates[0].output_tail == "env: [redacted]"
    assert store.load_breakers()[0].last_error == "[redacted]"
    held = backdoor.stored_text()
    assert "slack said" in held
    assert "abcdefghij" not in held
