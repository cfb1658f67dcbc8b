"""Audio as browsers send it, for the speech and voice tests: Opus in WebM, what a
MediaRecorder makes (PyAV, which ships with faster-whisper)."""

from __future__ import annotations

import io

import av
import numpy as np
import numpy.typing as npt

from blitz.speech.audio import to_pcm16


def webm_opus_of(samples: npt.NDArray[np.float32], rate: int) -> bytes:
    """``samples`` (float, [-1, 1], at ``rate``) as Opus in WebM at 48 kHz."""
    pcm = np.frombuffer(to_pcm16(samples, rate, 48000), dtype="<i2")
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"  # type: ignore[union-attr]
        for start in range(0, pcm.size, 960):  # 20 ms frames
            frame = av.AudioFrame.from_ndarray(
                pcm[start : start + 960].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = 48000
            for packet in stream.encode(frame):  # type: ignore[union-attr]
                container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)
    return out.getvalue()
