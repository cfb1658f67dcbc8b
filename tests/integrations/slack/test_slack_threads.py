"""Steering a goal from its Slack thread, the thread across a daemon restart, Slack's errors,
and a follow-up goal updating the same pull request; a real daemon, engine and git."""

from __future__ import annotations

import asyncio
import logging
import shlex
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import task, write
from slack_helpers import (
    AGENT,
    ALICE,
    CHANNEL,
    GH_TOKEN,
    PLAN,
    SCENARIO,
    ending,
    repo,
    thread_texts,
    until,
)

from blitz.testing.fake_github import FakeGitHub
from blitz.testing.fake_slack import FakeSlack, mention, message


def held(hold: Path) -> dict[str, Any]:
    """The scenario with ``hello`` waiting for ``hold`` to disappear first."""
    wait = {"run": f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done"}
    agent = {**AGENT, "hello": [[wait, *AGENT["hello"][0]]]}
    return {**PLAN, "agent": agent}


async def reaches(r: Any, goal_id: str, state: str) -> None:
    for _ in range(1200):
        if (await r.goal(goal_id))["state"] == state:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"goal {goal_id} never became {state}")


FAILING: dict[str, Any] = {
    "summary": "One good, one bad",
    "tasks": [task("good"), task("bad")],
    "agent": {
        "good": [[write("good.txt", "good\n")]],
        "bad": [[{"fail": "cannot"}], [write("bad.txt", "fixed\n")]],
    },
}


async def test_thread_commands_status_retry_skip_and_a_refused_one(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    r = await live(FAILING)
    await r.map(await r.add_project(repo(tmp_path, recoveries=0)))
    ts = "1700000010.000100"
    await r.deliver(mention(CHANNEL, ALICE, "Do good and bad", ts))
    (goal,) = await until(r.goals)
    (failed,) = await until(ending(slack, ts, ":x: Failed"))
    assert "- bad: " in failed and "reply `retry bad`" in failed and "reply `skip bad`" in failed
    await until(lambda: slack.reactions(CHANNEL, ts)[-1:] == ["x"])

    async def say(text: str, reply_ts: str) -> str:
        await r.deliver(message(CHANNEL, ALICE, text, reply_ts, thread_ts=ts))
        return str((await until(lambda: thread_texts(slack, ts)[n:]))[0])

    n = len(thread_texts(slack, ts))
    status = await say("status", "1700000010.000200")
    assert status.startswith("*Status*: Do good and bad")
    assert f"({goal['id']}, repo): failed" in status and "1 failed (bad)" in status
    n += 1
    nothing = await say("skip nosuch", "1700000010.000300")
    assert "has no task 'nosuch'" in nothing
    n += 1
    assert await say("retry bad", "1700000010.000400") == "Retrying `bad`."
    (done,) = await until(ending(slack, ts, "Done"))
    assert "2/2 tasks done" in done
    assert (await r.goal(goal["id"]))["state"] == "succeeded"
    await until(lambda: slack.reactions(CHANNEL, ts)[-1:] == ["white_check_mark"])
    assert len(await r.goals()) == 1  # commands are not follow-up goals


async def test_cancel_from_the_thread(live: Any, slack: FakeSlack, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.write_text("")
    r = await live(held(hold))
    await r.map(await r.add_project(repo(tmp_path)))
    ts = "1700000011.000100"
    await r.deliver(mention(CHANNEL, ALICE, "Greet slowly", ts))
    (goal,) = await until(r.goals)
    await until(lambda: [t for t in thread_texts(slack, ts) if "Working" in t])
    await r.deliver(message(CHANNEL, ALICE, "cancel", "1700000011.000200", thread_ts=ts))
    (cancelled,) = await until(ending(slack, ts, ":no_entry_sign: Cancelled"))
    assert ALICE in cancelled
    assert (await r.goal(goal["id"]))["state"] == "cancelled"
    await until(lambda: slack.reactions(CHANNEL, ts)[-1:] == ["x"])


async def test_a_restarted_daemon_keeps_the_thread_and_posts_the_end(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.write_text("")
    first = await live(held(hold), grace=0)
    await first.map(await first.add_project(repo(tmp_path)))
    ts = "1700000012.000100"
    await first.deliver(mention(CHANNEL, ALICE, "Greet across a restart", ts))
    (goal,) = await until(first.goals)
    await until(lambda: [t for t in thread_texts(slack, ts) if "Working" in t])
    (progress,) = [m for m in slack.replies(CHANNEL, ts) if "Working" in m["text"]]
    await first.stop()
    assert not ending(slack, ts, "Done")()
    hold.unlink()

    second = await live(held(hold))  # the same data directory: a restart
    (done,) = await until(ending(slack, ts, "Done"))
    assert "2/2 tasks done" in done
    assert (await second.goal(goal["id"]))["state"] == "succeeded"
    # The same progress message, edited by the new daemon: still one thread, one progress.
    (now,) = [m for m in slack.replies(CHANNEL, ts) if m["ts"] == progress["ts"]]
    assert now["text"].startswith("Succeeded: 2/2 tasks done")
    assert len(thread_texts(slack, ts)) == 3
    # A reply in the thread still reaches the goal.
    await second.deliver(message(CHANNEL, ALICE, "status", "1700000012.000200", thread_ts=ts))
    (status,) = await until(ending(slack, ts, "*Status*"))
    assert f"({goal['id']}, repo): succeeded" in status


async def test_rate_limits_and_server_errors_are_retried(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    r = await live(SCENARIO)
    await r.map(await r.add_project(repo(tmp_path)))
    slack.fail("reactions.add", status=429, retry_after=0)
    slack.fail("chat.postMessage", status=503, times=2)
    slack.fail("chat.update", status=502)
    ts = "1700000013.000100"
    await r.deliver(mention(CHANNEL, ALICE, "Greet through errors", ts))
    await until(ending(slack, ts, "Done"))
    await until(lambda: slack.reactions(CHANNEL, ts) == ["eyes", "white_check_mark"])
    statuses = [(c.method, c.status) for c in slack.calls if c.method != "auth.test"]
    assert statuses[:2] == [("reactions.add", 429), ("reactions.add", 200)]
    posts = [s for m, s in statuses if m == "chat.postMessage"]
    assert posts[:3] == [503, 503, 200]
    assert [s for m, s in statuses if m == "chat.update"][:2] == [502, 200]
    assert len(thread_texts(slack, ts)) == 3  # nothing posted twice


async def test_a_revoked_token_pauses_delivery_and_the_daemon_goes_on(
    live: Any, slack: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hold = tmp_path / "hold"
    hold.write_text("")
    r = await live(held(hold))
    await r.map(await r.add_project(repo(tmp_path)))
    ts = "1700000014.000100"
    await r.deliver(mention(CHANNEL, ALICE, "Greet, then lose the token", ts))
    (goal,) = await until(r.goals)
    await until(lambda: [t for t in thread_texts(slack, ts) if "Working" in t])
    slack.revoke("token_revoked")
    with caplog.at_level(logging.ERROR, logger="blitz.slack"):
        hold.unlink()
        await reaches(r, goal["id"], "succeeded")
        await until(lambda: "Slack delivery paused" in caplog.text)
    assert "token_revoked" in caplog.text and slack.bot_token not in caplog.text
    refused = [c for c in slack.calls if c.answer.get("error") == "token_revoked"]
    assert len(refused) == 1  # paused after the first refusal: no call after it
    assert not ending(slack, ts, "Done")()
    health = await r.http.get("/api/health")
    assert health.status_code == 200


async def test_a_reply_in_the_thread_is_a_follow_up_that_updates_the_same_pull_request(
    live: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    scenario = {
        "summary": "Add a note",
        "tasks": [task("note")],
        "agent": {"note": [[{"append": {"path": "notes.txt", "content": "more\n"}}]]},
    }
    with FakeGitHub(token=GH_TOKEN) as github:
        r = await live(scenario, github_token=GH_TOKEN, github_api_url=github.url)
        await r.map(await r.add_project(repo(tmp_path, github="notes")))
        ts = "1700000015.000100"
        await r.deliver(mention(CHANNEL, ALICE, "Add a note", ts))
        (first,) = await until(ending(slack, ts, "Done"))
        (pull,) = github.pulls
        first_body = str(pull["body"])
        await r.deliver(
            message(CHANNEL, ALICE, "also add a second note", "1700000015.000200", thread_ts=ts)
        )
        await until(lambda: len(ending(slack, ts, "Done")()) == 2, timeout=90)
        assert len(github.pulls) == 1  # the same pull request, updated
        later, earlier = await r.goals()  # newest first
        assert later["title"] == "also add a second note"
        assert (await r.goal(later["id"]))["follows"] == earlier["id"]
        assert later["branch"] == earlier["branch"]
        assert (await r.goal(later["id"]))["state"] == "succeeded"
        assert github.pulls[0]["body"] != first_body  # it says what the follow-up added
        (_, second) = ending(slack, ts, "Done")()
        assert pull["html_url"] in first and pull["html_url"] in second
        assert slack.reactions(CHANNEL, "1700000015.000200") == ["eyes"]
        assert any(f"continues `{earlier['id']}`" in t for t in thread_texts(slack, ts))
