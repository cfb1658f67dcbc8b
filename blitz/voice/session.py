"""One voice session: a WebSocket's conversation with the daemon (the protocol is in
docs/api.md, "Voice").

Three things run at once on the loop, so none waits for another:

* the reader takes frames: audio goes to the VAD (in a worker thread) and, when an utterance
  ends (its silence when the client's endpoint is ``vad``, or ``end``), onto the utterance
  queue; speech starting, ``stop``, ``text`` or ``end`` cut off the answer being spoken
  (barge-in);
* the listener takes utterances in turn: transcribes them (the STT service), understands them
  and does them (:mod:`~blitz.voice.replies`), then has the answer spoken;
* the speak-up follower says the events that matter as the event hub finds them (and closes
  the socket with 1001 when the hub closes: the daemon is shutting down).

An answer is spoken by a task of its own (``say``, its PCM frames, ``said``) that the reader
may cancel; its audio is sent at the pace it plays (a second ahead), so a cut stops what is not
yet heard, and every send holds one lock, so a cut never splits a message. A failing speech
service is an ``error`` message; the session goes on. What the protocol forbids ends it
(:class:`~blitz.voice.frames.Refused`: the socket closes with the code and reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from blitz.errors import BlitzError
from blitz.events import Event
from blitz.redact import redact
from blitz.speech.audio import PCM_OUT_RATE, to_pcm16, wav
from blitz.speech.transcribe import Audio
from blitz.voice import frames, speakup
from blitz.voice.frames import MAX_UTTERANCE_S, TOO_BIG, Refused
from blitz.voice.listening import RATE, Listening, Samples, decode_webm
from blitz.voice.replies import Conversation, Reply
from blitz.voice.vad import Endpointer, Heard

if TYPE_CHECKING:
    from blitz.server.host import Host
    from blitz.speech.synthesize import Synthesizer
    from blitz.speech.transcribe import Transcriber
    from blitz.voice.understanding import Understanding

log = logging.getLogger("blitz.voice")

AUDIO_FRAME = 16 * 1024
"""Bytes of answer audio per binary frame (about a third of a second)."""
WAITING = 4
"""Utterances that may wait for the listener; more are refused (a flood of commands would
queue model and speech calls without end)."""
TAKEN_S = 5.0
"""Seconds after the VAD ended an utterance during which an ``end`` is the release of the same
press (its silence dropped); a later ``end`` is a new utterance, answered whatever it holds."""
ENDING_S = 10.0
"""Seconds a session's tasks get to end once it is over (each is cancelled first)."""
PRE_ROLL_S = 0.8
"""Seconds of audio kept from before the VAD heard speech start (its first syllable)."""
SLICE_S = 0.1
"""Seconds of pcm16 the VAD judges at a time: a frame may hold up to 64 KiB (over a second),
and the pre-roll and the end of an utterance are placed at the slice speech starts or ends in,
not at the end of the frame (whole, a frame of seconds lost the start of a command)."""
HELLO_WAIT_S = 1.0
"""Seconds to wait for a hello before ``ready`` with the defaults."""
LEAD_S = 1.0
"""Seconds of answer audio sent ahead of real time: enough to play without a gap, little
enough that a cut-off answer stops soon (what was sent the client drops itself)."""
MIN_UTTERANCE_S = 0.2
"""An utterance shorter than this is not worth transcribing."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """What to understand: samples heard, a WebM recording, or typed text."""

    samples: Samples | None = None
    webm: bytes = b""
    text: str = ""


class VoiceSession:
    """The conversation over one accepted ``socket`` with the daemon ``host``."""

    def __init__(
        self,
        socket: WebSocket,
        host: Host,
        *,
        transcriber: Transcriber,
        synthesizer: Synthesizer,
        understanding: Understanding,
    ) -> None:
        self.socket = socket
        self.host = host
        self.transcriber = transcriber
        self.synthesizer = synthesizer
        self.understanding = understanding
        self.conversation = Conversation(host, host.app.clock)
        self.listening = Listening()
        self.endpointer: Endpointer | None = None
        self.endpoint: frames.Endpoint = "vad"  # how utterances end (the hello says)
        self._spoke = False  # speech heard in the utterance being taken
        self._send_lock = asyncio.Lock()
        self._turn = asyncio.Lock()  # held while an answer waits its turn and starts
        self._utterances: asyncio.Queue[Utterance] = asyncio.Queue(maxsize=WAITING)
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._speaking: asyncio.Task[None] | None = None
        self._answer = 0  # the id of the last answer
        self._closed = False
        # When the VAD last ended an utterance, None once speech started again or a command
        # came: an `end` soon after has nothing left to take (push-to-talk held past the
        # silence that ended it).
        self._vad_took_at: float | None = None

    # -- the session's life ---------------------------------------------------------------------

    async def run(self) -> None:
        """Talk until the client goes or breaks the protocol."""
        self.host.hub.observers.append(self._observe)
        tasks = [
            asyncio.create_task(self._listen(), name="voice-listen"),
            asyncio.create_task(self._speak_up(), name="voice-speak-up"),
            asyncio.create_task(self._until_shutdown(), name="voice-shutdown"),
        ]
        try:
            await self._read()
        except Refused as exc:
            await self._close(exc.code, exc.reason)
        except WebSocketDisconnect:
            pass
        finally:
            self._closed = True
            self.host.hub.observers.remove(self._observe)
            ending = [t for t in [*tasks, self._speaking] if t is not None]
            for task in ending:
                task.cancel()
            # Waited for, not awaited: their cancellation and errors stay theirs (a task that
            # swallowed its cancellation would hold the session open for good).
            if ending:
                done, _ = await asyncio.wait(ending, timeout=ENDING_S)
                for task in done:  # retrieved: a send to a closed socket is no news
                    if not task.cancelled():
                        task.exception()

    async def _until_shutdown(self) -> None:
        """Close the socket when the daemon shuts down (its event hub closes first)."""
        hub = self.host.hub
        while not hub.closed:
            await hub.wait_past(hub.newest, 1.0)
        await self._close(frames.GOING_AWAY, "blitz is shutting down")

    async def _read(self) -> None:
        first: MutableMapping[str, Any] | None = None
        with contextlib.suppress(TimeoutError):  # a hello first, or nothing for a moment
            async with asyncio.timeout(HELLO_WAIT_S):
                first = await self.socket.receive()
        hello: frames.ClientMessage | None = None
        if first is not None and first.get("text") is not None:
            hello = frames.parse(first["text"])
        await self._ready(hello if isinstance(hello, frames.Hello) else frames.Hello())
        if isinstance(hello, frames.Hello):
            first = None
        while True:
            message = first if first is not None else await self.socket.receive()
            first = None
            if message["type"] == "websocket.disconnect":
                return
            data: bytes | None = message.get("bytes")
            text: str | None = message.get("text")
            if data is not None:
                await self._heard(data)
            elif text is not None:
                await self._told(frames.parse(text))

    async def _ready(self, hello: frames.Hello) -> None:
        self.listening = Listening(hello.format, hello.sample_rate)
        self.endpoint = hello.endpoint
        if hello.format == "pcm16":
            self.endpointer = await asyncio.to_thread(Endpointer)  # loads the model once
        speech = {"format": "pcm16", "sample_rate": PCM_OUT_RATE}
        await self._send({"type": "ready", "speech": speech})

    async def _close(self, code: int, reason: str) -> None:
        async with self._send_lock:
            with contextlib.suppress(Exception):  # the client may be gone already
                await self.socket.close(code=code, reason=reason)
            self._closed = True

    # -- the reader: audio, end, text, stop -------------------------------------------------

    async def _heard(self, data: bytes) -> None:
        frames.check_size(len(data), "binary")
        listening = self.listening
        if listening.format != "pcm16":
            await self._judged(data)
            return
        step = 2 * round(listening.rate * SLICE_S)  # whole samples
        for at in range(0, len(data), step):
            await self._judged(data[at : at + step])

    async def _judged(self, data: bytes) -> None:
        """One slice of audio into the utterance and past the VAD."""
        samples = self.listening.add(data)
        endpointer = self.endpointer
        if endpointer is None or not samples.size:
            return
        heard = await asyncio.to_thread(endpointer.feed, samples)
        if heard is Heard.STARTED:
            self._vad_took_at = None
            if not self._spoke:  # a pause in a push-to-talk utterance: all of it is kept
                self.listening.keep_last(PRE_ROLL_S)
            self._spoke = True
            await self.cut()  # barge-in: the person speaks over the answer
        elif heard is Heard.ENDED and self.endpoint == "vad":
            await self._utterance_ended()
            self._vad_took_at = asyncio.get_running_loop().time()
            return
        if endpointer.speaking or self._spoke:  # held until `end` when the client ends it
            if self.listening.over_limit():
                raise Refused(TOO_BIG, f"an utterance is over {MAX_UTTERANCE_S:g} s")
        else:
            self.listening.keep_last(PRE_ROLL_S)  # silence is not kept

    async def _told(self, message: frames.ClientMessage) -> None:
        if isinstance(message, frames.Hello):
            raise Refused(frames.INVALID, "hello comes first, once")
        if isinstance(message, frames.Stop):
            await self.cut()
        elif isinstance(message, frames.Endpointing):
            if message.endpoint == "vad" and self.endpointer is None:
                raise Refused(frames.INVALID, "endpoint: 'vad' needs 'format' 'pcm16'")
            self.endpoint = message.endpoint
        elif isinstance(message, frames.End):
            speaking = self.endpointer is not None and self.endpointer.speaking
            took = self._vad_took_at
            self._vad_took_at = None
            recent = took is not None and asyncio.get_running_loop().time() - took < TAKEN_S
            if recent and not speaking:
                self.listening.take()  # the silence after it; its answer is not cut off
                return
            await self.cut()
            await self._utterance_ended()
        elif isinstance(message, frames.Typed):
            self._vad_took_at = None
            await self.cut()
            await self._queue(Utterance(text=message.text))

    async def _utterance_ended(self) -> None:
        samples, webm = self.listening.take()
        self._spoke = False
        if self.endpointer is not None:
            self.endpointer.reset()
        await self._queue(Utterance(samples=samples, webm=webm))

    async def _queue(self, utterance: Utterance) -> None:
        """``utterance`` for the listener, unless :data:`WAITING` already wait (said in text:
        the reader never waits for an answer to end)."""
        try:
            self._utterances.put_nowait(utterance)
        except asyncio.QueueFull:
            message = "One thing at a time: wait for the answer to what you said before."
            await self._send({"type": "error", "message": message})

    # -- the listener: transcribe, understand, do, answer --------------------------------------

    async def _listen(self) -> None:
        while True:
            utterance = await self._utterances.get()
            try:
                await self._take(utterance)
            except Refused as exc:
                await self._close(exc.code, exc.reason)
                return
            except WebSocketDisconnect:
                return  # the client went: the session ends
            except Exception as exc:  # never the daemon's end: said, and the session goes on
                log.exception("the voice session failed on an utterance")
                await self._error(f"Something went wrong: {type(exc).__name__}.")

    async def _take(self, utterance: Utterance) -> None:
        text = utterance.text
        if not text:
            heard = await self._transcribe(utterance)
            if heard is None:
                return
            text = heard
            await self._send({"type": "heard", "text": redact(text)})
        known = await self.conversation.known()
        intent = await self.understanding(text, known)
        reply = await self.conversation.answer(intent)
        await self.say(reply)

    async def _transcribe(self, utterance: Utterance) -> str | None:
        """The words of ``utterance``; None when there were none (said as an error)."""
        samples = utterance.samples
        if utterance.webm:
            try:
                samples = await asyncio.to_thread(decode_webm, utterance.webm)
            except BlitzError as exc:
                await self._error(f"I could not decode that audio: {exc}")
                return None
        if samples is None or samples.size < MIN_UTTERANCE_S * RATE:
            await self._error("I heard nothing.")
            return None
        audio = Audio(data=wav(to_pcm16(samples, RATE, RATE), RATE))
        try:
            text = await self.transcriber.transcribe(audio)
        except BlitzError as exc:
            await self._error(f"Speech to text failed: {exc}")
            return None
        if not _words(text):
            await self._error("Sorry, I did not understand that. Say it again, or say help.")
            return None
        return text

    async def _error(self, message: str) -> None:
        """An ``error``, spoken as the ``say`` after it (text only if speech fails too)."""
        await self.say(Reply(text=message, error=True))

    # -- speaking ------------------------------------------------------------------------------

    async def say(self, reply: Reply, *, before: dict[str, Any] | None = None) -> None:
        """Send ``reply`` (after ``before``, and as a ``confirm`` or ``error`` when it is one)
        and have it spoken by a task of its own, once the answer before it is over."""
        async with self._turn:  # a reply and a speak-up never speak at once
            previous = self._speaking
            if previous is not None:  # waited for: a cancel of this task still ends it
                await asyncio.wait({previous})
            text = redact(reply.text)
            if before is not None:
                await self._send(before)
            if reply.confirm:
                await self._send({"type": "confirm", "text": text})
            elif reply.error:
                await self._send({"type": "error", "message": text})
            self._answer += 1
            self._speaking = asyncio.create_task(self._speak(self._answer, text))

    async def _speak(self, answer: int, text: str) -> None:
        await self._send({"type": "say", "id": answer, "text": text, "sample_rate": PCM_OUT_RATE})
        loop = asyncio.get_running_loop()
        # The pace counts from the first audio byte, not from the request: a slow start of
        # synthesis must not be made up for by a burst (which a cut could not stop).
        began: float | None = None
        sent = 0.0  # seconds of audio sent
        odd = b""  # a chunk's last byte when it ends mid-sample: it goes with the next one
        try:
            async for piece in self.synthesizer.stream(text, "pcm"):
                if began is None and piece:
                    began = loop.time()
                if began is None:
                    continue
                data = odd + piece
                whole = len(data) - len(data) % 2
                chunk, odd = data[:whole], data[whole:]
                for start in range(0, len(chunk), AUDIO_FRAME):
                    ahead = began + sent - LEAD_S - loop.time()
                    if ahead > 0:  # paced as it plays, so a cut stops what is not yet sent
                        await asyncio.sleep(ahead)
                    frame = chunk[start : start + AUDIO_FRAME]
                    await self._send(frame)
                    sent += len(frame) / 2 / PCM_OUT_RATE
        except BlitzError as exc:  # said in text only: speaking it would fail the same way
            await self._send({"type": "error", "message": redact(f"Text to speech failed: {exc}")})
        await self._send({"type": "said", "id": answer})

    async def cut(self) -> None:
        """Stop the answer being spoken, if one is (``stopped``)."""
        speaking = self._speaking
        if speaking is None or speaking.done():
            return
        answer = self._answer  # the answer being cut, whatever starts after it
        async with self._send_lock:  # not in the middle of a frame
            speaking.cancel()
        await asyncio.wait({speaking})
        await self._send({"type": "stopped", "id": answer})

    async def _send(self, message: dict[str, Any] | bytes) -> None:
        async with self._send_lock:
            if self._closed:
                return
            if isinstance(message, bytes):
                await self.socket.send_bytes(message)
            else:
                await self.socket.send_json(message)

    # -- speak-up --------------------------------------------------------------------------

    def _observe(self, event: Event) -> None:
        if speakup.worth(event):
            self._events.put_nowait(event)

    async def _speak_up(self) -> None:
        while True:
            event = await self._events.get()
            try:
                text = await asyncio.to_thread(speakup.announcement, event, self.host.store)
            except BlitzError as exc:
                log.warning("cannot word the event %s: %s", event.kind, exc)
                continue
            said = redact(text)
            before = {
                "type": "event",
                "kind": event.kind.value,
                "goal": event.goal_id,
                "text": said,
            }
            await self.say(Reply(text=said), before=before)


def _words(text: str) -> bool:
    """Whether a transcript holds words (Whisper hears noise as "" or punctuation)."""
    return any(ch.isalnum() for ch in text)
