"""Talking to blitz from the dashboard, in a real browser: Chromium's fake microphone plays
Piper's "start a goal on the calc project: add a multiply function" (made by the suite's one
bundled speech server), the panel streams it to the daemon's ``/api/voice`` as 16 kHz PCM, the
daemon hears it with Whisper through that same server and asks aloud for a confirmation, and the
goal starts once Yes is clicked: with push-to-talk, and hands-free.

The fake microphone plays its file once from the moment the page opens it, so each test opens
a browser of its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from blitz.testing.speech_server import SpeechServer

from .harness import SCENARIO, Daemon, environment, login, make_repo, serving
from .voice_page import COMMAND, Spoken, microphone_page, open_panel, phase, speak, speech_settings

pytestmark = [pytest.mark.dashboard, pytest.mark.slow, pytest.mark.timeout(300)]

ANSWER_TIMEOUT = 60_000
"""Milliseconds the daemon may take to hear, understand and answer (Whisper on 2 busy cores)."""


@pytest.fixture(scope="module")
def spoken(speech_server: SpeechServer, tmp_path_factory: pytest.TempPathFactory) -> Spoken:
    return speak(speech_server, COMMAND, tmp_path_factory.mktemp("voice") / "command.wav")


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path, speech_server: SpeechServer
) -> Iterator[Daemon]:
    """A daemon whose speech services are the suite's speech server, with a project "calc"."""
    root = tmp_path_factory.mktemp("voice-daemon")
    env = environment(root) | speech_settings(speech_server.url, speech_server.key)
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
    spoken: Spoken,
) -> Iterator[Any]:
    with microphone_page(playwright_driver, artifacts, request, spoken) as page:
        yield page


def calc_goals(daemon: Daemon) -> list[dict[str, Any]]:
    return [g for g in daemon.api("GET", "/api/goals?limit=200") if g["project"] == "calc"]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def confirm_and_start(
    page: Any, daemon: Daemon, artifacts: Path, name: str, *, interrupt: bool = False
) -> dict[str, Any]:
    """After the command was heard: the question is shown and spoken, Yes starts the goal;
    the goal, as the API has it. ``interrupt``: Yes is clicked while the question is still
    being spoken, which cuts it off (barge-in); else once it was spoken to its end."""
    before = {g["id"] for g in calc_goals(daemon)}
    heard = page.get_by_test_id("voice-you").last
    heard.wait_for(timeout=ANSWER_TIMEOUT)
    assert "multiply" in words(heard.inner_text()), heard.inner_text()
    confirm = page.get_by_test_id("voice-confirm")
    confirm.wait_for(timeout=ANSWER_TIMEOUT)
    assert "calc" in words(confirm.inner_text()), confirm.inner_text()
    # The question is also spoken: its speech arrives and plays.
    question = page.locator("[data-testid='voice-blitz'][data-seconds]").last
    assert "multiply" in words(question.inner_text()), question.inner_text()
    page.wait_for_function(
        "el => parseFloat(el.dataset.seconds) > 0", arg=question.element_handle()
    )
    if interrupt:
        phase(page, "speaking")
    else:
        # Spoken to its end: nothing cut it off (not the release of the button, not the
        # silence after the command).
        page.locator(
            "[data-testid='voice-phase']:not([data-phase='speaking']):not([data-phase='thinking'])"
        ).wait_for(timeout=ANSWER_TIMEOUT)
        assert float(question.get_attribute("data-seconds") or 0) > 1.5, question.inner_text()
        assert page.locator("[data-testid='voice-blitz'][data-cut]").count() == 0
    page.screenshot(path=str(artifacts / f"{name}-question.png"))
    assert {g["id"] for g in calc_goals(daemon)} == before  # nothing starts before the yes

    page.get_by_test_id("voice-yes").click()
    if interrupt:
        page.locator("[data-testid='voice-blitz'][data-cut]").wait_for()
    deadline = time.monotonic() + 60
    while not (started := [g for g in calc_goals(daemon) if g["id"] not in before]):
        assert time.monotonic() < deadline, "no goal started after Yes"
        time.sleep(0.2)
    (goal,) = started
    assert "multiply" in words(goal["title"]), goal
    # The answer to the yes is shown (and spoken) in the transcript.
    page.locator("[data-testid='voice-you']", has_text="yes").wait_for()
    page.get_by_test_id("voice-blitz").nth(1).wait_for(timeout=ANSWER_TIMEOUT)
    page.screenshot(path=str(artifacts / f"{name}-started.png"))
    # Nothing was misheard on the way (no second utterance of the silence after the command).
    assert page.get_by_test_id("voice-error").count() == 0, page.get_by_test_id(
        "voice-transcript"
    ).inner_text()
    return goal


def test_push_to_talk_starts_a_goal_after_yes_and_its_end_is_spoken(
    talking_page: Any, daemon: Daemon, artifacts: Path, spoken: Spoken
) -> None:
    page = talking_page
    login(page, daemon)
    page.get_by_test_id(f"project-{'calc'}").wait_for()
    open_panel(page)

    talk = page.get_by_test_id("voice-talk")
    talk.hover()
    page.mouse.down()  # the microphone opens: its file starts playing now
    phase(page, "listening")
    page.wait_for_timeout(spoken.seconds * 1000)  # hold for the whole utterance
    page.mouse.up()
    assert page.get_by_test_id("voice-phase").get_attribute("data-phase") in {
        "thinking",
        "speaking",
    }

    goal = confirm_and_start(page, daemon, artifacts, "voice-push-to-talk")
    # When the goal ends, blitz speaks up (the scripted agent takes a few seconds).
    finished = page.locator("[data-testid='voice-event'][data-kind='goal.succeeded']")
    finished.wait_for(timeout=120_000)
    assert "multiply" in words(finished.inner_text()), finished.inner_text()
    page.wait_for_function(
        "el => parseFloat(el.dataset.seconds) > 0", arg=finished.element_handle()
    )
    assert daemon.api("GET", f"/api/goals/{goal['id']}")["state"] == "succeeded"
    # The panel stays open and keeps its conversation across pages.
    page.get_by_test_id(f"goal-row-{goal['id']}").click()
    page.wait_for_url(re.compile(r"/goals/"))
    assert page.get_by_test_id("voice-panel").is_visible()
    assert page.get_by_test_id("voice-you").count() >= 2


def test_hands_free_understands_without_pressing_and_yes_cuts_the_question_off(
    talking_page: Any, daemon: Daemon, artifacts: Path
) -> None:
    page = talking_page
    login(page, daemon)
    open_panel(page)
    page.get_by_test_id("voice-handsfree").check()  # the microphone opens and streams
    phase(page, "listening")
    confirm_and_start(page, daemon, artifacts, "voice-hands-free", interrupt=True)
    assert page.get_by_test_id("voice-handsfree").is_checked()


def test_a_close_that_retrying_cannot_help_stops_the_panel_until_reconnected_by_hand(
    talking_page: Any, daemon: Daemon, artifacts: Path
) -> None:
    """Push-to-talk held past 30 s of audio (a pause in it no longer ends it): the daemon closes
    the session with 1009. The panel says why and does not reconnect by itself; its Reconnect
    button does."""
    page = talking_page
    login(page, daemon)
    page.get_by_test_id("project-calc").wait_for()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    open_panel(page)
    page.get_by_test_id("voice-talk").hover()
    page.mouse.down()  # the command plays, then silence, all of it one utterance
    phase(page, "closed", timeout=90_000)
    page.mouse.up()
    detail = page.get_by_test_id("voice-detail").inner_text()
    assert "1009" in detail and "an utterance is over 30 s" in detail, detail
    page.screenshot(path=str(artifacts / "voice-closed.png"))
    page.wait_for_timeout(3500)  # longer than the first two waits before a reconnection
    assert len(sockets) == 1, sockets
    assert page.get_by_test_id("voice-phase").get_attribute("data-phase") == "closed"
    assert page.get_by_test_id("voice-talk").is_disabled()

    page.get_by_test_id("voice-reconnect").click()
    phase(page, "ready")
    assert len(sockets) == 2, sockets
    assert page.get_by_test_id("voice-reconnect").count() == 0
    page.get_by_test_id("voice-text").fill("help")
    page.get_by_test_id("voice-send").click()
    page.locator("[data-testid='voice-blitz']", has_text="You can say").wait_for(
        timeout=ANSWER_TIMEOUT
    )
