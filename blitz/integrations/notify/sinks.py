"""Where notifications go: a webhook, Slack (an incoming webhook, or a channel through the bot)
and email. Each sink is one ``send`` of one :class:`~blitz.integrations.notify.message.Message`;
a failure is a :class:`DeliveryFailed` that says whether trying again may help.

Sinks are built from a ``[notify]`` section (:func:`sinks_of`) and the environment it names, and
register every secret they read (URLs, keys, passwords, the bot token) for redaction, so no
error they raise, nor any log line about it, shows one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from blitz.integrations.notify.message import Message
from blitz.notify_config import NotifyConfig
from blitz.redact import redact, register_secret

SIGNATURE_HEADER = "X-Blitz-Signature"
"""``sha256=<hex>``: HMAC-SHA256 of the request's body, keyed by the webhook's secret."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""The notification's key: the same for every retry of it (a receiver drops what it has seen)."""
TIMEOUT = 20.0
"""Seconds one send may take."""
BOT_TOKEN_ENV = "SLACK_BOT_TOKEN"


class DeliveryFailed(Exception):
    """A sink did not take a notification. ``retryable``: whether trying later may help (an
    outage, a 5xx, a 429) or not (a missing setting, a refused credential, a 4xx);
    ``retry_after``: the seconds the receiver asked to be left alone (a 429's ``Retry-After``),
    0 when it did not say."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float = 0.0) -> None:
        super().__init__(redact(message))
        self.retryable = retryable
        self.retry_after = retry_after


def retry_after(headers: Mapping[str, str]) -> float:
    """The seconds of a ``Retry-After`` header (a number of seconds); 0 without one."""
    try:
        return max(0.0, float(headers.get("Retry-After", headers.get("retry-after", "0"))))
    except ValueError:
        return 0.0  # an HTTP date: rare; the notifier's own backoff applies


class Sink(Protocol):
    """One place notifications go; ``name`` is ``scope:kind`` (``daemon:webhook``)."""

    @property
    def name(self) -> str: ...

    async def send(self, message: Message) -> None:
        """Deliver ``message`` or raise :class:`DeliveryFailed`."""
        ...


def signature(secret: str, body: bytes) -> str:
    """The ``X-Blitz-Signature`` of ``body``: ``sha256=`` and the HMAC-SHA256 hex digest."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retryable(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500


async def _post(url: str, body: bytes, headers: Mapping[str, str], what: str) -> None:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(url, content=body, headers=dict(headers))
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from None
    if response.status_code >= 300:
        text = response.text[:200].strip()
        raise DeliveryFailed(
            f"{what} answered {response.status_code}" + (f": {text}" if text else ""),
            retryable=_retryable(response.status_code),
            retry_after=retry_after(response.headers),
        )


@dataclass
class Webhook:
    """A JSON POST of the notification, signed, with its idempotency key in a header."""

    name: str
    url: str
    secret: str

    async def send(self, message: Message) -> None:
        body = json.dumps(message.payload(), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.secret, body),
            IDEMPOTENCY_HEADER: message.key,
            "X-Blitz-Event": message.kind,
        }
        await _post(self.url, body, headers, "the webhook")


@dataclass
class SlackWebhook:
    """A message through a Slack incoming webhook."""

    name: str
    url: str

    async def send(self, message: Message) -> None:
        body = json.dumps({"text": message.text()}).encode()
        await _post(self.url, body, {"Content-Type": "application/json"}, "Slack's webhook")


@dataclass
class SlackBot:
    """A message in a channel through the bot (``chat.postMessage``)."""

    name: str
    channel: str
    token: str
    base_url: str = ""

    async def send(self, message: Message) -> None:
        from slack_sdk.errors import SlackApiError
        from slack_sdk.web.async_client import AsyncWebClient

        client = AsyncWebClient(token=self.token, base_url=self.base_url or AsyncWebClient.BASE_URL)
        try:
            await client.chat_postMessage(channel=self.channel, text=message.text())
        except SlackApiError as exc:
            status = exc.response.status_code
            data = exc.response.data  # a dict, or the text of an answer that was not JSON
            said = data.get("error", "") if isinstance(data, dict) else ""
            error = str(said) or f"HTTP {status}"
            retryable = status == 429 or status >= 500
            raise DeliveryFailed(
                f"chat.postMessage: {error}",
                retryable=retryable,
                retry_after=retry_after(exc.response.headers or {}),
            ) from None
        except Exception as exc:  # aiohttp's connection errors, timeouts
            raise DeliveryFailed(
                f"Slack's chat.postMessage: {type(exc).__name__}: {exc}", retryable=True
            ) from None


@dataclass
class Email:
    """A mail through SMTP (stdlib smtplib, in a thread)."""

    name: str
    to: tuple[str, ...]
    sender: str
    host: str
    port: int
    security: str
    user: str = ""
    password: str = ""

    async def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail["X-Blitz-Idempotency-Key"] = message.key
        mail.set_content(message.text())
        await asyncio.to_thread(self._send, mail)

    def _send(self, mail: EmailMessage) -> None:
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=TIMEOUT, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            said = exc.smtp_error
            text = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
            retryable = exc.smtp_code >= 400 and exc.smtp_code < 500  # 4xx: try again later
            raise DeliveryFailed(
                f"the SMTP server answered {exc.smtp_code} {text}", retryable=retryable
            ) from None
        except smtplib.SMTPNotSupportedError as exc:  # STARTTLS or login the server lacks
            raise DeliveryFailed(f"SMTP: {exc} (see smtp_security)", retryable=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"SMTP: {type(exc).__name__}: {exc}", retryable=True) from None


@dataclass(frozen=True)
class Unusable:
    """A sink its section asks for that cannot be built (a variable it names is unset): every
    send fails with why, not retried, so it is reported rather than silently dropped."""

    name: str
    problem: str

    async def send(self, message: Message) -> None:
        raise DeliveryFailed(self.problem, retryable=False)


def sinks_of(
    config: NotifyConfig, scope: str, environ: Mapping[str, str], *, slack_api_url: str = ""
) -> list[Sink]:
    """The sinks ``config`` asks for, named ``scope:kind``, their secrets read from
    ``environ`` (the variables the section names) and registered for redaction."""

    def secret(variable: str) -> str | None:
        value = environ.get(variable, "")
        if value:
            register_secret(value)
            # A webhook URL's path is its secret (Slack's /services/T../B../xyz): an error that
            # quotes only the path must not show it either.
            url = urlsplit(value)
            if url.scheme and url.path:
                register_secret(url.path + (f"?{url.query}" if url.query else ""))
        return value or None

    sinks: list[Sink] = []
    if config.webhook_url_env:
        name = f"{scope}:webhook"
        url = secret(config.webhook_url_env)
        key = secret(config.webhook_secret_env) if config.webhook_secret_env else None
        if url is None:
            sinks.append(Unusable(name, f"{config.webhook_url_env} is not set (the webhook's URL)"))
        elif key is None:
            missing = config.webhook_secret_env or "webhook_secret_env"
            sinks.append(Unusable(name, f"{missing} is not set (the webhook's signing key)"))
        else:
            sinks.append(Webhook(name, url, key))
    if config.slack_webhook_url_env:
        name = f"{scope}:slack-webhook"
        url = secret(config.slack_webhook_url_env)
        if url is None:
            problem = f"{config.slack_webhook_url_env} is not set (the Slack webhook's URL)"
            sinks.append(Unusable(name, problem))
        else:
            sinks.append(SlackWebhook(name, url))
    if config.slack_channel:
        name = f"{scope}:slack"
        token = secret(BOT_TOKEN_ENV)
        if token is None:
            sinks.append(Unusable(name, f"{BOT_TOKEN_ENV} is not set (the Slack bot's token)"))
        else:
            sinks.append(SlackBot(name, config.slack_channel, token, slack_api_url))
    if config.email_to:
        name = f"{scope}:email"
        password = secret(config.smtp_password_env) if config.smtp_password_env else ""
        if not config.smtp_host or not config.email_from:
            sinks.append(Unusable(name, "email needs smtp_host and email_from"))
        elif password is None:
            sinks.append(Unusable(name, f"{config.smtp_password_env} is not set (SMTP password)"))
        else:
            sinks.append(
                Email(
                    name,
                    to=tuple(config.email_to),
                    sender=config.email_from,
                    host=config.smtp_host,
                    port=config.smtp_port,
                    security=config.smtp_security,
                    user=config.smtp_user,
                    password=password,
                )
            )
    return sinks
