"""What the speech tests share: the clients as blitz's settings make them, words compared
normalised, and audio re-encoded the ways clients send it."""

from __future__ import annotations

import io
import re

import av
import numpy as np
from audio_helpers import webm_opus_of

from blitz.settings import Settings
from blitz.speech.audio import to_pcm16, wav
from blitz.speech.synthesize import Synthesizer
from blitz.speech.transcribe import Transcriber
from blitz.testing.speech_server import SpeechServer


def clients(server: SpeechServer, **settings: object) -> tuple[Transcriber, Synthesizer]:
    """blitz's two clients of ``server``, through its settings (``settings`` override)."""
    chosen: dict[str, object] = {
        "stt_url": server.url,
        "tts_url": server.url,
        "stt_api_key": server.key,
        "tts_api_key": server.key,
        "speech_timeout": 60.0,
        **settings,
    }
    stt, tts = Settings(**chosen).speech_endpoints()  # type: ignore[arg-type]
    return Transcriber(stt), Synthesizer(tts)


def words(text: str) -> list[str]:
    """Lower-case words without punctuation: what a transcript is compared by."""
    return re.findall(r"[a-z0-9']+", text.lower())


def samples_of_wav(data: bytes) -> tuple[np.ndarray, int]:
    """A mono 16-bit WAV's samples (float) and rate, read by PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
    pcm = np.concatenate(frames)
    return pcm.astype(np.float32) / 32768.0, rate


def pcm16k(data: bytes) -> bytes:
    """A WAV as raw 16 kHz 16-bit mono PCM (what a client streaming audio sends)."""
    samples, rate = samples_of_wav(data)
    return to_pcm16(samples, rate, 16000)


def webm_opus(data: bytes) -> bytes:
    """A WAV as Opus in WebM at 48 kHz: what a browser's MediaRecorder makes."""
    samples, rate = samples_of_wav(data)
    return webm_opus_of(samples, rate)


def as_wav(pcm: bytes, rate: int) -> bytes:
    return wav(pcm, rate)
