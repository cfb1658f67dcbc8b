"""The bundled speech server for the whole test run (a pytest plugin, loaded by
tests/conftest.py): ``blitz speech serve`` started once (its Whisper and Piper models load
once), offline, and stopped with its process tree; shared by the speech tests, the voice
session's and the dashboard's. It is given no key, so it makes one and prints it: the tests
use the printed key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blitz.testing.speech_server import SpeechServer


@pytest.fixture(scope="session")
def speech_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechServer]:
    from blitz_process import blitz_env  # here: after pytest_plugins rewrote the test helpers

    env = blitz_env(tmp_path_factory.mktemp("speech-home"))
    with SpeechServer(env=env, key="") as server:
        yield server
