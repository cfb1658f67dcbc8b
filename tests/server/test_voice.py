"""The voice session through a live daemon (uvicorn on 127.0.0.1) and a real WebSocket, with
the real speech models behind the bundled speech server: spoken commands in, spoken answers
out, goals started and announced; and everything that must not break it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Start
from server_helpers import AGENT, PLAN, free_port, make_repo
from voice_helpers import (
    Voice,
    heard,
    noise,
    silence,
    speech_settings,
    spoken,
    webm_opus,
    words,
    ws_url,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from blitz.testing.speech_api import ScriptedSpeechServer
from blitz.testing.speech_server import SpeechServer
from blitz.voice.replies import HELP
from blitz.voice.session import AUDIO_FRAME, LEAD_S

pytestmark = pytest.mark.timeout(600)

SCENARIO = {**PLAN, **AGENT}
COMMAND = "Start a goal on the calc project: add a multiply function."


async def test_a_spoken_goal_is_confirmed_started_and_announced(
    live: Start, speech_server: SpeechServer, tmp_path: Path
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    await running.add_project(make_repo(tmp_path, "calc"))
    command, yes = await spoken(speech_server, COMMAND), await spoken(speech_server, "Yes.")
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
    # The command, paced like a microphone, then silence: the VAD ends the utterance.
    await voice.stream(silence(0.4) + command + silence(1.2))
    said = await voice.until("heard")
    assert {"multiply", "function"} <= set(words(said["text"])), said
    question = await voice.until("confirm")
    assert question["text"] == "Start a goal on calc: Add a multiply function?"
    answer = await voice.answer()
    assert answer.say["text"] == question["text"] and answer.end["type"] == "said"
    back = words(await heard(speech_server, answer.audio, answer.say["sample_rate"]))
    assert {"start", "goal", "add", "multiply", "function"} <= set(back), back
    assert not (await running.json("GET", "/api/goals")), "nothing starts before the yes"
    # A spoken yes starts it.
    await voice.stream(yes + silence(1.2))
    assert words((await voice.until("heard"))["text"]) == ["yes"]
    started = await voice.answer()
    assert started.say["text"] == "Started: Add a multiply function, on calc."
    [goal] = await running.json("GET", "/api/goals")
    assert goal["title"] == "Add a multiply function"
    # Later, the speak-up: the goal finished.
    event = await voice.until("event")
    assert event["kind"] == "goal.succeeded" and event["goal"] == goal["id"]
    assert "finished" in event["text"]
    finished = await voice.answer()
    assert finished.say["text"] == event["text"]
    assert "finished" in words(await heard(speech_server, finished.audio, 24000))
    assert (await running.json("GET", f"/api/goals/{goal['id']}"))["state"] == "succeeded"
    await voice.close()


@pytest.mark.parametrize("endpoint", ["client", "vad"])
async def test_a_pause_ends_an_utterance_only_when_the_vad_ends_it(
    live: Start, speech_server: SpeechServer, tmp_path: Path, endpoint: str
) -> None:
    """Push-to-talk (``"endpoint": "client"``): a pause while the button is held is part of the
    command, which only ``end`` ends. Hands-free (``vad``): the pause ends an utterance."""
    running = await live(SCENARIO, **speech_settings(speech_server))
    await running.add_project(make_repo(tmp_path, "calc"))
    first = await spoken(speech_server, COMMAND)
    then = await spoken(speech_server, "And a divide function.")
    url = ws_url(str(running.http.base_url))
    voice = await Voice.open(url, running.token, endpoint=endpoint)
    await voice.stream(silence(0.3) + first + silence(1.5) + then + silence(1.2))
    if endpoint == "client":
        await voice.send({"type": "end"})
    said = await voice.until("heard")
    assert {"multiply", "function"} <= set(words(said["text"])), said
    if endpoint == "vad":  # the first half alone, then the second
        assert "divide" not in words(said["text"]), said
        while not (isinstance(got := await voice.next(), dict) and got["type"] == "heard"):
            pass  # the answer to the first half (spoken, or cut off by the second)
        said = got
        assert "divide" in words(said["text"]) and "multiply" not in words(said["text"]), said
        await voice.close()
        return
    assert "divide" in words(said["text"]), said  # one utterance, both halves
    question = await voice.until("confirm")
    assert question["text"].startswith("Start a goal on calc: Add a multiply function"), question
    assert "divide" in words(question["text"]), question
    assert (await voice.answer()).say["text"] == question["text"]
    assert (await voice.reply_to("no")).say["text"] == "Not started."
    assert [m for m in voice.seen if m["type"] == "heard"] == [said]
    await voice.close()


async def test_frames_of_seconds_lose_no_word_and_the_vad_ends_each_utterance(
    live: Start, speech_server: SpeechServer, tmp_path: Path
) -> None:
    """Frames of almost 64 KiB (nearly 2 s each, sent at once, as a relay may batch a
    microphone): the start of a command is kept (the pre-roll counts from where speech starts,
    not from the end of its frame), and a pause inside a frame still ends the utterance there."""
    running = await live(SCENARIO, **speech_settings(speech_server))
    await running.add_project(make_repo(tmp_path, "calc"))
    first = await spoken(speech_server, COMMAND)
    then = await spoken(speech_server, "And a divide function.")
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
    audio = silence(0.3) + first + silence(1.5) + then + silence(1.2)
    for at in range(0, len(audio), 60_000):
        await voice.socket.send(audio[at : at + 60_000])
    said = await voice.until("heard")
    assert {"start", "goal", "multiply"} <= set(words(said["text"])), said
    assert "divide" not in words(said["text"]), said
    while not (isinstance(got := await voice.next(), dict) and got["type"] == "heard"):
        pass  # the answer to the first half (spoken, or cut off by the second)
    assert "divide" in words(got["text"]) and "multiply" not in words(got["text"]), got
    await voice.close()


async def test_webm_opus_is_understood_when_the_utterance_ends(
    live: Start, speech_server: SpeechServer, tmp_path: Path
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    await running.add_project(make_repo(tmp_path, "calc"))
    recording = webm_opus(await spoken(speech_server, COMMAND))
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token, format="webm")
    for start in range(0, len(recording), 4000):  # MediaRecorder's timeslice chunks
        await voice.socket.send(recording[start : start + 4000])
    await voice.send({"type": "end"})
    said = await voice.until("heard")
    assert {"multiply", "function"} <= set(words(said["text"])), said
    question = await voice.until("confirm")
    assert question["text"] == "Start a goal on calc: Add a multiply function?"
    assert (await voice.answer()).say["text"] == question["text"]
    await voice.send({"type": "text", "text": "no"})
    assert (await voice.answer()).say["text"] == "Not started."
    assert not await running.json("GET", "/api/goals")
    await voice.close()


async def closed_with(url: str, *sent: str | bytes, **headers: str) -> tuple[int, str]:
    """Open ``url``, send ``sent``, and return the code and reason the server closed with."""
    async with connect(url, additional_headers=headers, max_size=2**22) as socket:
        with pytest.raises(ConnectionClosed) as closed:  # maybe while still sending
            for message in sent:
                await socket.send(message)
            while True:
                await asyncio.wait_for(socket.recv(), 60)
    assert closed.value.rcvd is not None, "the server sent no close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_without_the_token_the_socket_closes_with_1008(
    live: Start, speech_server: SpeechServer
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    url = ws_url(str(running.http.base_url))
    code, reason = await closed_with(url)
    assert (code, reason.split(":")[0]) == (1008, "token required")
    code, reason = await closed_with(url, Authorization="Bearer blitz_wrong")
    assert (code, reason.split(":")[0]) == (1008, "token invalid")
    assert (await closed_with(ws_url(str(running.http.base_url), "blitz_wrong")))[0] == 1008
    # The dashboard's cookie and ?token= are the token too; without a hello, ready comes anyway.
    hello = json.dumps({"type": "hello"})
    for headers, where, first in (
        ({"Cookie": f"blitz_token={running.token}"}, url, [hello]),
        ({}, ws_url(str(running.http.base_url), running.token), []),
    ):
        async with connect(where, additional_headers=headers) as socket:
            for message in first:
                await socket.send(message)
            ready = json.loads(await asyncio.wait_for(socket.recv(), 60))
            assert ready == {"type": "ready", "speech": {"format": "pcm16", "sample_rate": 24000}}
    # The cookie, from a page of another origin (another port of this host): refused.
    cookie = {"Cookie": f"blitz_token={running.token}"}
    own = str(running.http.base_url).rstrip("/")
    code, reason = await closed_with(url, **cookie, Origin="http://127.0.0.1:1")
    assert code == 1008 and "daemon's own pages" in reason, reason
    async with connect(url, additional_headers={**cookie, "Origin": own}) as socket:
        await socket.send(hello)
        assert json.loads(await asyncio.wait_for(socket.recv(), 60))["type"] == "ready"


@pytest.mark.parametrize(
    ("sent", "code", "reason"),
    [
        ((bytes(64 * 1024 + 1),), 1009, "a binary frame is over 64 KiB"),
        (("not json",), 1007, "a text frame must be a JSON object"),
        (('{"type": "dance"}',), 1003, "unknown message type 'dance'"),
        (("{}",), 1003, "a message needs a 'type'"),
        (('{"type": "hello", "format": "mp3"}',), 1007, "hello: 'format'"),
        (('{"type": "hello", "sample_rate": 123}',), 1007, "hello: 'sample_rate'"),
        (('{"type": "hello"}', '{"type": "text"}'), 1007, "text: 'text' must be"),
        (('{"type": "hello"}', '{"type": "hello"}'), 1007, "hello comes first, once"),
        (
            ('{"type": "hello", "format": "webm"}', *[bytes(60000)] * 40),
            1009,
            "an utterance is over",
        ),
    ],
)
async def test_frames_the_protocol_forbids_close_the_socket_with_a_reason(
    live: Start, speech_server: SpeechServer, sent: tuple[str | bytes, ...], code: int, reason: str
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    url = ws_url(str(running.http.base_url))
    got = await closed_with(url, *sent, Authorization=f"Bearer {running.token}")
    assert got[0] == code and got[1].startswith(reason), got
    # The daemon goes on, and so do new sessions.
    assert (await running.json("GET", "/api/health"))["status"] == "ok"
    voice = await Voice.open(url, running.token)
    await voice.send({"type": "text", "text": "help"})
    assert (await voice.answer()).say["text"] == HELP
    await voice.close()


async def test_an_utterance_over_30_seconds_closes_the_socket(
    live: Start, speech_server: SpeechServer
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    words_ = "add a multiply function, a divide function and a subtract function to the calculator"
    speech = await spoken(speech_server, words_)
    long = b"".join(speech[: len(speech) - 3200] for _ in range(40))  # no pause between them
    assert len(long) / 32000 > 31
    url = ws_url(str(running.http.base_url))
    auth = f"Bearer {running.token}"
    code, reason = await closed_with(url, '{"type": "hello"}', *chunks(long), Authorization=auth)
    assert (code, reason) == (1009, "an utterance is over 30 s")


def chunks(pcm: bytes, size: int = 32000) -> list[bytes]:
    return [pcm[start : start + size] for start in range(0, len(pcm), size)]


async def test_noise_is_not_understood_and_the_session_goes_on(
    live: Start, speech_server: SpeechServer
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
    await voice.stream(noise(1.5), paced=False)
    await voice.send({"type": "end"})
    error = await voice.until("error")
    assert "did not understand" in error["message"] or "heard nothing" in error["message"]
    assert (await voice.answer()).say["text"] == error["message"]  # spoken too
    assert not [m for m in voice.seen if m["type"] in ("confirm", "event")]
    await voice.send({"type": "text", "text": "what can I say?"})
    answer = await voice.answer()
    assert answer.say["text"] == HELP and answer.audio and not answer.errors
    await voice.close()


async def test_a_speech_service_that_is_down_is_an_error_and_the_text_answer_still_comes(
    live: Start,
) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    running = await live(SCENARIO, stt_url=down, tts_url=down, speech_timeout=5.0)
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
    await voice.stream(noise(0.5), paced=False)
    await voice.send({"type": "end"})
    error = await voice.until("error")
    assert error["message"].startswith("Speech to text failed: cannot reach the speech service")
    unspoken = await voice.answer()  # the error as a say, its speech failing too: text only
    assert unspoken.say["text"] == error["message"] and not unspoken.audio
    assert unspoken.errors[0].startswith("Text to speech failed")
    await voice.send({"type": "text", "text": "help"})
    answer = await voice.answer()
    assert answer.say["text"] == HELP and answer.end["type"] == "said" and not answer.audio
    [said] = answer.errors
    assert said.startswith("Text to speech failed: cannot reach the speech service")
    await voice.close()


async def test_a_slow_speech_service_times_out_with_a_clear_error(live: Start) -> None:
    with ScriptedSpeechServer(delay=60) as slow:
        url = f"{slow.url}/v1"
        running = await live(SCENARIO, stt_url=url, tts_url=url, speech_timeout=1.0)
        voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
        await voice.stream(noise(0.5), paced=False)
        await voice.send({"type": "end"})
        error = await voice.until("error")
        assert "did not answer within 1s" in error["message"], error
        assert (await voice.answer()).say["text"] == error["message"]
        await voice.send({"type": "text", "text": "status"})
        answer = await voice.answer()
        assert answer.say["text"] == "No goal is running." and not answer.audio
        assert "did not answer within 1s" in answer.errors[0]
        await voice.close()


async def test_stop_and_speech_cut_off_the_answer_being_spoken(
    live: Start, speech_server: SpeechServer
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    question = await spoken(speech_server, "How is it going?")
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
    for cut in ("stop", "speech"):
        await voice.send({"type": "text", "text": "help"})
        say = await voice.until("say")
        assert isinstance(await voice.next(), bytes)  # it is being spoken
        if cut == "stop":
            await voice.send({"type": "stop"})
        else:  # barge-in: the person speaks over it
            await voice.stream(silence(0.2) + question + silence(1.2))
        rest: list[Any] = []
        while not (isinstance(got := await voice.next(), dict) and got["type"] == "stopped"):
            rest.append(got)
        assert got["id"] == say["id"] and not [m for m in rest if isinstance(m, dict)], rest
    assert words((await voice.until("heard"))["text"]) == ["how", "is", "it", "going"]
    assert (await voice.answer()).say["text"] == "No goal is running."
    await voice.close()


async def test_the_session_ends_with_1001_when_the_daemon_stops(
    live: Start, speech_server: SpeechServer
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
    running.daemon.request_stop()
    with pytest.raises(ConnectionClosed) as closed:
        await voice.until("never")
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "blitz is shutting down")


def voice_tasks() -> list[asyncio.Task[Any]]:
    """The voice sessions' own tasks running in this loop (the daemon's is this test's)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("voice-") and not t.done()]


async def test_a_client_gone_mid_answer_leaves_no_task_of_its_session(
    live: Start, speech_server: SpeechServer
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
    await voice.send({"type": "text", "text": "help"})
    await voice.until("say")
    assert isinstance(await voice.next(), bytes)  # being spoken
    assert voice_tasks()
    await voice.socket.close()  # gone mid-answer
    for _ in range(200):
        if not voice_tasks():
            break
        await asyncio.sleep(0.1)
    assert voice_tasks() == []
    again = await Voice.open(ws_url(str(running.http.base_url)), running.token)
    assert (await again.reply_to("status")).say["text"] == "No goal is running."
    await again.close()


async def test_answer_audio_arriving_in_odd_sized_pieces_is_sent_in_whole_samples(
    live: Start,
) -> None:
    pcm = bytes(range(256)) * 12 + b"\x01\x02"  # 3074 bytes: 1537 samples
    with ScriptedSpeechServer(audio=pcm, trickle=0.0005) as tts:
        url = f"{tts.url}/v1"
        running = await live(SCENARIO, stt_url=url, tts_url=url)
        voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
        await voice.send({"type": "text", "text": "status"})
        await voice.until("say")
        frames_sent: list[bytes] = []
        while isinstance(got := await voice.next(), bytes):
            frames_sent.append(got)
        assert got["type"] == "said", got
        assert len(frames_sent) > 1  # it came in pieces
        assert all(len(f) % 2 == 0 for f in frames_sent), [len(f) for f in frames_sent]
        assert b"".join(frames_sent) == pcm
        await voice.close()


async def test_a_slow_start_of_speech_is_not_made_up_for_by_a_burst(live: Start) -> None:
    """The answer's pace counts from its first audio byte: speech that starts 6 s late is still
    sent about a second ahead, so a cut soon after it starts stops what is not yet heard."""
    rate = 24000
    pcm = bytes(range(256)) * (10 * rate * 2 // 256)  # 10 s of answer audio
    with ScriptedSpeechServer(audio=pcm, delay=6.0) as tts:  # every byte comes after 6 s
        url = f"{tts.url}/v1"
        running = await live(SCENARIO, stt_url=url, tts_url=url, speech_timeout=30.0)
        voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
        await voice.send({"type": "text", "text": "status"})
        await voice.until("say")
        first = await voice.next()
        assert isinstance(first, bytes)
        await asyncio.sleep(0.5)  # the person reacts, and cuts it off
        await voice.send({"type": "stop"})
        received = len(first)
        while isinstance(got := await voice.next(), bytes):
            received += len(got)
        assert got["type"] == "stopped", got
        heard_s = received / 2 / rate
        assert heard_s <= LEAD_S + 1.5 + AUDIO_FRAME / 2 / rate, f"{heard_s:.2f} s sent"
        await voice.close()


async def test_an_end_long_after_the_vad_ended_an_utterance_is_always_answered(
    live: Start, speech_server: SpeechServer
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    question = await spoken(speech_server, "How is it going?")
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
    await voice.stream(silence(0.2) + question + silence(1.2))  # hands-free: the VAD ends it
    await voice.until("heard")
    heard_at = asyncio.get_running_loop().time()
    assert (await voice.answer()).say["text"] == "No goal is running."
    await asyncio.sleep(max(0.0, heard_at + 6.0 - asyncio.get_running_loop().time()))
    await voice.stream(silence(0.5))  # a press with nothing the VAD takes for speech
    await voice.send({"type": "end"})
    error = await voice.until("error")  # answered, not dropped as the last press's silence
    assert error["message"].startswith("Sorry, I did not understand that"), error
    await voice.close()


async def test_a_small_webm_holding_over_30_seconds_closes_the_socket(
    live: Start, speech_server: SpeechServer
) -> None:
    running = await live(SCENARIO, **speech_settings(speech_server))
    long = webm_opus(silence(31.0))  # small (silence compresses), long
    assert len(long) < 2 * 1024 * 1024
    url = ws_url(str(running.http.base_url))
    hello = '{"type": "hello", "format": "webm"}'
    auth = f"Bearer {running.token}"
    code, reason = await closed_with(
        url, hello, *chunks(long), '{"type": "end"}', Authorization=auth
    )
    assert (code, reason) == (1009, "an utterance is over 30 s"), reason


async def test_a_flood_of_commands_is_refused_past_a_few_waiting(live: Start) -> None:
    with ScriptedSpeechServer(delay=60) as slow:  # every answer waits for speech that is slow
        url = f"{slow.url}/v1"
        running = await live(SCENARIO, stt_url=url, tts_url=url, speech_timeout=30.0)
        voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)
        for _ in range(20):
            await voice.send({"type": "text", "text": "status"})
        refused = await voice.until("error")
        assert refused["message"].startswith("One thing at a time"), refused
        await voice.socket.close()
