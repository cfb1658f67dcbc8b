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

Each figure is the median over ``--runs`` (after one warm-up each); whether Whisper heard the
words is shown beside them. Run: ``uv run --extra dev python bench/voice.py`` (``--runs``,
``--threads`` for CTranslate2, ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from typing import Any

from blitz.speech.audio import PCM_OUT_RATE
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
    args = parser.parse_args()
    with SpeechServer(threads=args.threads) as server:
        results = asyncio.run(measure(server, args.runs))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        show(results, args.runs, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
