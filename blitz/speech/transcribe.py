"""Speech to text through the OpenAI audio API: ``POST {url}/audio/transcriptions`` with the
audio as the multipart ``file`` and ``model``, answered with ``{"text": ...}``."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx

from blitz.speech.endpoint import SpeechEndpoint, SpeechUnavailable

SETTING = "BLITZ_STT"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Audio:
    """Audio to transcribe: its bytes, a file name whose suffix says its format (``.wav``,
    ``.webm``, ``.pcm`` for raw 16 kHz 16-bit mono PCM), and its media type."""

    data: bytes
    filename: str = "audio.wav"
    content_type: str = "audio/wav"


class Transcriber:
    """A speech-to-text client; ``client`` is shared (one connection pool) or made per call."""

    def __init__(self, endpoint: SpeechEndpoint, client: httpx.AsyncClient | None = None) -> None:
        self.endpoint = endpoint
        self._client = client

    async def transcribe(self, audio: Audio) -> str:
        """The text spoken in ``audio`` (stripped; "" when nothing was said). The whole request
        has the endpoint's timeout: a server trickling its answer is as late as a silent one."""
        try:
            async with asyncio.timeout(self.endpoint.timeout):
                if self._client is not None:
                    return await self._send(self._client, audio)
                async with httpx.AsyncClient() as client:
                    return await self._send(client, audio)
        except TimeoutError as exc:
            raise SpeechUnavailable(
                f"the speech service at {self.endpoint.where('/audio/transcriptions')} did not "
                f"answer within {self.endpoint.timeout:g}s ({SETTING}_URL; BLITZ_SPEECH_TIMEOUT "
                "sets the limit)"
            ) from exc

    async def _send(self, client: httpx.AsyncClient, audio: Audio) -> str:
        files = {"file": (audio.filename, audio.data, audio.content_type)}
        data = {"model": self.endpoint.model, "response_format": "json"}
        async with self.endpoint.request(
            client, "/audio/transcriptions", SETTING, files=files, data=data
        ) as response:
            body = await response.aread()
        try:
            text = json.loads(body)["text"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SpeechUnavailable(
                f"the speech service at {self.endpoint.where('/audio/transcriptions')} answered "
                f"without a transcript: {body[:200]!r}"
            ) from exc
        if not isinstance(text, str):
            raise SpeechUnavailable(f"the transcript is not text: {text!r}")
        return text.strip()
