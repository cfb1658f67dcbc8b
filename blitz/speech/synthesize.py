"""Text to speech through the OpenAI audio API: ``POST {url}/audio/speech`` with ``input``,
``model``, ``voice`` and ``response_format``, answered with the audio itself (streamed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import httpx

from blitz.speech.endpoint import SpeechEndpoint

SETTING = "BLITZ_TTS"
Format = Literal["wav", "pcm", "mp3", "opus", "flac", "aac"]
"""OpenAI's formats; ``pcm`` is raw 24 kHz 16-bit little-endian mono. The bundled server
speaks ``wav`` and ``pcm``."""


class Synthesizer:
    """A text-to-speech client; ``client`` is shared (one connection pool) or made per call."""

    def __init__(self, endpoint: SpeechEndpoint, client: httpx.AsyncClient | None = None) -> None:
        self.endpoint = endpoint
        self._client = client

    async def speak(self, text: str, response_format: Format = "wav") -> bytes:
        """``text`` spoken, as one audio file (or raw PCM)."""
        return b"".join([chunk async for chunk in self.stream(text, response_format)])

    async def stream(self, text: str, response_format: Format = "pcm") -> AsyncIterator[bytes]:
        """``text`` spoken, chunk by chunk as the service sends it (the first sentence can
        play while the rest is made). The timeout bounds each wait (to connect, for the next
        chunk), not the whole answer, which may be long."""
        if self._client is not None:
            async for chunk in self._stream(self._client, text, response_format):
                yield chunk
            return
        async with httpx.AsyncClient() as client:
            async for chunk in self._stream(client, text, response_format):
                yield chunk

    async def _stream(
        self, client: httpx.AsyncClient, text: str, response_format: Format
    ) -> AsyncIterator[bytes]:
        sent = {
            "input": text,
            "model": self.endpoint.model,
            "voice": self.endpoint.voice,
            "response_format": response_format,
        }
        async with self.endpoint.request(client, "/audio/speech", SETTING, json=sent) as response:
            async for chunk in response.aiter_bytes():
                if chunk:
                    yield chunk
