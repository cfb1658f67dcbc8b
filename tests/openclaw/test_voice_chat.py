"""The ``voice-chat`` OpenClaw plugin (``integrations/openclaw/voice-chat``), for real: its
vitest suites against the run's bundled speech server (``blitz speech serve``) and the run's
``blitz serve`` (whose voice session uses that speech server), and the pinned ``openclaw``
loading it with its two providers and its route, and speaking and hearing through them.

The vitest suites read where things are from the environment: ``BLITZ_SPEECH_URL`` and
``BLITZ_SPEECH_KEY`` (the speech server), ``BLITZ_URL`` and ``BLITZ_TOKEN`` (the daemon).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Daemon, OpenClawHome
from gateway import Gateway
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from blitz.testing.openclaw import Workspace
from blitz.testing.speech_server import SpeechServer

PLUGIN = "voice-chat"
VITEST_TIMEOUT = 300.0
SENTENCE = "The goal finished and the pull request is open."
VOICE_WAIT = 120.0
"""Seconds to wait for the voice session's next message (speech shares two busy cores)."""


def _env(daemon: Daemon, speech: SpeechServer) -> dict[str, str]:
    return {
        **os.environ,
        **daemon.env(),
        "BLITZ_SPEECH_URL": speech.url,
        "BLITZ_SPEECH_KEY": speech.key,
        "NO_COLOR": "1",
    }


def _vitest(ws: Workspace, suite: str, env: dict[str, str]) -> None:
    done = ws.run(
        [ws.bin("vitest"), "run", f"{PLUGIN}/test/{suite}"], env=env, timeout=VITEST_TIMEOUT
    )
    assert done.returncode == 0, f"vitest {suite} failed:\n{done.stdout[-12000:]}{done.stderr}"
    assert "passed" in done.stdout and "skipped" not in done.stdout, done.stdout


def test_speech_and_transcription_round_trip_through_the_bundled_server(
    openclaw_workspace: Workspace, blitz_daemon: Daemon, speech_server: SpeechServer
) -> None:
    """The speech provider speaks a sentence, the transcription provider hears the same words;
    a server down, slow (the timeout), refusing the key, or not knowing the voice or the model
    gives a clear error that names the setting and never the key."""
    _vitest(openclaw_workspace, "speech.test.ts", _env(blitz_daemon, speech_server))


def test_the_route_bridges_a_client_to_the_daemons_voice_session(
    openclaw_workspace: Workspace, blitz_daemon: Daemon, speech_server: SpeechServer
) -> None:
    """Through the plugin's WebSocket route (its ``handleUpgrade`` given upgrades as the gateway
    gives them): a typed command answered with a ``say`` and its audio; 24 kHz speech without a
    hello heard right; the daemon's close codes carried; the daemon down or unset, a clear
    close reason."""
    _vitest(openclaw_workspace, "bridge.test.ts", _env(blitz_daemon, speech_server))


def _settings(daemon: Daemon, speech: SpeechServer) -> dict[str, Any]:
    """voice-chat's config: the run's speech server and daemon."""
    return {
        "speechUrl": speech.url,
        "speechApiKey": speech.key,
        "daemonUrl": daemon.url,
        "daemonToken": daemon.token,
        "timeoutMs": 120_000,
    }


@pytest.fixture(scope="module")
def installed(
    openclaw_home: OpenClawHome, blitz_daemon: Daemon, speech_server: SpeechServer
) -> OpenClawHome:
    """The run's OpenClaw with voice-chat installed (``plugins install --link``) and chosen as
    its speech provider (``tts``) and its audio transcription provider (``tools.media``)."""
    openclaw_home.install(PLUGIN, PLUGIN, _settings(blitz_daemon, speech_server))
    config = openclaw_home.config()
    config["tts"] = {"provider": "blitz-speech"}
    config.setdefault("tools", {})["media"] = {
        "models": [
            {"provider": "blitz-transcription", "model": "whisper-1", "capabilities": ["audio"]}
        ],
        "audio": {"enabled": True},
    }
    openclaw_home.update(config)
    return openclaw_home


def test_openclaw_loads_voice_chat_with_its_providers_and_route(
    installed: OpenClawHome, blitz_daemon: Daemon, speech_server: SpeechServer
) -> None:
    """``openclaw plugins inspect voice-chat --runtime`` loads the plugin: the speech provider,
    the transcription provider, the realtime voice provider and the route registered; the
    daemon's token and the speech key not shown."""
    found = installed.inspect(PLUGIN)
    shown = json.dumps(found)
    assert blitz_daemon.token not in shown and speech_server.key not in shown
    plugin = found["plugin"]
    assert (plugin["status"], plugin["activated"]) == ("loaded", True), shown[:4000]
    assert plugin["source"].endswith("voice-chat/dist/index.js")
    assert plugin["speechProviderIds"] == ["blitz-speech"]
    assert plugin["mediaUnderstandingProviderIds"] == ["blitz-transcription"]
    assert plugin["httpRoutes"] == 1
    assert {c["kind"]: c["ids"] for c in found["capabilities"]} == {
        "speech": ["blitz-speech"],
        "media-understanding": ["blitz-transcription"],
        "realtime-voice": [
            "blitz-voice"
        ],  # OpenClaw's talk mode (tests/openclaw/test_voice_talk.py)
    }
    assert not [d for d in found["diagnostics"] if d["level"] == "error"], found["diagnostics"]


def test_openclaw_speaks_and_hears_through_voice_chat(
    installed: OpenClawHome, tmp_path: Path
) -> None:
    """OpenClaw's own speech and transcription (``openclaw infer tts convert``, ``openclaw
    infer audio transcribe``) with voice-chat's providers chosen: a sentence spoken by the
    bundled server's voice, and the same words heard back by its Whisper."""
    spoken = tmp_path / "spoken.wav"
    converted = json.loads(
        installed.check(
            "infer", "tts", "convert", "--text", SENTENCE, "--output", str(spoken), "--json"
        )
    )
    assert (converted["ok"], converted["provider"]) == (True, "blitz-speech"), converted
    assert spoken.read_bytes()[:4] == b"RIFF"
    heard = installed.check(
        "infer", "audio", "transcribe", "--file", str(spoken),
        "--model", "blitz-transcription/whisper-1", "--json",
    )  # fmt: skip
    transcribed = json.loads(heard)
    assert (transcribed["ok"], transcribed["provider"]) == (True, "blitz-transcription")
    (output,) = transcribed["outputs"]
    assert _words(output["text"]) == _words(SENTENCE)


def test_the_route_on_a_real_gateway_reaches_the_daemons_voice_session(
    openclaw_gateway: Gateway,
) -> None:
    """The run's gateway, voice-chat loaded with the daemon's URL and token: its route
    ``/blitz/voice`` refuses a client without the gateway's token (401), answers a request that
    is not an upgrade with 426, and joins a client with the token to the daemon's voice session:
    a typed command answered with a ``say``, its audio, and ``said``."""
    url = f"{openclaw_gateway.url}/blitz/voice"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=30).close()
    assert refused.value.response.status_code == 401
    plain = httpx.get(
        url.replace("ws://", "http://", 1), headers=openclaw_gateway.auth_header(), timeout=30
    )
    assert (plain.status_code, plain.headers["upgrade"]) == (426, "websocket"), plain.text
    texts: list[dict[str, Any]] = []
    audio = 0
    with connect(
        url, additional_headers=openclaw_gateway.auth_header(), open_timeout=30, max_size=None
    ) as ws:
        ws.send(json.dumps({"type": "text", "text": "how is it going?"}))
        while not any(t["type"] == "said" for t in texts):
            frame = ws.recv(timeout=VOICE_WAIT)
            if isinstance(frame, bytes):
                audio += len(frame)
            else:
                texts.append(json.loads(frame))
    kinds = [t["type"] for t in texts]
    assert kinds[0] == "ready" and "say" in kinds, texts
    (say,) = [t for t in texts if t["type"] == "say"]
    assert say["text"] and audio > 0, texts
    assert "error" not in kinds, texts


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())
