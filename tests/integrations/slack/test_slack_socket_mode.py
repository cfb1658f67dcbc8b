"""Socket Mode: the daemon connects to the WebSocket Slack's apps.connections.open names (the
fake, on 127.0.0.1), acknowledges each envelope, and a mention there runs a goal to its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slack_helpers import ALICE, CHANNEL, SCENARIO, ending, repo, until

from blitz.testing.fake_slack import FakeSlack, callback, mention


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
