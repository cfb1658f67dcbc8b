"""Incoming audio as what the VAD and Whisper take: 16 kHz mono float32 samples.

``pcm16`` (16-bit little-endian mono at the hello's rate) is turned into samples as each frame
arrives (resampled when not 16 kHz), so the VAD follows it live. ``webm`` (a browser's
MediaRecorder, Opus in WebM) is kept as it comes and decoded by PyAV when the utterance ends
(``end``): MediaRecorder's chunks are pieces of one container, which PyAV cannot decode piece by
piece without a blocking reader thread per socket, and push-to-talk says where the utterance
ends anyway. Each utterance in WebM is one recording, from its header (a new MediaRecorder, or
a restarted one, per utterance).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from blitz.voice.frames import MAX_UTTERANCE_S, TOO_BIG, Format, Refused

RATE = 16000
Samples = npt.NDArray[np.float32]
MAX_WEBM = 2 * 1024 * 1024
"""Bytes of WebM one utterance may hold (30 s of Opus at a browser's bitrate is ~200 KB)."""


def resample(samples: Samples, rate: int) -> Samples:
    """``samples`` at ``rate`` as 16 kHz (linear interpolation: speech)."""
    if rate == RATE or not samples.size:
        return samples
    count = round(samples.size * RATE / rate)
    at = np.arange(count, dtype=np.float64) * (rate / RATE)
    return np.interp(at, np.arange(samples.size), samples).astype(np.float32)


class Listening:
    """The audio of the utterance being heard, in the hello's format."""

    def __init__(self, format: Format = "pcm16", rate: int = RATE) -> None:
        self.format: Format = format
        self.rate = rate
        self._odd = b""  # half a sample left from the last pcm16 frame
        self._chunks: list[Samples] = []
        self._size = 0
        self._webm = bytearray()

    @property
    def seconds(self) -> float:
        return self._size / RATE

    def add(self, data: bytes) -> Samples:
        """Take one binary frame; the new 16 kHz samples it holds (none for WebM, decoded at
        the end). Over :data:`MAX_UTTERANCE_S` of audio, or of WebM bytes: :class:`Refused`."""
        if self.format == "webm":
            self._webm += data
            if len(self._webm) > MAX_WEBM:
                raise Refused(TOO_BIG, f"an utterance is over {MAX_WEBM // 1024} KiB of WebM")
            return np.zeros(0, dtype=np.float32)
        data = self._odd + data
        whole = len(data) - len(data) % 2
        self._odd = data[whole:]
        samples = resample(
            np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0, self.rate
        )
        self._chunks.append(samples)
        self._size += samples.size
        return samples

    def over_limit(self) -> bool:
        return self.seconds > MAX_UTTERANCE_S

    def keep_last(self, seconds: float) -> None:
        """Drop all but the last ``seconds`` (silence before any speech is not kept forever)."""
        if self._size <= seconds * RATE or not self._chunks:
            return
        joined = np.concatenate(self._chunks)[-round(seconds * RATE) :]
        self._chunks, self._size = [joined], joined.size

    def take(self) -> tuple[Samples, bytes]:
        """The utterance heard (16 kHz samples, or the WebM recording) and start the next."""
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)
        webm = bytes(self._webm)
        self._chunks, self._size, self._webm, self._odd = [], 0, bytearray(), b""
        return samples, webm


def decode_webm(data: bytes) -> Samples:
    """A WebM/Opus recording as 16 kHz mono samples (PyAV, blocking: call it in a thread),
    decoded a frame at a time and given up past the utterance limit (a few hundred KB of Opus
    at its lowest bitrate holds hours of audio); :class:`~blitz.speech.audio.BadAudio` when it
    is not audio. Over the utterance limit: :class:`Refused`."""
    import io
    import itertools

    import av  # PyAV: the voice extra

    from blitz.speech.audio import BadAudio

    limit, size = round(MAX_UTTERANCE_S * RATE), 0
    pieces: list[Samples] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            frames = itertools.chain(container.decode(stream), [None])  # None: its tail
            for frame in frames:
                for piece in resampler.resample(frame):
                    samples = piece.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                    pieces.append(samples)
                    size += samples.size
                    if size > limit:
                        raise Refused(TOO_BIG, f"an utterance is over {MAX_UTTERANCE_S:g} s")
    except (av.FFmpegError, IndexError, ValueError, OSError) as exc:
        raise BadAudio(f"the recording is not WebM/Opus audio: {exc}") from exc
    if not size:
        raise BadAudio("the recording holds no audio")
    return np.concatenate(pieces)
