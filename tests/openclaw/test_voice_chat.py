"""The ``voice-chat`` OpenClaw plugin (``integrations/openclaw/voice-chat``), for real: its
vitest suites against the run's bundled speech server (``blitz speech serve``) and the run's
``blitz serve`` (whose voice session uses that speech server), and the pinned ``openclaw``
loading it with its two providers and its route.

The vitest suites read where things are from the environment: ``BLITZ_SPEECH_URL`` and
``BLITZ_SPEECH_KEY`` (the speech server), ``BLITZ_URL`` and ``BLITZ_TOKEN`` (the daemon).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Daemon

from blitz.testing.openclaw import Workspace
from blitz.testing.speech_server import SpeechServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PLUGIN = "voice-chat"
VITEST_TIMEOUT = 300.0
INSPECT_TIMEOUT = 180.0


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


def test_openclaw_loads_voice_chat_with_its_providers_and_route(
    openclaw_workspace: Workspace,
    blitz_daemon: Daemon,
    speech_server: SpeechServer,
    tmp_path: Path,
) -> None:
    """``openclaw plugins inspect voice-chat --runtime`` (the pinned openclaw, offline, in a
    state directory of its own) loads the plugin: the speech provider, the transcription
    provider and the route registered; the daemon's token and the speech key not shown."""
    config = {
        "update": {"checkOnStart": False},
        "telemetry": {"enabled": False},
        "plugins": {
            "load": {"paths": [str(openclaw_workspace.root / PLUGIN)]},
            "allow": [PLUGIN],
            "entries": {
                PLUGIN: {
                    "enabled": True,
                    "config": {
                        "speechUrl": speech_server.url,
                        "speechApiKey": speech_server.key,
                        "daemonUrl": blitz_daemon.url,
                        "daemonToken": blitz_daemon.token,
                    },
                }
            },
        },
    }
    (tmp_path / "openclaw.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "BLITZ_"))}
    env.update(
        HOME=str(tmp_path),
        OPENCLAW_HOME=str(tmp_path),
        OPENCLAW_STATE_DIR=str(tmp_path / "state"),
        OPENCLAW_CONFIG_PATH=str(tmp_path / "openclaw.json"),
        OPENCLAW_NO_AUTO_UPDATE="1",
        OPENCLAW_OFFLINE="1",
        OPENCLAW_DISABLE_BONJOUR="1",
        OPENCLAW_SKIP_CHANNELS="1",
        DO_NOT_TRACK="1",
    )
    done = openclaw_workspace.run(
        [openclaw_workspace.bin("openclaw"), "plugins", "inspect", PLUGIN, "--runtime", "--json"],
        cwd=tmp_path,
        env=env,
        timeout=INSPECT_TIMEOUT,
    )
    said = done.stdout + done.stderr
    assert blitz_daemon.token not in said and speech_server.key not in said
    assert done.returncode == 0, said[-8000:]
    found = json.loads(done.stdout)
    plugin = found["plugin"]
    assert (plugin["status"], plugin["activated"]) == ("loaded", True), plugin
    assert plugin["speechProviderIds"] == ["blitz-speech"]
    assert plugin["mediaUnderstandingProviderIds"] == ["blitz-transcription"]
    assert plugin["httpRoutes"] == 1
    assert {c["kind"]: c["ids"] for c in found["capabilities"]} == {
        "speech": ["blitz-speech"],
        "media-understanding": ["blitz-transcription"],
    }
    assert not [d for d in found["diagnostics"] if d["level"] == "error"], found["diagnostics"]
