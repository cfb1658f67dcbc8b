"""Each sink against a real server on 127.0.0.1: Slack's incoming webhook and Web API
(``chat.postMessage`` through slack_sdk, its ``base_url`` pointed at a local receiver), and
email through a local aiosmtpd server."""

from __future__ import annotations

import asyncio
import socket
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from receiver import Receiver

from blitz.integrations.notify.message import Message
from blitz.integrations.notify.notifier import send
from blitz.integrations.notify.sinks import DeliveryFailed, Email, SlackBot, SlackWebhook, sinks_of
from blitz.notify_config import NotifyConfig

MESSAGE = Message(
    key="k-0001", kind="goal.succeeded", title="✅ Goal g-1 succeeded", lines=("Tasks 3/3 done",)
)
BOT_TOKEN = "xoxb-0000-test-bot-token"


async def test_the_slack_webhook_sink_posts_the_text() -> None:
    with Receiver() as slack:
        await send(SlackWebhook("daemon:slack-webhook", slack.url + "/services/T/B/x"), MESSAGE)
        [request] = slack.requests
    assert request.path == "/services/T/B/x"
    assert request.json() == {"text": "✅ Goal g-1 succeeded\nTasks 3/3 done"}


async def test_the_slack_bot_sink_posts_to_its_channel_through_the_web_api() -> None:
    answer = {"ok": True, "channel": "C123", "ts": "1.000"}
    with Receiver(answer=answer) as slack:
        bot = SlackBot("daemon:slack", "C123", BOT_TOKEN, base_url=slack.url + "/api/")
        await send(bot, MESSAGE)
        [request] = slack.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert request.json()["channel"] == "C123"
    assert request.json()["text"].startswith("✅ Goal g-1 succeeded")


@pytest.mark.parametrize(
    ("receiver", "retryable", "said"),
    [
        (Receiver(failing=True, fail_status=429, retry_after="30"), True, "429"),
        (Receiver(failing=True, fail_status=503), True, "503"),
        (Receiver(answer={"ok": False, "error": "invalid_auth"}), False, "invalid_auth"),
    ],
    ids=["rate-limited", "unavailable", "revoked"],
)
async def test_slack_bot_failures_say_whether_a_retry_may_help(
    receiver: Receiver, retryable: bool, said: str
) -> None:
    with receiver as slack:
        bot = SlackBot("daemon:slack", "C123", BOT_TOKEN, base_url=slack.url + "/api/")
        with pytest.raises(DeliveryFailed) as failed:
            await send(bot, MESSAGE)
    assert failed.value.retryable is retryable
    assert failed.value.retry_after == (30 if said == "429" else 0)  # Retry-After, if said
    assert said in str(failed.value)
    assert BOT_TOKEN not in str(failed.value)


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_email_sink_mails_through_smtp() -> None:
    mailbox = Mailbox()
    server = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    await asyncio.to_thread(server.start)
    try:
        config = NotifyConfig(
            email_to=["ops@example.com", "lead@example.com"],
            email_from="blitz@example.com",
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="none",
        )
        [sink] = sinks_of(config, "project:repo", {})
        assert isinstance(sink, Email) and sink.name == "project:repo:email"
        await send(sink, MESSAGE)
    finally:
        await asyncio.to_thread(server.stop)
    [(sender, to, content)] = mailbox.mails
    assert sender == "blitz@example.com"
    assert to == ["ops@example.com", "lead@example.com"]
    mail = message_from_bytes(content, policy=policy.default)
    assert mail["Subject"] == "✅ Goal g-1 succeeded"
    assert mail["X-Blitz-Idempotency-Key"] == "k-0001"
    assert "Tasks 3/3 done" in mail.get_body().get_content()


async def test_an_smtp_server_that_is_not_there_is_a_retryable_failure() -> None:
    sink = Email(
        "daemon:email",
        to=("ops@example.com",),
        sender="blitz@example.com",
        host="127.0.0.1",
        port=free_port(),  # nothing listens
        security="none",
    )
    with pytest.raises(DeliveryFailed) as failed:
        await send(sink, MESSAGE)
    assert failed.value.retryable


def test_sinks_are_built_from_the_section_and_the_variables_it_names() -> None:
    config = NotifyConfig(
        webhook_url_env="HOOK",
        webhook_secret_env="HOOK_KEY",
        slack_webhook_url_env="SLACK_HOOK",
        slack_channel="#builds",
    )
    environ = {
        "HOOK": "https://example.com/h",
        "HOOK_KEY": "key-0123456789",
        "SLACK_HOOK": "https://hooks.slack.com/services/T0/B0/sekr1t0123456789",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
    }
    sinks = sinks_of(config, "daemon", environ)
    assert [s.name for s in sinks] == [
        "daemon:webhook",
        "daemon:slack-webhook",
        "daemon:slack",
    ]
    from blitz.redact import redact

    # Every secret read is redacted from now on, the webhook's path too.
    text = f"{BOT_TOKEN} /services/T0/B0/sekr1t0123456789 key-0123456789"
    assert "sekr1t" not in redact(text) and BOT_TOKEN not in redact(text)
    assert "key-0123456789" not in redact(text)


async def test_starttls_a_server_does_not_offer_is_a_failure_no_retry_fixes() -> None:
    server = Controller(Mailbox(), hostname="127.0.0.1", port=free_port())
    await asyncio.to_thread(server.start)
    try:
        sink = Email(
            "daemon:email",
            to=("ops@example.com",),
            sender="blitz@example.com",
            host="127.0.0.1",
            port=server.port,
            security="starttls",
        )
        with pytest.raises(DeliveryFailed) as failed:
            await send(sink, MESSAGE)
    finally:
        await asyncio.to_thread(server.stop)
    assert not failed.value.retryable
    assert "smtp_security" in str(failed.value)
