"""The voice session's tests' client: a real WebSocket (the ``websockets`` library) to a live
daemon's ``/api/voice``, speech made by the bundled server's Piper voice, sent paced as a
microphone would, and the answers read back (their audio transcribed by Whisper)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from audio_helpers import webm_opus_of
from websockets.asyncio.client import ClientConnection, connect

from blitz.speech.audio import to_pcm16, wav
from blitz.speech.endpoint import SpeechEndpoint
from blitz.speech.synthesize import Synthesizer
from blitz.speech.transcribe import Audio, Transcriber
from blitz.testing.speech_server import SpeechServer

FRAME = 640
"""Bytes of 16 kHz pcm16 per frame sent: 20 ms, what a microphone's worklet sends."""
WAIT = 120.0
"""Seconds a test waits for one message (the models share two loaded cores)."""


def speech_settings(server: SpeechServer, **more: Any) -> dict[str, Any]:
    """The daemon's settings pointing both speech services at ``server``."""
    return {
        "stt_url": server.url,
        "tts_url": server.url,
        "stt_api_key": server.key,
        "tts_api_key": server.key,
        "speech_timeout": 120.0,
        **more,
    }


def ws_url(http_url: str, token: str | None = None) -> str:
    url = http_url.replace("http://", "ws://", 1).rstrip("/") + "/api/voice"
    return f"{url}?token={token}" if token is not None else url


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


async def spoken(server: SpeechServer, text: str) -> bytes:
    """``text`` spoken by the Piper voice as 16 kHz pcm16 (what a client streams)."""
    tts = SpeechEndpoint(url=server.url, model="tts-1", voice="joe", api_key=server.key)
    pcm24 = await Synthesizer(tts).speak(text, "pcm")
    samples = np.frombuffer(pcm24, dtype="<i2").astype(np.float32) / 32768.0
    return to_pcm16(samples, 24000, 16000)


async def heard(server: SpeechServer, pcm: bytes, rate: int) -> str:
    """What Whisper hears in ``pcm`` (an answer's audio)."""
    stt = SpeechEndpoint(url=server.url, model="whisper-1", api_key=server.key, timeout=WAIT)
    return await Transcriber(stt).transcribe(Audio(data=wav(pcm, rate)))


def silence(seconds: float) -> bytes:
    return bytes(2 * round(16000 * seconds))


def noise(seconds: float, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.3, round(16000 * seconds)).clip(-1, 1) * 32767).astype("<i2").tobytes()


def webm_opus(pcm16k: bytes) -> bytes:
    """16 kHz pcm16 as Opus in WebM at 48 kHz: what a browser's MediaRecorder makes."""
    samples = np.frombuffer(pcm16k, dtype="<i2").astype(np.float32) / 32768.0
    return webm_opus_of(samples, 16000)


@dataclass
class Answer:
    """One spoken answer: its ``say``, its audio, and what came with it (``said`` or
    ``stopped``, errors)."""

    say: dict[str, Any]
    audio: bytes = b""
    end: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Voice:
    """A client of one voice session."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seen: list[dict[str, Any]] = []  # every text message, in order
        self.spoken_up: list[dict[str, Any]] = []  # events skipped by answer(reply=True)

    @classmethod
    async def open(cls, url: str, token: str = "", **hello: Any) -> Voice:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        socket = await connect(url, additional_headers=headers, max_size=2**22)
        voice = cls(socket)
        await voice.send({"type": "hello", "format": "pcm16", "sample_rate": 16000, **hello})
        ready = await voice.next_text()
        assert ready["type"] == "ready", ready
        return voice

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def stream(self, pcm: bytes, *, paced: bool = True) -> None:
        """``pcm`` in 20 ms frames, one every 20 ms (a microphone's pace) unless not ``paced``."""
        for start in range(0, len(pcm), FRAME):
            await self.socket.send(pcm[start : start + FRAME])
            if paced:
                await asyncio.sleep(0.02)

    async def next(self, timeout: float = WAIT) -> dict[str, Any] | bytes:
        got = await asyncio.wait_for(self.socket.recv(), timeout)
        if isinstance(got, bytes):
            return got
        message: dict[str, Any] = json.loads(got)
        self.seen.append(message)
        return message

    async def next_text(self, timeout: float = WAIT) -> dict[str, Any]:
        got = await self.next(timeout)
        assert isinstance(got, dict), f"audio outside an answer: {len(got)} bytes"
        return got

    async def until(self, kind: str, timeout: float = WAIT) -> dict[str, Any]:
        """Text messages until one of ``kind`` (audio outside an answer fails)."""
        while True:
            message = await self.next_text(timeout)
            if message["type"] == kind:
                return message

    async def answer(self, timeout: float = WAIT, *, reply: bool = False) -> Answer:
        """The next answer, whole: ``say``, its audio, ``said`` (or ``stopped``); with
        ``reply``, the next that answers the person (speak-ups are skipped, kept in
        :attr:`spoken_up`)."""
        while True:
            say = await self.until("say", timeout)
            answer = await self._rest(say, timeout)
            if not (reply and len(self.seen) > 2 and self._before(say)["type"] == "event"):
                return answer
            self.spoken_up.append(self._before(say))

    def _before(self, say: dict[str, Any]) -> dict[str, Any]:
        at = next(i for i in range(len(self.seen) - 1, -1, -1) if self.seen[i] is say)
        return self.seen[at - 1]

    async def reply_to(self, text: str) -> Answer:
        """Type ``text``; the answer to it."""
        await self.send({"type": "text", "text": text})
        return await self.answer(reply=True)

    async def _rest(self, say: dict[str, Any], timeout: float) -> Answer:
        answer = Answer(say=say)
        while True:
            got = await self.next(timeout)
            if isinstance(got, bytes):
                answer.audio += got
            elif got["type"] == "error":
                answer.errors.append(got["message"])
            elif got["type"] in ("said", "stopped"):
                assert got["id"] == say["id"], (got, say)
                answer.end = got
                return answer

    async def close(self) -> None:
        await self.socket.close()
