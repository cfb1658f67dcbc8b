"""The voice panel when the speech server is down: what was said cannot be heard, and the panel
says so plainly (no hang, no silent failure); typed commands still work and their answers show,
with the spoken part's failure said too."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from blitz.testing.speech_server import SpeechServer

from .harness import SCENARIO, Daemon, environment, login, make_repo, serving
from .voice_page import COMMAND, Spoken, microphone_page, open_panel, phase, speak, speech_settings

pytestmark = [pytest.mark.dashboard, pytest.mark.slow, pytest.mark.timeout(240)]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("voice-down")
    down = f"http://127.0.0.1:{closed_port()}/v1"
    env = environment(root) | speech_settings(down, "k")
    env["BLITZ_SPEECH_TIMEOUT"] = "5"
    scenario = root / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    repos = {"calc": make_repo(root / "calc", env)}
    with serving(root, env, repos, artifacts, "--scenario", str(scenario)) as d:
        yield d


@pytest.fixture
def talking_page(
    playwright_driver: Any,
    daemon: Daemon,
    artifacts: Path,
    request: pytest.FixtureRequest,
    speech_server: SpeechServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    spoken: Spoken = speak(speech_server, COMMAND, tmp_path_factory.mktemp("voice") / "c.wav")
    with microphone_page(playwright_driver, artifacts, request, spoken) as page:
        yield page


def test_the_panel_says_the_speech_server_is_down(
    talking_page: Any, daemon: Daemon, artifacts: Path
) -> None:
    page = talking_page
    login(page, daemon)
    open_panel(page)
    page.get_by_test_id("voice-talk").focus()
    page.keyboard.down(" ")  # push-to-talk from the keyboard: Space held on the button
    phase(page, "listening")
    page.wait_for_timeout(2000)  # a part of the command is enough to try to transcribe
    page.keyboard.up(" ")

    phase(page, "error", timeout=60_000)
    errors = page.get_by_test_id("voice-error")
    errors.filter(has_text="Speech to text failed").wait_for(timeout=60_000)
    # The daemon tries to say it too; that fails as well, and is said in text.
    spoken_errors = errors.filter(has_text="Text to speech failed")
    spoken_errors.wait_for(timeout=60_000)
    phase(page, "error")
    detail = page.get_by_test_id("voice-detail").inner_text()
    assert "cannot reach the speech service" in detail, detail
    page.screenshot(path=str(artifacts / "voice-speech-down.png"))

    # The session goes on: a typed command is understood; its answer cannot be spoken.
    page.get_by_test_id("voice-text").fill("status")
    page.get_by_test_id("voice-send").click()
    page.locator("[data-testid='voice-you']", has_text="status").wait_for()
    page.get_by_test_id("voice-blitz").last.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll(\"[data-testid='voice-error']\").length >= 3"
    )
    assert spoken_errors.count() == 2, page.get_by_test_id("voice-transcript").inner_text()
    assert daemon.api("GET", "/api/goals?limit=200") == []


def test_the_panel_says_not_signed_in_when_the_socket_is_refused(page: Any, daemon: Daemon) -> None:
    """Without the login's cookie the daemon closes the voice socket with 1008: the panel says
    so and does not keep reconnecting; once signed in again, its Reconnect button reconnects."""
    login(page, daemon)
    page.get_by_test_id("project-calc").wait_for()
    cookies = page.context.cookies()
    page.context.clear_cookies()  # the page still has its token; the socket has no cookie
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.get_by_test_id("voice-open").click()
    phase(page, "signed-out")
    page.wait_for_timeout(3500)  # longer than the first two waits before a reconnection
    assert [url.rsplit("/", 2)[-2:] for url in sockets] == [["api", "voice"]], sockets
    assert page.get_by_test_id("voice-phase").inner_text().strip() == "not signed in"
    assert page.get_by_test_id("voice-detail").inner_text()
    assert page.get_by_test_id("voice-talk").is_disabled()
    page.context.add_cookies(cookies)
    page.get_by_test_id("voice-reconnect").click()
    phase(page, "ready")
    assert len(sockets) == 2, sockets
    assert not page.get_by_test_id("voice-talk").is_disabled()
