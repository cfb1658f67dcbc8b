"""The voice session through a live daemon (uvicorn on 127.0.0.1) and a real WebSocket, with
the real speech models behind the bundled speech server: spoken commands in, spoken answers
out, goals started and announced; and everything that must not break it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Start
from server_helpers import AGENT, PLAN, make_repo
from voice_helpers import (
    Voice,
    heard,
    silence,
    speech_settings,
    spoken,
    webm_opus,
    words,
    ws_url,
)

from blitz.testing.speech_server import SpeechServer

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
    assert {"goal", "multiply", "function"} <= set(words(said["text"])), said
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
    assert {"goal", "multiply", "function"} <= set(words(said["text"])), said
    question = await voice.until("confirm")
    assert question["text"] == "Start a goal on calc: Add a multiply function?"
    assert (await voice.answer()).say["text"] == question["text"]
    await voice.send({"type": "text", "text": "no"})
    assert (await voice.answer()).say["text"] == "Not started."
    assert not await running.json("GET", "/api/goals")
    await voice.close()
