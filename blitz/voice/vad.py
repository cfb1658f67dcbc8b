"""Where an utterance starts and ends: Silero VAD (the ONNX model that ships with
faster-whisper, run by onnxruntime), streamed over 16 kHz samples 32 ms at a time.

:class:`Endpointer` is fed samples as they arrive and says when speech began (a barge-in, while
an answer plays) and when it ended: :data:`SILENCE_S` of silence after speech. It keeps the
model's recurrent state between calls, so each window is judged with what came before it, the
way faster-whisper's own batch VAD does. Feeding runs the model: call it in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

RATE = 16000
WINDOW = 512
"""Samples per judgement (32 ms): what the Silero model takes."""
CONTEXT = 64
"""Samples of the window before, given to the model with each window."""
THRESHOLD = 0.5
"""A window is speech at this probability or above."""
SILENCE_S = 0.6
"""Seconds of silence after speech that end an utterance."""
MIN_SPEECH_S = 0.15
"""Seconds of speech, in all, before an utterance counts as begun (a click is not speech)."""


class Heard(StrEnum):
    """What a fed stretch of audio changed."""

    NOTHING = "nothing"
    STARTED = "started"  # speech began
    ENDED = "ended"  # speech was followed by enough silence


@dataclass
class _State:
    h: npt.NDArray[np.float32]
    c: npt.NDArray[np.float32]
    context: npt.NDArray[np.float32]


def _model() -> Any:
    from faster_whisper.vad import get_vad_model  # the voice extra; loaded once per process

    return get_vad_model()


class Endpointer:
    """Speech start and end over one socket's audio (16 kHz float32 samples)."""

    def __init__(self, *, silence_s: float = SILENCE_S) -> None:
        self._session = _model().session
        self._silence_windows = round(silence_s * RATE / WINDOW)
        self._min_speech = round(MIN_SPEECH_S * RATE / WINDOW)
        self._pending = np.zeros(0, dtype=np.float32)
        self._state = self._fresh()
        self.speaking = False
        self._speech = 0
        self._silence = 0

    @staticmethod
    def _fresh() -> _State:
        zeros = np.zeros((1, 1, 128), dtype=np.float32)
        return _State(h=zeros, c=zeros.copy(), context=np.zeros(CONTEXT, dtype=np.float32))

    def reset(self) -> None:
        """Forget the utterance (its audio was taken); the model's state starts over."""
        self._pending = np.zeros(0, dtype=np.float32)
        self._state = self._fresh()
        self.speaking = False
        self._speech = self._silence = 0

    def feed(self, samples: npt.NDArray[np.float32]) -> Heard:
        """Judge ``samples`` (with what was left over from before); blocking."""
        audio = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = audio.size - audio.size % WINDOW
        self._pending = audio[whole:].copy()
        heard = Heard.NOTHING
        for start in range(0, whole, WINDOW):
            window = audio[start : start + WINDOW]
            if self._probability(window) >= THRESHOLD:
                self._speech += 1
                self._silence = 0
                if not self.speaking and self._speech >= self._min_speech:
                    self.speaking = True
                    heard = Heard.STARTED
            elif self.speaking:
                self._silence += 1
                if self._silence >= self._silence_windows:
                    return Heard.ENDED
            else:
                self._speech = max(0, self._speech - 1)  # scattered blips do not add up
        return heard

    def _probability(self, window: npt.NDArray[np.float32]) -> float:
        state = self._state
        batch = np.concatenate([state.context, window]).reshape(1, CONTEXT + WINDOW)
        out, h, c = self._session.run(None, {"input": batch, "h": state.h, "c": state.c})
        self._state = _State(h=h, c=c, context=window[-CONTEXT:].copy())
        return float(np.asarray(out).reshape(-1)[0])
