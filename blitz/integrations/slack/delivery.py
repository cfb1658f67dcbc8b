"""Blitz's side of Slack's Web API: the calls it makes, retried and paused as Slack needs.

A 429 is retried after its ``Retry-After``, a 5xx and a dropped connection with exponential
backoff (slack_sdk's retry handlers, which the client runs on every call, bolt's included). A
token Slack refuses (``invalid_auth``, ``token_revoked``, ...) pauses delivery: one clear log
line, then nothing is sent until the daemon restarts with a good token; the threads' state is in
the store, so they catch up then. Any other failure is logged and dropped: Slack being down
never stops a goal.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from blitz.integrations.slack.messages import Text

log = logging.getLogger("blitz.slack")

REFUSED_TOKEN = frozenset(
    {"invalid_auth", "token_revoked", "token_expired", "account_inactive", "not_authed"}
)
"""Slack's errors for a bot token it no longer takes."""

RETRIES = 5
"""Retries of one call after a 429, a 5xx or a dropped connection."""


class _ServerErrors(AsyncRetryHandler):
    """Retries any 5xx (slack_sdk's own handler takes only 500 and 503)."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and 500 <= response.status_code < 600


def client(token: str, *, base_url: str = "", backoff: float = 0.5) -> AsyncWebClient:
    """A Web API client that retries what Slack asks to be retried (see the module)."""
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff)
    handlers: list[AsyncRetryHandler] = [
        AsyncRateLimitErrorRetryHandler(max_retry_count=RETRIES),
        _ServerErrors(max_retry_count=RETRIES, interval_calculator=interval),
        AsyncConnectionErrorRetryHandler(max_retry_count=RETRIES, interval_calculator=interval),
    ]
    kwargs: dict[str, Any] = {"base_url": base_url} if base_url else {}
    return AsyncWebClient(token=token, retry_handlers=handlers, **kwargs)


class Delivery:
    """The calls blitz makes to Slack; each answers None when it did not go through."""

    def __init__(self, web: AsyncWebClient) -> None:
        self.web = web
        self.paused = ""  # why delivery stopped ("" while it goes on)

    async def post(self, channel: str, text: Text, *, thread_ts: str = "") -> str | None:
        """Post ``text`` (in the thread ``thread_ts``); the new message's ts."""
        answer = await self._call(
            "chat.postMessage",
            lambda: self.web.chat_postMessage(
                channel=channel,
                text=text.text,
                blocks=_blocks(text.blocks),
                thread_ts=thread_ts or None,
            ),
        )
        return str(answer["ts"]) if answer is not None else None

    async def update(self, channel: str, ts: str, text: Text) -> bool:
        answer = await self._call(
            "chat.update",
            lambda: self.web.chat_update(
                channel=channel, ts=ts, text=text.text, blocks=_blocks(text.blocks) or []
            ),
        )
        return answer is not None

    async def react(self, channel: str, ts: str, name: str) -> bool:
        answer = await self._call(
            "reactions.add",
            lambda: self.web.reactions_add(channel=channel, timestamp=ts, name=name),
            quiet={"already_reacted"},
        )
        return answer is not None

    async def whisper(self, channel: str, user: str, text: str, *, thread_ts: str = "") -> bool:
        """Tell ``user`` alone (an ephemeral message)."""
        answer = await self._call(
            "chat.postEphemeral",
            lambda: self.web.chat_postEphemeral(
                channel=channel, user=user, text=text, thread_ts=thread_ts or None
            ),
        )
        return answer is not None

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[AsyncSlackResponse]],
        *,
        quiet: frozenset[str] | set[str] = frozenset(),
    ) -> AsyncSlackResponse | None:
        if self.paused:
            return None
        try:
            return await call()
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            if error in REFUSED_TOKEN:
                self.pause(error)
            elif error not in quiet:
                log.warning("Slack %s failed: %s", method, error or exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("Slack %s failed after retries: %r", method, exc)
        return None

    def pause(self, error: str) -> None:
        """Stop delivering, saying so once."""
        if self.paused:
            return
        self.paused = error
        log.error(
            "Slack delivery paused: Slack refused the bot token (%s). Set a valid "
            "SLACK_BOT_TOKEN and restart the daemon; the goals' threads catch up then.",
            error,
        )


def _blocks(blocks: Sequence[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return list(blocks) or None
