"""Socket Mode: the daemon connects to the WebSocket Slack's apps.connections.open names (the
fake, on 127.0.0.1), acknowledges each envelope, and a mention there runs a goal to its end."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from blitz_process import blitz, start
from slack_helpers import ALICE, CHANNEL, MALLORY, SCENARIO, ending, repo, until

from blitz.integrations.slack import messages
from blitz.testing.fake_slack import FakeSlack, callback, click, mention


async def test_a_mention_over_socket_mode_runs_a_goal(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    r = await live(SCENARIO, socket=True)
    await until(lambda: slack.open_sockets == 1)
    (opened,) = slack.calls_of("apps.connections.open")
    assert opened.token == slack.app_token
    # No signing secret: no HTTP endpoint for Slack's events at all.
    assert (await r.http.post("/slack/events", json={})).status_code in (404, 405)
    await r.map(await r.add_project(repo(tmp_path)))
    ts = "1700000020.000100"
    event = callback(mention(CHANNEL, ALICE, "Greet over a socket", ts), event_id="Ev0SOCK")
    envelope = await slack.deliver("events_api", event)
    await until(lambda: slack.acked(envelope))
    again = await slack.deliver("events_api", event, retry=1)  # Slack's retry: acked, ignored
    await until(lambda: slack.acked(again))
    (done,) = await until(ending(slack, ts, "Done"))
    assert "2/2 tasks done" in done
    assert [g["title"] for g in await r.goals()] == ["Greet over a socket"]
    await r.stop()
    await until(lambda: slack.open_sockets == 0)


async def test_a_plan_is_approved_by_a_click_over_socket_mode(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    r = await live(SCENARIO, socket=True, users=ALICE)
    await until(lambda: slack.open_sockets == 1)
    await r.map(await r.add_project(repo(tmp_path, approval=True)))
    ts = "1700000021.000100"
    await slack.deliver("events_api", callback(mention(CHANNEL, ALICE, "Greet, approved", ts)))
    (goal,) = await until(r.goals)
    await until(lambda: [m for m in slack.replies(CHANNEL, ts) if m.get("blocks")])
    (plan,) = [m for m in slack.replies(CHANNEL, ts) if "*Plan*" in m["text"]]

    refused = click(CHANNEL, MALLORY, messages.APPROVE, goal["id"], message_ts=plan["ts"])
    sent = await slack.deliver("interactive", refused)
    await until(lambda: slack.acked(sent))
    (whisper,) = await until(lambda: slack.calls_of("chat.postEphemeral"))
    assert whisper.args["user"] == MALLORY
    assert (await r.goal(goal["id"]))["state"] == "awaiting_approval"

    approved = click(CHANNEL, ALICE, messages.APPROVE, goal["id"], message_ts=plan["ts"])
    sent = await slack.deliver("interactive", approved)
    await until(lambda: slack.acked(sent))
    await until(ending(slack, ts, "Done"))
    assert (await r.goal(goal["id"]))["state"] == "succeeded"
    await r.stop()


def test_blitz_serve_takes_slack_tokens_from_the_environment_only(
    tmp_path: Path, slack: FakeSlack
) -> None:
    """A real `blitz serve`: SLACK_BOT_TOKEN and SLACK_APP_TOKEN from its environment connect it
    over Socket Mode; neither is printed or logged; SIGTERM ends it cleanly."""
    proc = start(
        tmp_path / "home", "serve", "--port", "0",
        SLACK_BOT_TOKEN=slack.bot_token, SLACK_APP_TOKEN=slack.app_token,
        BLITZ_SLACK_API_URL=slack.url,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while not any(line.startswith("slack: ") for line in lines):
            line = proc.stdout.readline()
            assert line, f"blitz serve ended: {lines} {proc.communicate(timeout=10)}"
            lines.append(line.rstrip("\n"))
        assert "slack: Socket Mode" in lines
        deadline = time.monotonic() + 30
        while slack.open_sockets != 1:
            assert time.monotonic() < deadline, "blitz serve never connected over Socket Mode"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    for text in ("\n".join(lines) + out + err,):
        assert slack.bot_token not in text and slack.app_token not in text


def test_blitz_serve_refuses_a_bot_token_without_a_way_in(tmp_path: Path) -> None:
    done = blitz(tmp_path / "home", "serve", "--port", "0", SLACK_BOT_TOKEN="xoxb-only")
    assert done.returncode == 2
    assert "SLACK_SIGNING_SECRET" in done.stderr + done.stdout and "xoxb-only" not in done.stderr
