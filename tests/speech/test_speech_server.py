"""The bundled speech server (``blitz speech serve``) with its real models, through blitz's own
clients over real HTTP on 127.0.0.1: the Piper voice speaks, Whisper tiny.en listens, and the
words must come back; what it cannot take is refused with a clear 4xx."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from speech_helpers import as_wav, clients, pcm16k, webm_opus, words

from blitz.errors import ConfigError
from blitz.speech.audio import PCM_OUT_RATE
from blitz.speech.endpoint import SpeechRejected
from blitz.speech.transcribe import Audio
from blitz.testing.speech_server import SpeechServer

SAID = "The goal finished and the pull request is open."
TWO_SENTENCES = "Approve the plan. Then cancel the second task."
# Long enough to keep Whisper busy for a while, and no sentence twice: Whisper reads a transcript
# that compresses too well (the same words over and over) as a failed decode and samples again at
# a higher temperature, which is where a repeated text came back as "I Harry." in CI.
LONG = (
    "The planner read the repository and wrote four tasks. "
    "Each task runs in its own worktree, apart from the others. "
    "When the tests pass, the change is committed on the goal's branch. "
    "A failed check asks the planner why, and a recovery task is added. "
    "At the end a pull request is opened for review. " + TWO_SENTENCES
)


async def test_spoken_words_come_back_as_text(speech_server: SpeechServer) -> None:
    transcriber, synthesizer = clients(speech_server)
    spoken = await synthesizer.speak(SAID, "wav")
    assert spoken[:4] == b"RIFF" and spoken[8:12] == b"WAVE"
    assert words(await transcriber.transcribe(Audio(data=spoken))) == words(SAID)


async def test_the_same_text_is_the_same_audio(speech_server: SpeechServer) -> None:
    _, synthesizer = clients(speech_server)
    assert await synthesizer.speak(SAID) == await synthesizer.speak(SAID)


async def test_pcm_streams_every_sentence(speech_server: SpeechServer) -> None:
    transcriber, synthesizer = clients(speech_server)
    chunks = [chunk async for chunk in synthesizer.stream(TWO_SENTENCES, "pcm")]
    pcm = b"".join(chunks)
    assert len(pcm) % 2 == 0 and len(pcm) > PCM_OUT_RATE  # over a second of 16-bit samples
    heard = await transcriber.transcribe(Audio(data=as_wav(pcm, PCM_OUT_RATE)))
    assert words(heard) == words(TWO_SENTENCES)


async def test_raw_16k_pcm_is_transcribed(speech_server: SpeechServer) -> None:
    transcriber, synthesizer = clients(speech_server)
    pcm = pcm16k(await synthesizer.speak(SAID))
    heard = await transcriber.transcribe(
        Audio(data=pcm, filename="utterance.pcm", content_type="audio/pcm")
    )
    assert words(heard) == words(SAID)


async def test_a_browsers_opus_in_webm_is_transcribed(speech_server: SpeechServer) -> None:
    transcriber, synthesizer = clients(speech_server)
    recorded = webm_opus(await synthesizer.speak(SAID))
    assert recorded[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
    heard = await transcriber.transcribe(
        Audio(data=recorded, filename="recording.webm", content_type="audio/webm;codecs=opus")
    )
    assert words(heard) == words(SAID)


async def test_transcription_does_not_hold_up_other_requests(speech_server: SpeechServer) -> None:
    transcriber, synthesizer = clients(speech_server)
    long = await synthesizer.speak(LONG)
    transcribing = asyncio.create_task(transcriber.transcribe(Audio(data=long)))
    await asyncio.sleep(0.3)  # the upload is on its way (a few milliseconds on 127.0.0.1)
    async with httpx.AsyncClient(timeout=60) as client:
        listed = await client.get(f"{speech_server.url}/models", headers=_bearer(speech_server.key))
    assert listed.status_code == 200
    assert not transcribing.done()  # answered while Whisper was still busy
    assert "cancel the second task" in " ".join(words(await transcribing))


async def test_garbage_audio_is_refused(speech_server: SpeechServer) -> None:
    transcriber, _ = clients(speech_server)
    with pytest.raises(SpeechRejected) as refused:
        await transcriber.transcribe(Audio(data=b"not audio at all " * 300, filename="x.wav"))
    assert refused.value.status == 400
    assert "not audio this server can decode" in str(refused.value)
    assert not refused.value.retryable
    with pytest.raises(SpeechRejected, match="odd number of bytes"):
        await transcriber.transcribe(Audio(data=b"\x00" * 3, filename="a.pcm"))
    with pytest.raises(SpeechRejected, match="holds no audio"):
        await transcriber.transcribe(Audio(data=b"", filename="a.pcm"))


async def test_unknown_models_and_voices_name_the_setting(speech_server: SpeechServer) -> None:
    transcriber, synthesizer = clients(
        speech_server, stt_model="large-v3", tts_model="eleven", tts_voice="joe"
    )
    with pytest.raises(ConfigError, match=r"no model 'large-v3'.*BLITZ_STT_MODEL"):
        await transcriber.transcribe(Audio(data=b"\x00\x00", filename="a.pcm"))
    with pytest.raises(ConfigError, match=r"no model 'eleven'.*BLITZ_TTS_MODEL"):
        await synthesizer.speak("hello")
    _, synthesizer = clients(speech_server, tts_voice="alloy")
    with pytest.raises(ConfigError, match=r"no voice 'alloy'.*joe.*BLITZ_TTS_VOICE"):
        await synthesizer.speak("hello")


async def test_a_wrong_key_is_refused_without_being_shown(speech_server: SpeechServer) -> None:
    wrong = "sk-not-the-speech-key-123"
    transcriber, synthesizer = clients(speech_server, stt_api_key=wrong, tts_api_key=wrong)
    with pytest.raises(ConfigError, match="BLITZ_STT_API_KEY") as refused:
        await transcriber.transcribe(Audio(data=b"\x00\x00", filename="a.pcm"))
    assert wrong not in str(refused.value)
    with pytest.raises(ConfigError, match="BLITZ_TTS_API_KEY"):
        await synthesizer.speak("hello")
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(f"{speech_server.url}/models")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"


async def test_requests_missing_fields_get_a_400(speech_server: SpeechServer) -> None:
    url, headers = speech_server.url, _bearer(speech_server.key)
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        no_model = await client.post(
            f"{url}/audio/transcriptions", files={"file": ("a.pcm", b"\x00\x00")}
        )
        no_file = await client.post(f"{url}/audio/transcriptions", data={"model": "whisper-1"})
        not_a_form = await client.post(f"{url}/audio/transcriptions", json={"model": "whisper-1"})
        no_input = await client.post(
            f"{url}/audio/speech", json={"model": "tts-1", "voice": "joe", "input": "  "}
        )
        mp3 = await client.post(
            f"{url}/audio/speech",
            json={"model": "tts-1", "voice": "joe", "input": "hi", "response_format": "mp3"},
        )
        not_json = await client.post(f"{url}/audio/speech", content=b"input=hi")
    codes = {
        "no model": (no_model.status_code, no_model.json()["error"]["code"]),
        "no file": (no_file.status_code, no_file.json()["error"]["code"]),
        "not a form": (not_a_form.status_code, not_a_form.json()["error"]["code"]),
        "no input": (no_input.status_code, no_input.json()["error"]["code"]),
        "mp3": (mp3.status_code, mp3.json()["error"]["code"]),
        "not json": (not_json.status_code, not_json.json()["error"]["code"]),
    }
    assert codes == {
        "no model": (400, "missing_model"),
        "no file": (400, "missing_file"),
        "not a form": (400, "missing_file"),
        "no input": (400, "missing_input"),
        "mp3": (400, "response_format"),
        "not json": (400, "invalid_json"),
    }


async def test_an_oversized_upload_is_refused_before_it_is_read(
    speech_server: SpeechServer,
) -> None:
    host, port = speech_server.url.removeprefix("http://").split("/")[0].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            "POST /v1/audio/transcriptions HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Bearer {speech_server.key}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {30 * 1024 * 1024}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    assert status.split()[1] == b"413"


async def test_a_client_gone_mid_upload_leaves_no_trace_and_the_server_serves_on(
    speech_server: SpeechServer,
) -> None:
    host, port = speech_server.url.removeprefix("http://").split("/")[0].rsplit(":", 1)
    before = len(speech_server.output)
    for _ in range(3):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            (
                "POST /v1/audio/transcriptions HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Bearer {speech_server.key}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                "Content-Length: 100000\r\n\r\n"
                '--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
            ).encode()
            + bytes(2000)
        )
        await writer.drain()
        await asyncio.sleep(0.2)  # the server is reading the form when the client goes
        writer.close()
        await writer.wait_closed()
    async with httpx.AsyncClient(timeout=30) as client:
        listed = await client.get(f"{speech_server.url}/models", headers=_bearer(speech_server.key))
    assert listed.status_code == 200
    await asyncio.sleep(1)  # a traceback would be in the log by now
    logged = "".join(speech_server.output[before:])
    assert "Traceback" not in logged and "ClientDisconnect" not in logged, logged


async def test_models_lists_what_it_serves(speech_server: SpeechServer) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        listed = await client.get(f"{speech_server.url}/models", headers=_bearer(speech_server.key))
    names = {model["id"] for model in listed.json()["data"]}
    assert {"whisper-1", "tiny.en", "tts-1", "piper"} <= names


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
