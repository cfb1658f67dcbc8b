"""Audio in and out of the bundled speech server: uploads decoded to what Whisper takes (16 kHz
mono float32), and synthesised samples encoded as WAV or OpenAI's raw PCM (24 kHz).

Raw PCM comes without a header, so it is known by its name or media type (``.pcm``/``.raw``,
``audio/pcm``, ``audio/l16``) and read as 16 kHz 16-bit little-endian mono; anything else is
decoded by PyAV (FFmpeg, shipped with faster-whisper): WAV, Opus/WebM from browsers, MP3, FLAC...
"""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import numpy.typing as npt
from faster_whisper.audio import decode_audio

from blitz.errors import UserError

WHISPER_RATE = 16000
PCM_OUT_RATE = 24000
"""OpenAI's ``pcm`` response format: 24 kHz, 16-bit signed little-endian, mono."""
PCM_SUFFIXES = (".pcm", ".raw")
PCM_TYPES = ("audio/pcm", "audio/l16", "audio/x-raw")

Samples = npt.NDArray[np.float32]


class BadAudio(UserError):
    """The upload is not audio this server can decode, or holds none."""


def is_raw_pcm(filename: str, content_type: str) -> bool:
    return filename.lower().endswith(PCM_SUFFIXES) or content_type.lower().startswith(PCM_TYPES)


def decode(data: bytes, *, raw_pcm: bool) -> Samples:
    """16 kHz mono float32 samples in [-1, 1] from an upload; :class:`BadAudio` when it is not
    audio or is silent nothingness (no samples)."""
    if raw_pcm:
        if len(data) % 2:
            raise BadAudio("raw PCM must be 16-bit samples: an odd number of bytes was sent")
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    else:
        try:
            samples = np.asarray(decode_audio(io.BytesIO(data), sampling_rate=WHISPER_RATE))
        except (av.FFmpegError, IndexError, ValueError, OSError, StopIteration) as exc:
            raise BadAudio(
                "the file is not audio this server can decode (WAV, WebM/Opus, MP3, FLAC, or raw "
                f"16 kHz PCM named .pcm): {exc}"
            ) from exc
    if samples.size == 0:
        raise BadAudio("the file holds no audio")
    return samples.astype(np.float32, copy=False)


def to_pcm16(samples: npt.NDArray[np.float32], rate: int, out_rate: int) -> bytes:
    """``samples`` (float, [-1, 1]) at ``rate`` as 16-bit little-endian PCM at ``out_rate``
    (linear interpolation: speech, not music)."""
    if rate != out_rate and samples.size:
        count = round(samples.size * out_rate / rate)
        at = np.arange(count, dtype=np.float64) * (rate / out_rate)
        samples = np.interp(at, np.arange(samples.size), samples).astype(np.float32)
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def wav(pcm16: bytes, rate: int) -> bytes:
    """A complete WAV file of mono 16-bit ``pcm16`` at ``rate``."""
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm16)) + b"WAVE"
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    header += b"fmt " + struct.pack("<I", len(fmt)) + fmt
    return header + b"data" + struct.pack("<I", len(pcm16)) + pcm16
