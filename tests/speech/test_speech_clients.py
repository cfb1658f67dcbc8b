"""blitz's speech clients against services that fail: down, slow, erroring (a scripted server on
127.0.0.1). Each failure is one of blitz's errors saying what to do, and the key is sent but
never shown. Also: which key goes to which service."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from pydantic import SecretStr

from blitz.errors import ConfigError
from blitz.settings import Settings
from blitz.speech.endpoint import SpeechEndpoint, SpeechRejected, SpeechUnavailable
from blitz.speech.synthesize import Synthesizer
from blitz.speech.transcribe import Audio, Transcriber
from blitz.testing.speech_api import ScriptedSpeechServer

KEY = "sk-speech-secret-4242"


def endpoint(url: str, *, timeout: float = 10.0) -> SpeechEndpoint:
    return SpeechEndpoint(url=url, model="whisper-1", voice="joe", api_key=KEY, timeout=timeout)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_server_that_is_down_is_unavailable_and_retryable() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(SpeechUnavailable, match=r"cannot reach.*BLITZ_STT_URL") as down:
        await Transcriber(endpoint(url)).transcribe(Audio(data=b"RIFF"))
    assert down.value.retryable
    with pytest.raises(SpeechUnavailable, match="BLITZ_TTS_URL"):
        await Synthesizer(endpoint(url)).speak("hello")


async def test_a_slow_server_times_out() -> None:
    with ScriptedSpeechServer(delay=60) as slow:
        with pytest.raises(SpeechUnavailable, match=r"did not answer within 0\.5s") as late:
            await Transcriber(endpoint(f"{slow.url}/v1", timeout=0.5)).transcribe(
                Audio(data=b"RIFF")
            )
        assert late.value.retryable
        with pytest.raises(SpeechUnavailable, match="BLITZ_SPEECH_TIMEOUT"):
            await Synthesizer(endpoint(f"{slow.url}/v1", timeout=0.5)).speak("hello")
    assert [seen.path for seen in slow.seen] == ["/v1/audio/transcriptions", "/v1/audio/speech"]


async def test_a_transcript_trickling_in_times_out_as_a_whole() -> None:
    # Each byte comes well within the timeout; the whole answer does not.
    with (
        ScriptedSpeechServer(body={"text": "hello there"}, trickle=0.25) as trickling,
        pytest.raises(SpeechUnavailable, match=r"did not answer within 1s"),
    ):
        await Transcriber(endpoint(f"{trickling.url}/v1", timeout=1)).transcribe(
            Audio(data=b"RIFF")
        )


async def test_a_failing_server_is_unavailable_with_what_it_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    said = {"error": {"message": "the model crashed", "type": "server_error", "code": None}}
    with ScriptedSpeechServer(status=500, body=said) as failing:
        with pytest.raises(SpeechUnavailable, match=r"failed \(500: the model crashed\)") as err:
            await Transcriber(endpoint(f"{failing.url}/v1")).transcribe(Audio(data=b"RIFF"))
        with pytest.raises(SpeechUnavailable, match="the model crashed"):
            await Synthesizer(endpoint(f"{failing.url}/v1")).speak("hello")
    assert err.value.retryable
    assert all(seen.authorization == f"Bearer {KEY}" for seen in failing.seen)  # sent...
    assert KEY not in str(err.value) and KEY not in caplog.text  # ...never shown


async def test_a_refusal_is_not_retryable() -> None:
    said = {"error": {"message": "audio too short", "type": "invalid_request_error"}}
    with (
        ScriptedSpeechServer(status=400, body=said) as refusing,
        pytest.raises(SpeechRejected, match="audio too short") as refused,
    ):
        await Transcriber(endpoint(f"{refusing.url}/v1")).transcribe(Audio(data=b"RIFF"))
    assert refused.value.status == 400 and not refused.value.retryable


async def test_a_url_that_is_not_a_speech_api_says_so() -> None:
    with (
        ScriptedSpeechServer(status=404, body={"detail": "Not Found"}) as elsewhere,
        pytest.raises(ConfigError, match=r"no speech API at .*BLITZ_TTS_URL is the API's base"),
    ):
        await Synthesizer(endpoint(elsewhere.url)).speak("hello")


async def test_an_answer_without_a_transcript_is_an_error() -> None:
    with (
        ScriptedSpeechServer(body={"words": []}) as odd,
        pytest.raises(SpeechUnavailable, match="without a transcript"),
    ):
        await Transcriber(endpoint(f"{odd.url}/v1")).transcribe(Audio(data=b"RIFF"))


async def test_the_requests_have_openais_shape() -> None:
    with ScriptedSpeechServer(body={"text": " hello there "}, audio=b"RIFF....WAVE") as server:
        text = await Transcriber(endpoint(f"{server.url}/v1/")).transcribe(
            Audio(data=b"RIFFdata", filename="a.wav", content_type="audio/wav")
        )
        spoken = await Synthesizer(endpoint(f"{server.url}/v1")).speak("Hi.", "pcm")
    assert text == "hello there"
    assert spoken == b"RIFF....WAVE"
    upload, speech = server.seen
    assert upload.path == "/v1/audio/transcriptions"
    assert upload.content_type.startswith("multipart/form-data")
    assert b'name="model"\r\n\r\nwhisper-1' in upload.body
    assert b'name="file"; filename="a.wav"' in upload.body and b"RIFFdata" in upload.body
    assert json.loads(speech.body) == {
        "input": "Hi.",
        "model": "whisper-1",
        "voice": "joe",
        "response_format": "pcm",
    }


def test_openais_key_goes_only_to_openai() -> None:
    openai = "https://api.openai.com/v1"
    local = "http://127.0.0.1:8766/v1"
    both = Settings(openai_api_key=SecretStr("sk-openai"), stt_url=openai, tts_url=local)
    stt, tts = both.speech_endpoints()
    assert (stt.api_key, tts.api_key) == ("sk-openai", "")
    own = Settings(
        openai_api_key=SecretStr("sk-openai"),
        stt_url=openai,
        stt_api_key=SecretStr("sk-stt"),
        tts_api_key=SecretStr("sk-tts"),
    )
    stt, tts = own.speech_endpoints()
    assert (stt.api_key, tts.api_key) == ("sk-stt", "sk-tts")
    assert {"sk-stt", "sk-tts"} <= set(own.secrets())
    assert "sk-stt" not in repr(stt)


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLITZ_STT_URL", "http://127.0.0.1:9000/v1")
    monkeypatch.setenv("BLITZ_STT_MODEL", "Systran/faster-whisper-small")
    monkeypatch.setenv("BLITZ_TTS_URL", "http://127.0.0.1:8880/v1")
    monkeypatch.setenv("BLITZ_TTS_VOICE", "af_heart")
    monkeypatch.setenv("BLITZ_TTS_API_KEY", "sk-tts")
    monkeypatch.setenv("BLITZ_SPEECH_TIMEOUT", "5")
    stt, tts = Settings().speech_endpoints()
    assert (stt.url, stt.model, stt.api_key, stt.timeout) == (
        "http://127.0.0.1:9000/v1",
        "Systran/faster-whisper-small",
        "",
        5.0,
    )
    assert (tts.url, tts.model, tts.voice, tts.api_key) == (
        "http://127.0.0.1:8880/v1",
        "tts-1",
        "af_heart",
        "sk-tts",
    )
