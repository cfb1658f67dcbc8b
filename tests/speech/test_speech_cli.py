"""``blitz speech`` as a user runs it: what it says when it cannot serve (before any model
loads), and the server the other speech tests share, as it announced itself."""

from __future__ import annotations

import socket
from pathlib import Path

from blitz_process import blitz

from blitz.testing.speech_server import SpeechServer


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = blitz(tmp_path, "speech", "serve", "--port", str(port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_the_server_says_where_it_listens_and_the_key_it_made(
    speech_server: SpeechServer,
) -> None:
    said = "".join(speech_server.output)  # all of it: the tail may be other tests' traces
    assert f"blitz speech listening on {speech_server.url} (pid {speech_server.pid})" in said
    assert f"key: {speech_server.key}\n" in said
    assert len(speech_server.key) >= 20
    assert speech_server.url.startswith("http://127.0.0.1:")


def test_speech_is_listed_in_the_help(tmp_path: Path) -> None:
    listed = blitz(tmp_path, "--help")
    assert "speech" in listed.stdout
    serve = blitz(tmp_path, "speech", "serve", "--help")
    assert serve.returncode == 0 and "--port" in serve.stdout
