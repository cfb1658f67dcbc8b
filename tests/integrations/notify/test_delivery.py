"""The outbox and its notifier: a notifiable event becomes a notification in the store, and the
notifier delivers it to a real webhook receiver on 127.0.0.1 at least once, retried with
backoff, signed, and gives up on a sink that keeps failing, saying so. Time is the notifier's
injected clock, so backoff is checked without waiting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from databases import empty_database
from notify_helpers import KEY, signed
from receiver import Receiver

from blitz.events import Event, EventKind
from blitz.integrations.notify.notifier import Notifier
from blitz.settings import DaemonNotify
from blitz.store.outbox import DeliveryState
from blitz.store.sql import SqlStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """On SQLite and PostgreSQL (taking due deliveries locks rows there: SKIP LOCKED)."""
    opened = SqlStore(empty_database(request.param, tmp_path / "blitz.db"))
    yield opened
    await opened.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def notifier(store: SqlStore, url: str, clock: Clock, **settings: object) -> Notifier:
    config = DaemonNotify.model_validate(
        {"webhook_url_env": "HOOK_URL", "webhook_secret_env": "HOOK_KEY", **settings}
    )
    return Notifier(
        store,
        config,
        project_config=lambda project: None,
        environ={"HOOK_URL": url, "HOOK_KEY": KEY},
        clock=clock,
    )


async def write_events(store: SqlStore) -> None:
    store.write(
        events=[
            Event(kind=EventKind.GOAL_SUCCEEDED, goal_id="g-1", message="the goal is done"),
            Event(kind=EventKind.TASK_STARTED, goal_id="g-1", task_id="t"),  # not notifiable
            Event(kind=EventKind.PROJECT_PAUSED, project_id="p-1", message="out of money"),
        ]
    )
    await store.flush()


async def test_a_notifiable_event_is_a_notification_written_with_it(store: SqlStore) -> None:
    await write_events(store)
    waiting = store.outbox.unexpanded()
    assert [n.kind for n in waiting] == ["goal.succeeded", "project.paused"]
    assert [n.message for n in waiting] == ["the goal is done", "out of money"]
    assert len({n.key for n in waiting}) == 2  # an idempotency key each
    assert store.outbox.waiting() == 2


async def test_an_event_that_is_not_written_makes_no_notification(tmp_path: Path) -> None:
    """A process that lost its goal to another has its events dropped in the flush's
    transaction (the fence): their notifications go with them."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    stale, new_owner = SqlStore(url), SqlStore(url)
    try:
        stale.claim("g-1", "stale", ttl=-1)  # expired at once: free for the other to take
        assert new_owner.claim("g-1", "new", ttl=3600).owner == "new"
        stale.write(events=[Event(kind=EventKind.GOAL_SUCCEEDED, goal_id="g-1")])
        await stale.flush()
        assert stale.events(goal_id="g-1") == []
        assert new_owner.outbox.unexpanded() == []
        new_owner.write(events=[Event(kind=EventKind.GOAL_SUCCEEDED, goal_id="g-1")])
        await new_owner.flush()
        assert [n.goal_id for n in stale.outbox.unexpanded()] == ["g-1"]
    finally:
        await stale.aclose()
        await new_owner.aclose()


async def test_deliveries_that_fail_at_first_arrive_later_once_each_signed(
    store: SqlStore,
) -> None:
    await write_events(store)
    clock = Clock()
    with Receiver(fail_first=3) as hook:
        sender = notifier(store, hook.url + "/hook", clock, backoff=10.0)
        await sender.step()  # both sent, both refused
        assert len(hook.requests) == 2
        await sender.step()  # nothing is due before its backoff
        assert len(hook.requests) == 2
        for _ in range(6):
            clock.now += 600
            await sender.step()
        keys = {n.key for _, n in store.outbox.deliveries()}
        accepted = hook.accepted
        assert sorted(r.json()["idempotency_key"] for r in accepted) == sorted(keys)
        assert len(hook.requests) == 5  # 3 refused, then each once
        for request in hook.requests:
            assert signed(request)
            assert request.headers["Idempotency-Key"] == request.json()["id"]
            assert request.json()["id"] in keys  # a retry carries the notification's key
        events = {r.json()["event"]: r.json() for r in accepted}
        assert set(events) == {"goal.succeeded", "project.paused"}
        assert "the goal is done" in events["goal.succeeded"]["text"]
    states = {d.sink: d.state for d, _ in store.outbox.deliveries()}
    assert set(states.values()) == {DeliveryState.DELIVERED}
    assert store.outbox.next_due() is None


async def test_a_receiver_s_retry_after_is_waited_for(store: SqlStore) -> None:
    store.write(events=[Event(kind=EventKind.GOAL_SUCCEEDED, goal_id="g-1", message="done")])
    await store.flush()
    clock = Clock()
    with Receiver(fail_first=1, fail_status=429, retry_after="120") as hook:
        sender = notifier(store, hook.url + "/hook", clock, backoff=1.0)
        await sender.step()  # refused: "come back in 120 s", longer than the 1 s backoff
        assert [r.status for r in hook.requests] == [429]
        clock.now += 60
        await sender.step()
        assert len(hook.requests) == 1  # not before the receiver asked
        clock.now += 61
        await sender.step()
        assert [r.status for r in hook.requests] == [429, 200]


async def test_a_sink_that_keeps_failing_is_given_up_and_reported(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.write(events=[Event(kind=EventKind.GOAL_FAILED, goal_id="g-2", message="it broke")])
    await store.flush()
    clock = Clock()
    secret_path = "/hook/sekr1t-path-token-0123456789"
    with Receiver(failing=True) as hook, caplog.at_level(logging.WARNING, "blitz.notify"):
        sender = notifier(store, hook.url + secret_path, clock, max_attempts=3)
        for _ in range(6):
            await sender.step()
            clock.now += 3600
        assert len(hook.requests) == 3  # the bound, then no more
    [(delivery, _)] = store.outbox.deliveries()
    assert delivery.state is DeliveryState.FAILED and delivery.attempts == 3
    assert "500" in delivery.last_error
    await store.flush()
    [failed] = store.events(goal_id="g-2")[-1:]
    assert failed.kind is EventKind.NOTIFY_FAILED
    assert failed.data["sink"] == "daemon:webhook" and failed.data["attempts"] == 3
    assert "gave up" in failed.message
    assert any("gave up" in r.getMessage() for r in caplog.records)
    # The URL's secret (echoed back by the receiver) reaches neither the store nor the log.
    said = [delivery.last_error, failed.message, *(r.getMessage() for r in caplog.records)]
    assert all("sekr1t" not in text for text in said), said
    assert "[redacted]" in delivery.last_error


async def test_a_refusal_no_retry_can_fix_is_given_up_at_once(store: SqlStore) -> None:
    store.write(events=[Event(kind=EventKind.BREAKER_OPENED, message="backend:x opened")])
    await store.flush()
    clock = Clock()
    with Receiver(failing=True, fail_status=400) as hook:
        sender = notifier(store, hook.url, clock)
        await sender.step()
        clock.now += 3600
        await sender.step()
        assert len(hook.requests) == 1
    [(delivery, _)] = store.outbox.deliveries()
    assert delivery.state is DeliveryState.FAILED and delivery.attempts == 1


async def test_only_the_events_a_section_asks_for_are_sent(store: SqlStore) -> None:
    await write_events(store)
    with Receiver() as hook:
        await notifier(store, hook.url, Clock(), events=["project.paused"]).step()
        assert [r.json()["event"] for r in hook.requests] == ["project.paused"]
    assert store.outbox.waiting() == 0  # the other one was expanded to no delivery


async def test_an_unset_variable_is_reported_not_dropped(store: SqlStore) -> None:
    await write_events(store)
    config = DaemonNotify(webhook_url_env="HOOK_URL", webhook_secret_env="HOOK_KEY")
    sender = Notifier(store, config, project_config=lambda p: None, environ={}, clock=Clock())
    await sender.step()
    found = store.outbox.deliveries()
    assert {d.state for d, _ in found} == {DeliveryState.FAILED}
    assert all("HOOK_URL is not set" in d.last_error for d, _ in found)


async def test_a_notification_written_too_long_ago_is_not_sent(store: SqlStore) -> None:
    await write_events(store)
    clock = Clock()
    clock.now = max(n.ts for n in store.outbox.unexpanded()) + 2 * 86400
    with Receiver() as hook:
        await notifier(store, hook.url, clock, max_age=86400.0).step()
        assert hook.requests == []
    assert store.outbox.waiting() == 0 and store.outbox.deliveries() == []


async def test_a_notifier_woken_as_it_is_stopped_still_stops(store: SqlStore) -> None:
    """The wake and the stop in the same turn of the loop: Python 3.11's ``wait_for`` returned
    the wake and dropped the cancel, and a daemon's shutdown waited for its notifier forever."""
    sender = notifier(store, "http://127.0.0.1:9/", Clock())
    await sender.start()
    for _ in range(50):  # its first round done: waiting to be woken
        await asyncio.sleep(0.01)
    running = [t for t in asyncio.all_tasks() if "Notifier._run" in repr(t.get_coro())]
    assert len(running) == 1, "the notifier runs a task"
    sender.observe(Event(kind=EventKind.GOAL_SUCCEEDED, goal_id="g-1"))
    async with asyncio.timeout(10) as deadline:  # stopped in the same turn as the wake
        await sender.stop()
    assert not deadline.expired(), "the stop returned only because its deadline cancelled it"
    assert all(t.done() for t in running)
