"""What the dashboard's voice tests share: the spoken command the fake microphone plays, the
daemon's settings for a speech server, and a browser whose microphone plays a file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from blitz.settings import Settings
from blitz.speech.audio import WHISPER_RATE, decode, to_pcm16, wav
from blitz.speech.synthesize import Synthesizer
from blitz.testing.speech_server import SpeechServer

from .harness import open_page

COMMAND = "Start a goal on the calc project: add a multiply function."
LEAD_S = 0.6
"""Silence before the words: the microphone's file starts playing when the page opens the
microphone, a moment before the capture worklet sends its first frame."""
TAIL_S = 1.5
"""Silence after them, so that the daemon's voice activity detection hears the end."""


@dataclass(frozen=True)
class Spoken:
    path: Path
    seconds: float


def speak(server: SpeechServer, text: str, path: Path) -> Spoken:
    """``text`` in Piper's voice as a 16 kHz WAV at ``path``, with silence around it."""
    settings = Settings(tts_url=server.url, tts_api_key=server.key)  # type: ignore[arg-type]
    _, tts = settings.speech_endpoints()
    # In a thread of its own: playwright's event loop may be running in this one.
    with ThreadPoolExecutor(1) as pool:
        audio = pool.submit(asyncio.run, Synthesizer(tts).speak(text, "wav")).result(timeout=120)
    samples = decode(audio, raw_pcm=False)  # 16 kHz mono

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(round(seconds * WHISPER_RATE), dtype=np.float32)

    padded = np.concatenate([silence(LEAD_S), samples, silence(TAIL_S)])
    path.write_bytes(wav(to_pcm16(padded, WHISPER_RATE, WHISPER_RATE), WHISPER_RATE))
    return Spoken(path=path, seconds=padded.size / WHISPER_RATE)


def speech_settings(url: str, key: str) -> dict[str, str]:
    """The daemon's environment for a speech server at ``url`` (its API's ``/v1``)."""
    return {
        "BLITZ_STT_URL": url,
        "BLITZ_TTS_URL": url,
        "BLITZ_STT_API_KEY": key,
        "BLITZ_TTS_API_KEY": key,
        "BLITZ_SPEECH_TIMEOUT": "60",
    }


@contextmanager
def microphone_page(
    driver: Any, artifacts: Path, request: pytest.FixtureRequest, spoken: Spoken
) -> Iterator[Any]:
    """A page whose microphone is Chromium's fake one playing ``spoken`` once (``%noloop``),
    from the moment the page opens it; allowed without asking."""
    with open_page(
        driver,
        artifacts,
        request,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={spoken.path}%noloop",
    ) as page:
        yield page


def open_panel(page: Any) -> Any:
    """Opens the voice panel and waits until the session is ready; the panel."""
    page.get_by_test_id("voice-open").click()
    panel = page.get_by_test_id("voice-panel")
    panel.wait_for()
    phase(page, "ready")
    return panel


def phase(page: Any, name: str, timeout: float = 30_000) -> None:
    page.locator(f"[data-testid='voice-phase'][data-phase='{name}']").wait_for(timeout=timeout)
