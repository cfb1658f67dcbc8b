"""A goal from Slack, through a real daemon (uvicorn on 127.0.0.1), the real engine (scripted
backend), real git and a fake GitHub; Slack is the fake Web API on 127.0.0.1 and signed Events
API requests posted to the daemon."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from slack_helpers import (
    ALICE,
    CHANNEL,
    GH_TOKEN,
    MALLORY,
    OTHER_CHANNEL,
    SCENARIO,
    SECRET,
    ending,
    repo,
    thread_texts,
    until,
)

from blitz.integrations.slack import messages
from blitz.testing.fake_github import FakeGitHub
from blitz.testing.fake_slack import FakeSlack, click, mention, message


async def test_a_mention_becomes_a_goal_whose_thread_ends_with_the_pull_request(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    with FakeGitHub(token=GH_TOKEN) as github:
        r = await live(SCENARIO, github_token=GH_TOKEN, github_api_url=github.url)
        await r.map(await r.add_project(repo(tmp_path, github="greet")))
        ts = "1700000001.000100"
        answer = await r.deliver(mention(CHANNEL, ALICE, "Greet the world", ts))
        assert answer.status_code == 200

        await until(lambda: slack.reactions(CHANNEL, ts)[:1] == ["eyes"])
        (goal,) = await until(r.goals)
        assert goal["title"] == "Greet the world"
        (done,) = await until(ending(slack, ts, "Done"))
        final = await r.goal(goal["id"])
        assert final["state"] == "succeeded"
        (pull,) = github.pulls
        assert pull["html_url"] in done and final["pr_url"] == pull["html_url"]
        assert "2/2 tasks done" in done
        await until(lambda: slack.reactions(CHANNEL, ts) == ["eyes", "white_check_mark"])

    # One thread: the plan, one progress message (edited in place, not reposted), the end.
    texts = thread_texts(slack, ts)
    assert len(texts) == 3, texts
    (plan,) = [t for t in texts if "*Plan*" in t]
    assert "*Plan* (2 tasks)" in plan and "`hello`" in plan and "`world`" in plan
    (progress,) = [t for t in texts if t.startswith("Succeeded: 2/2 tasks done")]
    assert texts[-1] == done
    progress_ts = next(m["ts"] for m in slack.replies(CHANNEL, ts) if m["text"] == progress)
    edits = [c for c in slack.calls_of("chat.update") if c.args.get("ts") == progress_ts]
    assert edits, "the progress message was never edited"
    # No token went to Slack in a message, and only the bot token reached the Web API.
    sent = [c for c in slack.calls if c.method.startswith("chat.")]
    assert all(GH_TOKEN not in str(c.args) for c in sent)
    assert {c.token for c in slack.calls} == {slack.bot_token}
    # Slack's secrets are nowhere in the store (its database files) or the event log.
    stored = b"".join(p.read_bytes() for p in (tmp_path / "home").glob("blitz.db*"))
    assert slack.bot_token.encode() not in stored and SECRET.encode() not in stored
    events = (await r.http.get(f"/api/goals/{goal['id']}/events")).text
    assert slack.bot_token not in events and SECRET not in events


async def test_a_plan_that_needs_approval_runs_once_an_allowed_user_clicks_approve(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    r = await live(SCENARIO, users=ALICE)
    await r.map(await r.add_project(repo(tmp_path, approval=True)))
    ts = "1700000002.000100"
    await r.deliver(mention(CHANNEL, ALICE, "Greet with approval", ts))
    (goal,) = await until(r.goals)
    # The plan may be posted while the goal is still being planned; it is edited to wait.
    (plan,) = await until(
        lambda: [m for m in slack.replies(CHANNEL, ts) if "waits for approval" in m["text"]]
    )
    assert plan["text"].startswith("*Plan*")
    buttons = [
        e["action_id"] for b in plan["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == [messages.APPROVE, messages.REJECT]

    # Mallory may not approve: told so, alone; the goal still waits.
    answer = await r.click(
        click(CHANNEL, MALLORY, messages.APPROVE, goal["id"], message_ts=plan["ts"])
    )
    assert answer.status_code == 200
    (whisper,) = await until(lambda: slack.calls_of("chat.postEphemeral"))
    assert whisper.args["user"] == MALLORY and "not allowed" in whisper.args["text"]
    assert (await r.goal(goal["id"]))["state"] == "awaiting_approval"

    answer = await r.click(
        click(CHANNEL, ALICE, messages.APPROVE, goal["id"], message_ts=plan["ts"])
    )
    assert answer.status_code == 200
    await until(ending(slack, ts, "Done"))
    assert (await r.goal(goal["id"]))["state"] == "succeeded"
    assert await until(ending(slack, ts, f"Approved by <@{ALICE}>"))
    # The plan's buttons are gone once it was decided.
    (decided,) = [m for m in slack.replies(CHANNEL, ts) if m["ts"] == plan["ts"]]
    assert "waits for approval" not in decided["text"]
    assert all(b["type"] != "actions" for b in decided.get("blocks", []))


async def test_an_unmapped_channel_or_a_user_not_allowed_is_refused_and_nothing_starts(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    r = await live(SCENARIO, users=ALICE)
    await r.map(await r.add_project(repo(tmp_path)))
    await r.deliver(mention(OTHER_CHANNEL, ALICE, "Greet elsewhere", "1700000003.000100"))
    (refusal,) = await until(lambda: thread_texts(slack, "1700000003.000100", OTHER_CHANNEL))
    assert "no project" in refusal and "blitz slack map" in refusal
    await r.deliver(mention(CHANNEL, MALLORY, "Greet as Mallory", "1700000003.000200"))
    (refusal,) = await until(lambda: thread_texts(slack, "1700000003.000200"))
    assert "not allowed" in refusal
    # A plain message in an unmapped channel is not for blitz: no answer at all.
    await r.deliver(message(OTHER_CHANNEL, ALICE, "lunch?", "1700000003.000300"))
    await r.deliver(mention(CHANNEL, ALICE, "Greet for real", "1700000003.000400"))
    await until(r.goals)  # the last one started, so the ones before it were handled
    assert [g["title"] for g in await r.goals()] == ["Greet for real"]
    assert not slack.replies(OTHER_CHANNEL, "1700000003.000300")
    assert not slack.reactions(CHANNEL, "1700000003.000200")


async def test_a_retried_event_and_the_same_message_as_mention_and_message_start_one_goal(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    r = await live(SCENARIO)
    await r.map(await r.add_project(repo(tmp_path)))
    ts = "1700000004.000100"
    event = mention(CHANNEL, ALICE, "Greet once", ts)
    assert (await r.deliver(event, event_id="Ev0ONCE")).status_code == 200
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert (await r.deliver(event, event_id="Ev0ONCE", headers=retry)).status_code == 200
    # Slack also sends the mention as a message in a mapped channel, with its own event id.
    same = message(CHANNEL, ALICE, event["text"], ts)
    assert (await r.deliver(same, event_id="Ev0ALSO")).status_code == 200
    await until(ending(slack, ts, "Done"))
    assert len(await r.goals()) == 1
    await until(lambda: slack.reactions(CHANNEL, ts) == ["eyes", "white_check_mark"])


async def test_a_forged_stale_or_tampered_request_is_refused_with_no_side_effect(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    r = await live(SCENARIO)
    await r.map(await r.add_project(repo(tmp_path)))
    ts = "1700000005.000100"
    event = mention(CHANNEL, ALICE, "Greet the world", ts)
    forged = await r.deliver(event, event_id="Ev0SAME", secret="not-the-signing-secret")
    stale = await r.deliver(event, event_id="Ev0SAME", timestamp=time.time() - 6 * 60)
    tampered = await r.deliver(event, event_id="Ev0SAME", tamper=True)
    assert [forged.status_code, stale.status_code, tampered.status_code] == [401, 401, 401]
    assert await r.goals() == []
    assert not [c for c in slack.calls if c.method != "auth.test"]
    # Nothing was taken: the same event, signed right, is the first and starts the goal.
    assert (await r.deliver(event, event_id="Ev0SAME")).status_code == 200
    await until(ending(slack, ts, "Done"))
    assert [g["title"] for g in await r.goals()] == ["Greet the world"]


async def test_a_channel_not_allowed_is_refused_even_when_mapped(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    r = await live(SCENARIO, channels=CHANNEL)
    project = await r.add_project(repo(tmp_path))
    await r.map(project)
    await r.map(project, OTHER_CHANNEL)  # mapped, but not among the allowed channels
    await r.deliver(mention(OTHER_CHANNEL, ALICE, "Greet there", "1700000009.000100"))
    (refusal,) = await until(lambda: thread_texts(slack, "1700000009.000100", OTHER_CHANNEL))
    assert "BLITZ_SLACK_ALLOWED_CHANNELS" in refusal
    # A plain message there is not for blitz, mapped or not.
    await r.deliver(message(OTHER_CHANNEL, ALICE, "Greet quietly", "1700000009.000200"))
    await r.deliver(mention(CHANNEL, ALICE, "Greet here", "1700000009.000300"))
    await until(r.goals)
    assert [g["title"] for g in await r.goals()] == ["Greet here"]
    assert not slack.replies(OTHER_CHANNEL, "1700000009.000200")
    assert not slack.reactions(OTHER_CHANNEL, "1700000009.000100")
