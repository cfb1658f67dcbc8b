"""OpenClaw's own talk mode reaching blitz's voice session through voice-chat's realtime voice
provider ``blitz-voice`` (``integrations/openclaw/voice-chat/src/realtime.ts``).

A talk client of OpenClaw never opens a plugin's route: relayed talk is the gateway's
``talk.session.*`` methods (``create`` with ``mode: "realtime"``, ``transport:
"gateway-relay"``, ``brain: "agent-consult"``; ``appendAudio`` with base64 PCM16 mono 24 kHz;
``close``) on the client's own gateway connection, and ``talk.event`` events back on it; the
gateway runs the session on the realtime voice provider ``talk.realtime.provider`` names. Here
that is an operator client (``websockets``) of the run's real gateway (tests/openclaw/gateway.py,
``talk.realtime`` set to ``blitz-voice``), a command spoken by the bundled Piper voice, and the
run's real daemon hearing it with its real speech server and answering.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from conftest import Daemon
from gateway import PROTOCOL, Gateway, message_text
from relay import Relay
from websockets.sync.client import ClientConnection, connect

from blitz.speech.endpoint import SpeechEndpoint
from blitz.speech.synthesize import Synthesizer
from blitz.testing.openclaw import Workspace
from blitz.testing.speech_server import SpeechServer

ASKED = "How is it going?"
RATE = 24_000
"""OpenClaw's talk audio: PCM16 mono at 24 kHz (``REALTIME_VOICE_AUDIO_FORMAT_PCM16_24KHZ``)."""
WAIT = 120.0
"""Seconds to wait for the session's next event (speech shares two busy cores)."""
TALK = {"mode": "realtime", "transport": "gateway-relay", "brain": "agent-consult"}
ANSWER = re.compile(r"^(No goal is running\.|(One goal is|\d+ goals are) under way\.)")
"""blitz's answer to "how is it going?" (blitz/voice/replies.py, the status of every goal)."""


def test_the_realtime_provider_against_the_daemon(
    openclaw_workspace: Workspace, blitz_daemon: Daemon, speech_server: SpeechServer
) -> None:
    """voice-chat's provider driven as the gateway relay drives it (vitest): a spoken command
    heard, answered in text and 24 kHz speech, the answer's end; barge-in; a wrong token (401,
    never shown) and the daemon down or unset (503) refused with errors that say which."""
    env = {
        **os.environ,
        **blitz_daemon.env(),
        "BLITZ_SPEECH_URL": speech_server.url,
        "BLITZ_SPEECH_KEY": speech_server.key,
        "NO_COLOR": "1",
    }
    suite = "voice-chat/test/realtime.test.ts"
    done = openclaw_workspace.run(
        [openclaw_workspace.bin("vitest"), "run", suite], env=env, timeout=300
    )
    assert done.returncode == 0, f"vitest failed:\n{done.stdout[-12000:]}{done.stderr}"
    assert "passed" in done.stdout and "skipped" not in done.stdout, done.stdout


class Talk:
    """One operator connection to the gateway, allowed to talk (``operator.talk``): requests,
    and every ``talk.event`` that comes back on it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    def request(self, method: str, params: dict[str, Any], timeout: float = 30.0) -> Any:
        """The answer's payload; an AssertionError with the gateway's error when refused."""
        id = uuid.uuid4().hex
        self.ws.send(json.dumps({"type": "req", "id": id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            frame = self._next(deadline)
            if frame.get("type") == "res" and frame.get("id") == id:
                assert frame.get("ok"), f"{method} refused: {frame.get('error')}"
                return frame.get("payload")

    def wait(
        self, found: Callable[[dict[str, Any]], bool], what: str, after: int = 0
    ) -> dict[str, Any]:
        """The first ``talk.event`` payload (kept from index ``after`` on, or coming) that
        ``found`` holds for."""
        deadline = time.monotonic() + WAIT
        seen = after
        while True:
            for event in self.events[seen:]:
                if found(event):
                    return event
            seen = len(self.events)
            try:
                self._next(deadline)
            except TimeoutError:
                kinds = [e.get("type") for e in self.events]
                raise AssertionError(f"{what}: not seen in {WAIT:g} s; events {kinds}") from None

    def _next(self, deadline: float) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(
            self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1))
        )
        if frame.get("type") == "event" and frame.get("event") == "talk.event":
            self.events.append(frame.get("payload") or {})
        return frame


@contextmanager
def talking(gateway: Gateway) -> Iterator[Talk]:
    token = gateway.auth_header()["Authorization"].removeprefix("Bearer ")
    with connect(gateway.url, open_timeout=30, max_size=None) as ws:
        json.loads(ws.recv(timeout=30))  # connect.challenge
        talk = Talk(ws)
        talk.request(
            "connect",
            {
                "minProtocol": PROTOCOL,
                "maxProtocol": PROTOCOL,
                "client": {"id": "cli", "version": "blitz", "platform": "linux", "mode": "cli"},
                "role": "operator",
                "scopes": ["operator.read", "operator.write", "operator.talk"],
                "caps": [],
                "auth": {"token": token},
            },
        )
        yield talk


def _spoken(speech: SpeechServer, text: str) -> bytes:
    """``text`` spoken by the bundled Piper voice: PCM16 mono at 24 kHz, the talk format."""
    tts = SpeechEndpoint(url=speech.url, model="tts-1", voice="joe", api_key=speech.key)
    return asyncio.run(Synthesizer(tts).speak(text, "pcm"))


def _append(talk: Talk, session: str, pcm: bytes) -> None:
    """The audio as a talk client appends it: a second (48000 bytes) per call."""
    for at in range(0, len(pcm), 2 * RATE):
        chunk = base64.b64encode(pcm[at : at + 2 * RATE]).decode()
        talk.request("talk.session.appendAudio", {"sessionId": session, "audioBase64": chunk})


def _of(kind: str, **more: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda event: (
        event.get("type") == kind and all(event.get(k) == v for k, v in more.items())
    )


def _shown(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events a failure shows: all but the audio ones, without the audio."""
    return [
        {k: v for k, v in e.items() if k not in ("audioBase64", "relaySessionId")}
        for e in events
        if e.get("type") not in ("inputAudio", "audio")
    ]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_a_spoken_command_in_openclaws_talk_mode_is_answered_by_blitz(
    openclaw_gateway: Gateway, speech_server: SpeechServer
) -> None:
    """``talk.session.create`` runs on ``blitz-voice``; a command spoken into
    ``talk.session.appendAudio`` is heard by the daemon (the user transcript), answered (the
    assistant transcript: blitz's status sentence) with its speech (``audio`` events, PCM16
    24 kHz) and the answer's end (``audioDone``); OpenClaw's conversation keeps both; close."""
    pcm = _spoken(speech_server, ASKED)
    with talking(openclaw_gateway) as talk:
        created = talk.request("talk.session.create", {**TALK, "sessionKey": "blitz-talk"})
        assert created["provider"] == "blitz-voice", created
        session = created["sessionId"]
        assert created["audio"] == {
            "inputEncoding": "pcm16",
            "inputSampleRateHz": RATE,
            "outputEncoding": "pcm16",
            "outputSampleRateHz": RATE,
        }, created
        talk.wait(_of("ready"), "the session ready (the daemon's voice session open)")
        _append(talk, session, pcm + bytes(2 * RATE))  # the command, then a second of silence
        done = talk.wait(_of("audioDone"), "the end of blitz's answer")
        shown = _shown(talk.events)
        transcripts = [e for e in talk.events if e.get("type") == "transcript" and e.get("final")]
        heard = [e["text"] for e in transcripts if e["role"] == "user"]
        said = [e["text"] for e in transcripts if e["role"] == "assistant"]
        assert [_words(h) for h in heard] == [_words(ASKED)], shown
        assert len(said) == 1 and ANSWER.match(said[0]), shown
        audio = b"".join(
            base64.b64decode(e["audioBase64"]) for e in talk.events if e.get("type") == "audio"
        )
        assert not [e for e in talk.events if e.get("type") == "error"], shown
        # Over half a second of PCM16 speech.
        assert len(audio) > RATE and len(audio) % 2 == 0, (len(audio), shown)
        assert done.get("responseId", "").startswith("blitz-"), done
        talk.request("talk.session.close", {"sessionId": session})
    # Both sides are in the talk session's OpenClaw conversation too.
    openclaw_gateway.wait_for(
        "blitz-talk",
        lambda rows: [_words(message_text(m)) for m in rows] == [_words(heard[0]), _words(said[0])],
        timeout=30,
        what="the talk's transcript in the conversation",
    )


def test_the_daemon_down_is_a_clear_error_in_the_talk_session(
    openclaw_gateway: Gateway, daemon_relay: Relay, blitz_daemon: Daemon
) -> None:
    """voice-chat reaches the daemon through the run's relay: with the daemon gone, an open talk
    session ends with an ``error`` event and a new one fails with "unavailable" (the reason, never
    the daemon's token, in the gateway's log); the gateway goes on, and once the daemon is back a
    session is ready again."""
    with talking(openclaw_gateway) as talk:
        first = talk.request("talk.session.create", {**TALK, "sessionKey": "blitz-talk-down"})
        talk.wait(_of("ready", relaySessionId=first["sessionId"]), "the first session ready")
        with daemon_relay.down():
            dropped = talk.wait(
                _of("error", relaySessionId=first["sessionId"]), "the dropped session's error"
            )
            second = talk.request("talk.session.create", {**TALK, "sessionKey": "blitz-talk-down"})
            refused = talk.wait(
                _of("error", relaySessionId=second["sessionId"]), "the refused session's error"
            )
        for error in (dropped, refused):
            assert error["provider"] == "blitz-voice", error
            assert "unavailable" in error["message"], error
        assert openclaw_gateway.alive()
        third = talk.request("talk.session.create", {**TALK, "sessionKey": "blitz-talk-down"})
        talk.wait(
            _of("ready", relaySessionId=third["sessionId"]), "a session after the daemon is back"
        )
        talk.request("talk.session.close", {"sessionId": third["sessionId"]})
    # The provider's own words are in the gateway's log (OpenClaw's in the event); no token.
    logged = (openclaw_gateway.root / "gateway.out").read_text(errors="replace")
    assert (
        f"blitz's voice session at {daemon_relay.url.replace('http', 'ws', 1)}/api/voice dropped"
        in logged
    )
    assert f"cannot reach the blitz daemon at {daemon_relay.url.replace('http', 'ws', 1)}" in logged
    assert blitz_daemon.token not in logged


def test_blitz_speaks_up_in_the_talk_session_when_a_goal_finishes(
    openclaw_gateway: Gateway, blitz_daemon: Daemon
) -> None:
    """With a talk session open and nothing said, a goal finishing on the daemon is told in it:
    blitz's speak-up (README "Voice") as the assistant's transcript, its speech and its end."""
    title = f"Greet the talk session {uuid.uuid4().hex[:6]}"
    with talking(openclaw_gateway) as talk:
        created = talk.request("talk.session.create", {**TALK, "sessionKey": "blitz-talk-news"})
        talk.wait(_of("ready"), "the session ready")
        submitted = httpx.post(
            f"{blitz_daemon.url}/api/goals",
            json={"project": "api", "title": title},
            headers={"Authorization": f"Bearer {blitz_daemon.token}"},
            timeout=30,
        )
        assert submitted.status_code == 201, submitted.text
        news = talk.wait(
            lambda e: (
                e.get("type") == "transcript"
                and e.get("role") == "assistant"
                and title in str(e.get("text"))
            ),
            "blitz's speak-up about the goal",
        )
        assert "finished" in news["text"], news
        at = talk.events.index(news)
        done = talk.wait(_of("audioDone"), "the end of the speak-up", after=at)
        spoken = [e for e in talk.events[at : talk.events.index(done)] if e.get("type") == "audio"]
        assert spoken, talk.events[at:]
        assert not [e for e in talk.events if e.get("type") == "error"], talk.events
        talk.request("talk.session.close", {"sessionId": created["sessionId"]})


def test_cancel_output_stops_blitzs_answer_and_the_session_goes_on(
    openclaw_gateway: Gateway, speech_server: SpeechServer
) -> None:
    """``talk.session.cancelOutput`` (a talk client's barge-in) during blitz's answer: applied,
    blitz stops it (its ``stopped``: the ``clear`` with reason ``barge-in``), and the next
    command in the same session is heard and answered."""
    help, asked = _spoken(speech_server, "Help."), _spoken(speech_server, ASKED)
    with talking(openclaw_gateway) as talk:
        created = talk.request("talk.session.create", {**TALK, "sessionKey": "blitz-talk-cut"})
        session = created["sessionId"]
        talk.wait(_of("ready"), "the session ready")
        _append(talk, session, help + bytes(2 * RATE))
        first = talk.wait(_of("audio"), "the help's first audio")
        turn = first["talkEvent"]["turnId"]
        cancelled = talk.request(
            "talk.session.cancelOutput",
            {"sessionId": session, "turnId": turn, "reason": "barge-in"},
        )
        assert cancelled.get("status") == "applied", (cancelled, _shown(talk.events))
        talk.wait(_of("clear", reason="barge-in"), "blitz's answer stopped")
        at = len(talk.events)
        _append(talk, session, asked + bytes(2 * RATE))
        answer = talk.wait(
            lambda e: e.get("type") == "transcript" and e.get("role") == "assistant",
            "the next answer",
            after=at,
        )
        assert ANSWER.match(answer["text"]), _shown(talk.events)
        talk.wait(_of("audioDone"), "the next answer's end", after=at)
        assert not [e for e in talk.events if e.get("type") == "error"], _shown(talk.events)
        talk.request("talk.session.close", {"sessionId": session})
