"""Voice benchmark, the speech services' part: on this machine, with the bundled models behind
``blitz speech serve`` (a process of its own, reached over HTTP on 127.0.0.1 through blitz's own
clients, as the voice session will reach it):

* transcription's real-time factor (seconds to transcribe / seconds of audio; under 1 is faster
  than real time) for a short command, a sentence and a paragraph, spoken by the Piper voice;
* synthesis's time to the first byte of streamed PCM, and to the last, for a short answer and a
  longer one, beside the duration of the audio made;
* the two chained: a short command transcribed, then the first byte of a short spoken answer:
  the speech services' share of the issue's target, first audio byte 1.5 s after the end of a
  short command (the voice session's own work, detection and the action, comes on top).

* the voice session's own figure, through a real daemon's WebSocket (``blitz serve``'s daemon
  in this process, uvicorn on 127.0.0.1): a short spoken command ("How is it going?", Piper's
  voice, 16 kHz pcm16 in 20 ms frames sent at real-time pace) and the time from the end of the
  utterance to the first byte of the spoken answer, ended two ways: by ``end`` right after the
  last frame (push-to-talk, ``"endpoint": "client"``), and by the VAD hearing the silence that
  follows the speech (its clock starts at the last frame of speech). Beside it, its parts as
  the client sees them: the VAD's tail (the session's time to ``heard`` with the VAD, less
  that with ``end``), speech to text (to ``heard``), understanding and the action (``heard``
  to ``say``) and the first byte of speech (``say`` to the first audio frame).

Each figure is the median over ``--runs`` (after one warm-up each); whether Whisper heard the
words is shown beside them. Run: ``uv run --extra dev python bench/voice.py`` (``--runs``,
``--threads`` for CTranslate2, ``--json``, ``--session`` for the session's figure alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect

from blitz.app import App
from blitz.server.auth import TokenStore
from blitz.server.daemon import Daemon, listen, url_of
from blitz.settings import Settings
from blitz.speech.audio import PCM_OUT_RATE, to_pcm16
from blitz.speech.endpoint import SpeechEndpoint
from blitz.speech.synthesize import Synthesizer
from blitz.speech.transcribe import Audio, Transcriber
from blitz.testing.speech_server import SpeechServer

TARGET_FIRST_BYTE_S = 1.5
COMMAND = "How is the goal going?"
UTTERANCES = {
    "command": "Approve the plan.",
    "sentence": "Start a goal on the api project: add rate limiting to the login endpoint.",
    "paragraph": (
        "The goal finished and the pull request is open. Three tasks succeeded on the first "
        "attempt, one needed a retry after its tests failed, and the whole run cost under a "
        "dollar. Review the pull request when you have a moment, then merge it."
    ),
}
ANSWERS = {
    "short answer": "The goal is running: two of five tasks are done.",
    "long answer": UTTERANCES["paragraph"],
}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


async def first_and_last_byte(synthesizer: Synthesizer, text: str) -> tuple[float, float, int]:
    """Seconds to the first and the last byte of ``text`` spoken as streamed PCM, and its
    size in bytes."""
    started = time.perf_counter()
    first = 0.0
    size = 0
    async for chunk in synthesizer.stream(text, "pcm"):
        if not size:
            first = time.perf_counter() - started
        size += len(chunk)
    return first, time.perf_counter() - started, size


async def timed_transcription(transcriber: Transcriber, wav: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    heard = await transcriber.transcribe(Audio(data=wav))
    return time.perf_counter() - started, heard


async def measure(server: SpeechServer, runs: int) -> dict[str, Any]:
    stt = SpeechEndpoint(url=server.url, model="whisper-1", api_key=server.key, timeout=300)
    tts = SpeechEndpoint(
        url=server.url, model="tts-1", voice="joe", api_key=server.key, timeout=300
    )
    transcriber, synthesizer = Transcriber(stt), Synthesizer(tts)
    results: dict[str, Any] = {"transcription": {}, "synthesis": {}}
    for name, text in UTTERANCES.items():
        wav = await synthesizer.speak(text, "wav")
        seconds = (len(wav) - 44) / 2 / int.from_bytes(wav[24:28], "little")
        await timed_transcription(transcriber, wav)  # warm-up
        times, heard = [], ""
        for _ in range(runs):
            took, heard = await timed_transcription(transcriber, wav)
            times.append(took)
        median = statistics.median(times)
        results["transcription"][name] = {
            "audio_s": round(seconds, 2),
            "median_s": round(median, 3),
            "rtf": round(median / seconds, 3),
            "heard_right": words(heard) == words(text),
            "heard": heard,
        }
    for name, text in ANSWERS.items():
        await first_and_last_byte(synthesizer, text)  # warm-up
        firsts, lasts, size = [], [], 0
        for _ in range(runs):
            first, last, size = await first_and_last_byte(synthesizer, text)
            firsts.append(first)
            lasts.append(last)
        results["synthesis"][name] = {
            "audio_s": round(size / 2 / PCM_OUT_RATE, 2),
            "first_byte_s": round(statistics.median(firsts), 3),
            "last_byte_s": round(statistics.median(lasts), 3),
        }
    command = await synthesizer.speak(COMMAND, "wav")
    chained = []
    for _ in range(runs):
        took, _heard = await timed_transcription(transcriber, command)
        first, _, _ = await first_and_last_byte(synthesizer, ANSWERS["short answer"])
        chained.append(took + first)
    results["command_to_first_answer_byte_s"] = round(statistics.median(chained), 3)
    return results


FRAME = 640
"""Bytes of 16 kHz pcm16 per frame: 20 ms."""


async def session_figures(server: SpeechServer, runs: int) -> dict[str, Any]:
    """End of a short spoken command to the first byte of the spoken answer, through a real
    daemon's WebSocket, ended by ``end`` and by the VAD."""
    tts = SpeechEndpoint(url=server.url, model="tts-1", voice="joe", api_key=server.key)
    pcm24 = await Synthesizer(tts).speak(COMMAND, "pcm")
    samples = np.frombuffer(pcm24, dtype="<i2").astype(np.float32) / 32768.0
    speech = bytes(2 * 3200) + to_pcm16(samples, PCM_OUT_RATE, 16000)  # 0.2 s of silence first
    with tempfile.TemporaryDirectory(prefix="blitz-voice-bench-") as home:
        settings = Settings(
            home=Path(home),
            stt_url=server.url,
            tts_url=server.url,
            stt_api_key=server.key,  # type: ignore[arg-type]
            tts_api_key=server.key,  # type: ignore[arg-type]
            speech_timeout=60.0,
        )
        tokens = TokenStore.of_home(Path(home))
        token = tokens.rotate()
        daemon = Daemon(App(settings), tokens=tokens, grace=5)
        sock = listen("127.0.0.1", 0)
        ready = asyncio.Event()
        serving = asyncio.create_task(
            daemon.serve(sock, ready=lambda _: ready.set(), signals=False)
        )
        await asyncio.wait_for(ready.wait(), 60)
        url = url_of(sock).replace("http://", "ws://") + f"/api/voice?token={token}"
        try:
            figures = {}
            for how in ("end", "vad"):
                await one_command(url, speech, how)  # warm-up (the VAD model loads once)
                rows = [await one_command(url, speech, how) for _ in range(runs)]
                figures[how] = {
                    key: round(statistics.median(row[key] for row in rows), 3)
                    for key in rows[0]
                    if key != "heard"
                }
                figures[how]["heard"] = rows[-1]["heard"]
        finally:
            daemon.request_stop()
            await asyncio.wait_for(serving, 60)
    figures["vad"]["vad_tail_s"] = round(figures["vad"]["stt_s"] - figures["end"]["stt_s"], 3)
    return figures


async def one_command(url: str, speech: bytes, how: str) -> dict[str, Any]:
    """One command over a fresh session: seconds from its end to ``heard`` (``stt_s``), to
    ``say`` (``intent_s`` after it) and to the first audio byte (``tts_s`` after the say;
    ``total_s`` in all)."""
    async with connect(url, max_size=2**22) as socket_:
        endpoint = "client" if how == "end" else "vad"  # push-to-talk, or hands-free
        hello = {"type": "hello", "format": "pcm16", "sample_rate": 16000, "endpoint": endpoint}
        await socket_.send(json.dumps(hello))
        json.loads(await socket_.recv())
        loop = asyncio.get_running_loop()
        began = loop.time()
        for sent, start in enumerate(range(0, len(speech), FRAME)):
            await asyncio.sleep(max(0.0, began + sent * 0.02 - loop.time()))
            await socket_.send(speech[start : start + FRAME])
        ended = loop.time()
        if how == "end":
            await socket_.send(json.dumps({"type": "end"}))
        else:  # silence, as a microphone goes on sending, until the session answers
            silence = asyncio.create_task(_silence(socket_))
        heard_at = say_at = 0.0
        heard = ""
        while True:
            got = await asyncio.wait_for(socket_.recv(), 120)
            now = loop.time()
            if isinstance(got, bytes):
                break
            message = json.loads(got)
            if message["type"] == "heard":
                heard_at, heard = now, message["text"]
            elif message["type"] == "say":
                say_at = now
            elif message["type"] == "error":
                raise RuntimeError(f"the session said: {message['message']}")
        if how != "end":
            silence.cancel()
    return {
        "total_s": now - ended,
        "stt_s": heard_at - ended,
        "intent_s": say_at - heard_at,
        "tts_s": now - say_at,
        "heard": heard,
    }


async def _silence(socket_: Any) -> None:
    while True:
        await socket_.send(bytes(FRAME))
        await asyncio.sleep(0.02)


def show_session(figures: dict[str, Any]) -> None:
    print("voice session, through the daemon's WebSocket: end of a short command to the first")
    print(f"byte of the spoken answer (target {TARGET_FIRST_BYTE_S} s)")
    print(
        f"{'ended by':<10}{'total s':>9}{'VAD tail':>10}{'STT s':>8}{'intent s':>10}{'TTS 1st':>9}"
    )
    for how, row in figures.items():
        stt = row["stt_s"] - row.get("vad_tail_s", 0.0)
        print(
            f"{how:<10}{row['total_s']:>9.3f}{row.get('vad_tail_s', 0.0):>10.3f}{stt:>8.3f}"
            f"{row['intent_s']:>10.3f}{row['tts_s']:>9.3f}  heard: {row['heard']!r}"
        )


def show(results: dict[str, Any], runs: int, threads: int) -> None:
    print(f"voice benchmark: bundled models, median of {runs} runs, threads {threads or 'auto'}")
    print()
    print(f"{'transcription':<14}{'audio s':>9}{'took s':>9}{'RTF':>8}  heard right")
    for name, row in results["transcription"].items():
        print(
            f"{name:<14}{row['audio_s']:>9.2f}{row['median_s']:>9.3f}{row['rtf']:>8.3f}  "
            f"{'yes' if row['heard_right'] else 'no: ' + row['heard']}"
        )
    print()
    print(f"{'synthesis':<14}{'audio s':>9}{'1st byte s':>12}{'last byte s':>13}")
    for name, row in results["synthesis"].items():
        print(
            f"{name:<14}{row['audio_s']:>9.2f}{row['first_byte_s']:>12.3f}"
            f"{row['last_byte_s']:>13.3f}"
        )
    print()
    chained = results["command_to_first_answer_byte_s"]
    print(
        f"short command transcribed + first byte of a short answer: {chained:.3f} s "
        f"(target for the whole session: {TARGET_FIRST_BYTE_S} s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="CTranslate2's CPU threads")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--session", action="store_true", help="the voice session's figure only")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with SpeechServer(threads=args.threads) as server:
        if not args.session:
            results = asyncio.run(measure(server, args.runs))
        results["session"] = asyncio.run(session_figures(server, args.runs))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if not args.session:
        show(results, args.runs, args.threads)
        print()
    show_session(results["session"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
