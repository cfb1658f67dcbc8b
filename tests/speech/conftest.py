"""The speech tests' one bundled speech server: ``blitz speech serve`` started once for the whole
run (its Whisper and Piper models load once), offline, and stopped with its process tree. It is
given no key, so it makes one and prints it: the tests use the printed key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blitz_process import blitz_env

from blitz.testing.speech_server import SpeechServer


@pytest.fixture(scope="session")
def speech_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechServer]:
    env = blitz_env(tmp_path_factory.mktemp("speech-home"))
    with SpeechServer(env=env, key="") as server:
        yield server
