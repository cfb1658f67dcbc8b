"""Which project a channel's goals go to, through the API and the CLI; what a thread reply
asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz
from slack_helpers import CHANNEL, OTHER_CHANNEL, SCENARIO, repo

from blitz.domain import Goal, GoalState, Task
from blitz.integrations.slack import messages
from blitz.integrations.slack.commands import Command, Verb, parse, words


async def test_channels_are_mapped_listed_and_unmapped_through_the_api(
    live: Any, tmp_path: Path
) -> None:
    r = await live(SCENARIO)
    project = await r.add_project(repo(tmp_path))
    await r.map(project, CHANNEL)
    await r.map("repo", OTHER_CHANNEL)  # by name; two channels, one project
    listed = (await r.http.get("/api/slack/channels")).json()
    assert [(c["channel"], c["project_id"]) for c in listed] == [
        (CHANNEL, project),
        (OTHER_CHANNEL, project),
    ]
    bad = await r.http.put("/api/slack/channels/general", json={"project": project})
    assert bad.status_code == 400 and "channel id" in bad.json()["detail"]
    unknown = await r.http.put(f"/api/slack/channels/{CHANNEL}", json={"project": "nope"})
    assert unknown.status_code == 404
    assert (await r.http.delete(f"/api/slack/channels/{CHANNEL}")).status_code == 204
    assert (await r.http.delete(f"/api/slack/channels/{CHANNEL}")).status_code == 404
    listed = (await r.http.get("/api/slack/channels")).json()
    assert [c["channel"] for c in listed] == [OTHER_CHANNEL]
    anonymous = await r.http.get("/api/slack/channels", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_blitz_slack_map_list_unmap(tmp_path: Path, isolated_git: None) -> None:
    home = tmp_path / "home"
    path = repo(tmp_path)
    assert blitz(home, "projects", "add", path).returncode == 0
    mapped = blitz(home, "slack", "map", CHANNEL, "repo")
    assert mapped.returncode == 0, mapped.stderr
    assert f"{CHANNEL} -> repo" in mapped.stdout
    assert f"{CHANNEL} -> repo" in blitz(home, "slack", "list").stdout
    wrong = blitz(home, "slack", "map", "#general", "repo")
    assert wrong.returncode == 2 and "not a Slack channel id" in wrong.stderr + wrong.stdout
    assert blitz(home, "slack", "unmap", CHANNEL).returncode == 0
    assert "no channels mapped" in blitz(home, "slack", "list").stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status", Command(Verb.STATUS)),
        ("<@UBLITZ> Cancel", Command(Verb.CANCEL)),
        ("approve", Command(Verb.APPROVE)),
        ("retry `hello`", Command(Verb.RETRY, task="hello")),
        ("skip world", Command(Verb.SKIP, task="world")),
        ("retry", Command(Verb.UNCLEAR, text="say which task: `retry TASK`")),
        ("status of the docs too", Command(Verb.FOLLOW_UP, text="status of the docs too")),
        ("also handle <@U0ALICE01>'s case", Command(Verb.FOLLOW_UP, text="also handle 's case")),
        # Slack's escapes and links, as the author typed them
        ("make a &lt; b &amp;&amp; c &gt; d", Command(Verb.FOLLOW_UP, text="make a < b && c > d")),
        (
            "see <https://example.com/x?a=1&amp;b=2|the spec> in <#C0DOCS|docs>",
            Command(Verb.FOLLOW_UP, text="see https://example.com/x?a=1&b=2 in #docs"),
        ),
    ],
)
def test_a_thread_reply_says_a_command_or_a_follow_up(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_a_title_is_shown_as_written_not_read_as_slack_markup() -> None:
    title = words("make a &lt; b &amp;&amp; <!channel> see <https://x.example/?q=1&amp;r=2|it>")
    goal = Goal(id="g-1", project_id="p-1", title=title, state=GoalState.AWAITING_APPROVAL)
    plan = messages.plan(goal, [Task(id="one", goal_id="g-1", title=title)])
    # what was escaped when it came is escaped again when it goes: no ping, no link, no tag
    assert "make a &lt; b &amp;&amp; @channel see https://x.example/?q=1&amp;r=2" in plan.text
    assert "<" not in plan.text and ">" not in plan.text
