"""A speech service as blitz reaches it: its URL, model, voice and key, and the one place a
request to it is sent and its failures become blitz's errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from blitz.errors import BlitzError, ConfigError, RunError

OPENAI_HOST = "api.openai.com"


class SpeechUnavailable(RunError):
    """The speech service is down, too slow, or failed (5xx): trying again may help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class SpeechRejected(RunError):
    """The speech service refused the request itself (a 4xx other than the key or the model:
    audio it cannot decode, text too long...): the same request would fail again."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, retryable=False)
        self.status = status


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpeechEndpoint:
    """One OpenAI-shaped speech service: ``url`` is its API's base (``.../v1``)."""

    url: str
    model: str
    voice: str = ""
    api_key: str = dataclasses.field(default="", repr=False)
    timeout: float = 30.0

    @staticmethod
    def is_openai(url: str) -> bool:
        """Whether ``url`` is OpenAI's own API (the only one OpenAI's key is sent to)."""
        return (urlsplit(url).hostname or "").lower() == OPENAI_HOST

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def where(self, path: str) -> str:
        return self.url.rstrip("/") + path

    @asynccontextmanager
    async def request(
        self, client: httpx.AsyncClient, path: str, setting: str, **sent: Any
    ) -> AsyncIterator[httpx.Response]:
        """POST to ``path`` and yield the response once it says it succeeded (its body still to
        be read, so audio can stream); every failure, reading the body included, is a
        :class:`SpeechUnavailable`, :class:`SpeechRejected` or :class:`ConfigError`.
        ``setting`` names the settings that chose this service (``BLITZ_STT``), for messages."""
        url = self.where(path)
        timeout = httpx.Timeout(self.timeout)
        try:
            async with client.stream(
                "POST", url, headers=self.headers(), timeout=timeout, **sent
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _failure(response, url, setting)
                yield response
        except httpx.TimeoutException as exc:
            raise SpeechUnavailable(
                f"the speech service at {url} did not answer within {self.timeout:g}s "
                f"({setting}_URL; BLITZ_SPEECH_TIMEOUT sets the limit)"
            ) from exc
        except httpx.HTTPError as exc:
            raise SpeechUnavailable(
                f"cannot reach the speech service at {url} ({setting}_URL): "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def _failure(response: httpx.Response, url: str, setting: str) -> BlitzError:
    status = response.status_code
    said = _message(response)
    if status in (401, 403):
        return ConfigError(
            f"the speech service at {url} refused the key ({status}: {said}); set {setting}_API_KEY"
        )
    code = _code(response)
    if code == "voice_not_found":
        return ConfigError(f"the speech service at {url} says: {said} ({setting}_VOICE)")
    if code == "model_not_found" or (status == 404 and "model" in said.lower()):
        return ConfigError(f"the speech service at {url} says: {said} ({setting}_MODEL)")
    if status == 404:
        return ConfigError(
            f"no speech API at {url} (404); {setting}_URL is the API's base, e.g. "
            "http://127.0.0.1:8766/v1"
        )
    if status >= 500 or status == 429:
        return SpeechUnavailable(f"the speech service at {url} failed ({status}: {said})")
    return SpeechRejected(f"the speech service at {url} refused ({status}: {said})", status=status)


def _message(response: httpx.Response) -> str:
    """What the server said: OpenAI's ``{"error": {"message"}}``, FastAPI's ``{"detail"}``, or
    the start of its text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if body.get("detail"):
            return str(body["detail"])[:300]
    return str(body)[:300]


def _code(response: httpx.Response) -> object:
    """OpenAI's ``error.code``, if the body has one."""
    try:
        error = response.json().get("error")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) else None
