"""``blitz mcp`` over stdio, as an agent's MCP configuration starts it: a real ``blitz mcp``
process, driven by the official ``mcp`` client, talking to a real ``blitz serve`` (the scripted
planner and agent) over its API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp_helpers import (
    TOOLS,
    call,
    daemon,
    make_repo,
    over_stdio,
    refused,
    scenario_file,
    wait_ended,
    wait_state,
)
from mcp_types import TextResourceContents

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def test_a_goal_runs_to_the_end_over_stdio(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    errlog = tmp_path / "mcp-stderr.txt"
    with daemon(tmp_path / "home", scenario_file(tmp_path)) as served:
        async with over_stdio(served.url, served.token, errlog) as mcp:
            listed = await mcp.list_tools()
            assert {t.name for t in listed.tools} == TOOLS
            assert all(t.output_schema for t in listed.tools)  # structured output, every one

            project = await call(mcp, "add_project", path=str(repo))
            assert project["name"] == "repo" and project["path"] == str(repo.resolve())
            assert (await call(mcp, "list_projects"))["projects"] == [project]

            goal = await call(mcp, "submit_goal", project="repo", title="Greet the world")
            assert goal["id"].startswith("g-") and goal["project"] == "repo"
            assert not goal["ended"]

            status = await wait_ended(mcp, goal["id"])
            assert status["state"] == "succeeded", status
            assert [(t["id"], t["state"]) for t in status["tasks"]] == [
                ("hello", "succeeded"), ("world", "succeeded"), ("review", "succeeded"),
            ]  # fmt: skip
            assert status["tasks_done"] == status["tasks_total"] == 3
            assert {a["task_id"] for a in status["attempts"]} == {"hello", "world", "review"}
            assert all(a["state"] == "succeeded" for a in status["attempts"])
            assert status["summary"] == "Greet the world"
            assert status["next"].startswith("done")

            events = await call(mcp, "goal_events", goal=goal["id"])
            kinds = [e["kind"] for e in events["events"]]
            assert kinds[0] == "goal.created" and "goal.succeeded" in kinds
            assert events["ended"] and events["last_id"] == events["events"][-1]["id"]
            later = await call(mcp, "goal_events", goal=goal["id"], since=events["last_id"])
            assert later["events"] == [] and later["last_id"] == events["last_id"]
            middle = events["events"][2]["id"]
            rest = await call(mcp, "goal_events", goal=goal["id"], since=middle)
            assert [e["id"] for e in rest["events"]] == [
                e["id"] for e in events["events"] if e["id"] > middle
            ]

            goals = await call(mcp, "list_goals", state=["succeeded"])
            assert [g["id"] for g in goals["goals"]] == [goal["id"]]
            assert (await call(mcp, "list_goals", state=["running"]))["goals"] == []

            read = await mcp.read_resource(f"blitz://goals/{goal['id']}")
            [content] = read.contents
            assert isinstance(content, TextResourceContents)
            assert json.loads(content.text)["state"] == "succeeded"
            diff = await mcp.read_resource(f"blitz://goals/{goal['id']}/tasks/world/diff")
            [patch] = diff.contents
            assert isinstance(patch, TextResourceContents)
            assert "hello.txt" in patch.text and "+world" in patch.text
            assert "+hello" not in patch.text  # the task's own change, not the goal's
    assert "serving the blitz daemon at" in errlog.read_text()


async def test_bad_arguments_come_back_as_tool_errors_saying_what_is_valid(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path)
    with daemon(tmp_path / "home", scenario_file(tmp_path)) as served:
        async with over_stdio(served.url, served.token, tmp_path / "err.txt") as mcp:
            await call(mcp, "add_project", path=str(repo))
            goal = await call(mcp, "submit_goal", project="repo", title="Greet")
            await wait_ended(mcp, goal["id"])

            message = await refused(mcp, "goal_status", goal="g-nothing")
            assert "no goal 'g-nothing'" in message and "list_goals" in message
            message = await refused(mcp, "submit_goal", project="nowhere", title="Greet")
            assert "no project 'nowhere'" in message and "list_projects" in message
            message = await refused(mcp, "retry_task", goal=goal["id"], task="nope")
            assert "has no task 'nope'" in message
            assert "tasks are: hello, world, review" in message
            message = await refused(mcp, "approve_plan", goal=goal["id"])
            assert "not awaiting approval" in message and "goal_status" in message
            message = await refused(mcp, "cancel_goal", goal=goal["id"])
            assert "already ended (succeeded)" in message
            message = await refused(mcp, "add_project", path="relative/repo")
            assert "absolute path" in message

            # The wrong shape: the field is named, and what is valid said.
            message = await refused(mcp, "list_goals", state=["bogus"])
            assert "state" in message and "'awaiting_approval'" in message
            message = await refused(mcp, "submit_goal", project="repo")
            assert "title" in message and "required" in message.lower()
            message = await refused(mcp, "goal_events", goal=goal["id"], since=-1)
            assert "since" in message and "greater than or equal to 0" in message

            missing = await refused(mcp, "goal_status", goal="")
            assert "goal" in missing and "at least 1 character" in missing


async def test_no_daemon_is_said_on_stderr_and_as_a_tool_error(tmp_path: Path) -> None:
    nowhere = "http://127.0.0.1:9"  # discard: nothing listens there
    errlog = tmp_path / "mcp-stderr.txt"
    async with over_stdio(nowhere, "blitz_some-token", errlog) as mcp:
        message = await refused(mcp, "list_projects")
        assert f"no blitz daemon is running at {nowhere}" in message
        assert "blitz serve" in message
        message = await refused(mcp, "goal_status", goal="g-1")
        assert f"no blitz daemon is running at {nowhere}" in message
    said = errlog.read_text()
    assert f"no blitz daemon is running at {nowhere}" in said and "Traceback" not in said

    async with over_stdio(nowhere, "", errlog) as mcp:
        message = await refused(mcp, "list_goals")
        assert "no token for the blitz daemon" in message and "BLITZ_SERVER_TOKEN" in message
    assert "no token for the blitz daemon" in errlog.read_text()


async def test_a_wrong_token_is_refused(tmp_path: Path) -> None:
    with daemon(tmp_path / "home", scenario_file(tmp_path)) as served:
        errlog = tmp_path / "mcp-stderr.txt"
        async with over_stdio(served.url, "blitz_not-the-token", errlog) as mcp:
            message = await refused(mcp, "list_projects")
            assert "refused the token" in message and "BLITZ_SERVER_TOKEN" in message
            assert "blitz_not-the-token" not in message
        assert "refused the token" in errlog.read_text()


async def test_a_failed_task_is_retried_and_another_skipped(tmp_path: Path) -> None:
    scenario = {
        "agent": {
            "flaky": [
                [{"fail": "cannot find the greeting"}],
                [{"write": {"path": "f.txt", "content": "f\n"}}],
            ],
            "lonely": [[{"fail": "no"}]],
        }
    }
    make_repo(tmp_path, toml="\n[limits]\nmax_recoveries_per_task = 0\n")
    after = {"title": "After", "allow_empty": True}
    with daemon(tmp_path / "home", scenario_file(tmp_path, scenario)) as served:
        async with over_stdio(served.url, served.token, tmp_path / "err.txt") as mcp:
            await call(mcp, "add_project", path=str(tmp_path / "repo"))
            plan = {
                "tasks": [
                    {"id": "flaky", "title": "F"},
                    {"id": "a", **after, "depends_on": ["flaky"]},
                ]
            }
            goal = await call(
                mcp, "submit_goal", project="repo", title="One", plan=json.dumps(plan)
            )
            failed = await wait_ended(mcp, goal["id"])
            assert failed["state"] == "failed", failed
            assert {t["id"]: t["state"] for t in failed["tasks"]} == {
                "flaky": "failed",
                "a": "skipped",
            }
            assert "retry_task on flaky" in failed["next"]
            assert "cannot find the greeting" in failed["tasks"][0]["reason"]

            retried = await call(mcp, "retry_task", goal=goal["id"], task="flaky")
            assert retried == {"goal_id": goal["id"], "action": "retry", "applied": "engine"}
            # The retry reopened the goal: it ends again, with the task done.
            await wait_state(mcp, goal["id"], "succeeded")
            final = await call(mcp, "goal_status", goal=goal["id"])
            assert {t["id"]: t["state"] for t in final["tasks"]} == {
                "flaky": "succeeded",
                "a": "succeeded",
            }

            # The plan as a plan file's text (YAML).
            plan_text = (
                "tasks:\n  - {id: lonely, title: L}\n"
                "  - {id: b, title: After, allow_empty: true, depends_on: [lonely]}\n"
            )
            other = await call(mcp, "submit_goal", project="repo", title="Two", plan=plan_text)
            assert (await wait_ended(mcp, other["id"]))["state"] == "failed"
            skipped = await call(mcp, "skip_task", goal=other["id"], task="lonely")
            assert skipped["action"] == "skip"
            await wait_state(mcp, other["id"], "succeeded")
            final = await call(mcp, "goal_status", goal=other["id"])
            assert {t["id"]: t["state"] for t in final["tasks"]} == {
                "lonely": "skipped",
                "b": "succeeded",
            }
