"""What a person can say to the voice session, through a live daemon and a real WebSocket:
typed commands done through the actions, what undoes work read back as a question and done only
on a yes, a question that expires. The speech services are down here (typed text needs none):
the answers come as text."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Start
from server_helpers import AGENT, PLAN, free_port, make_repo
from voice_helpers import (
    Voice,
    ws_url,
)

from blitz.testing.clock import ManualClock
from blitz.voice.replies import CONFIRM_S

pytestmark = pytest.mark.timeout(600)

SCENARIO = {**PLAN, **AGENT}


async def test_typed_commands_go_through_the_actions(live: Start, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"  # no speech at all: the text answers still come
    running = await live(SCENARIO, stt_url=down, tts_url=down)
    repo = make_repo(tmp_path, "calc", toml="require_plan_approval = true\n")
    await running.add_project(repo)
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)

    async def said(text: str) -> str:
        return str((await voice.reply_to(text)).say["text"])

    assert await said("start a goal on the calc project: add a multiply function") == (
        "Start a goal on calc: Add a multiply function?"
    )
    assert await said("yes") == "Started: Add a multiply function, on calc."
    [goal] = await running.json("GET", "/api/goals")
    await running.wait_goal(goal["id"], ("awaiting_approval",))
    event = await voice.until("event") if not voice.spoken_up else voice.spoken_up[0]
    assert event["kind"] == "plan.awaiting_approval" and "Say approve or reject" in event["text"]
    assert (
        await said("approve the plan") == "Approved the plan of the goal Add a multiply function."
    )
    assert (await running.wait_goal(goal["id"]))["state"] == "succeeded"
    assert await said("how is it going?") == (
        "Add a multiply function, on calc: finished, 3 of 3 tasks done."
    )
    refused = (await voice.reply_to("retry task hello")).say["text"]  # it did not fail
    assert refused in [m["message"] for m in voice.seen if m["type"] == "error"], refused
    assert await said("pause the calc project") == "Paused calc."
    assert (await running.json("GET", "/api/projects"))[0]["paused"] is True
    assert await said("resume calc") == "Resumed calc."
    assert await said("start a goal on calc: add a divide function") == (
        "Start a goal on calc: Add a divide function?"
    )
    assert await said("yes") == "Started: Add a divide function, on calc."
    divide = next(g for g in await running.json("GET", "/api/goals") if g["id"] != goal["id"])
    await running.wait_goal(divide["id"], ("awaiting_approval",))
    # Undoing work is read back, naming the goal, and done only on a yes.
    named = f"goal {divide['id']}, Add a divide function"
    assert await said("reject the plan") == f"Reject the plan of {named}?"
    assert await said("no") == "Not rejected."
    assert await said("cancel the goal") == f"Cancel {named}?"
    assert await said("no") == "Not cancelled."
    assert await said("cancel the goal") == f"Cancel {named}?"
    assert await said("how is it going?")  # anything but a yes drops the question
    assert (await voice.reply_to("yes")).say["text"] == "There is nothing to confirm."
    assert (await running.wait_goal(divide["id"], ("awaiting_approval",)))["state"] == (
        "awaiting_approval"
    )
    assert await said("cancel the goal") == f"Cancel {named}?"
    assert await said("yes") == "Cancelling the goal Add a divide function."
    assert (await running.wait_goal(divide["id"]))["state"] == "cancelled"
    assert await said("start a goal on the weather project: add rain") == (
        "Which project? There are: calc."
    )
    await voice.close()


async def test_skipping_a_failed_task_is_read_back_and_done_only_on_a_yes(
    live: Start, tmp_path: Path
) -> None:
    agent = {"agent": {**AGENT["agent"], "hello": [[{"fail": "cannot find the greeting"}]]}}
    down = f"http://127.0.0.1:{free_port()}/v1"  # typed: no speech needed
    running = await live({**PLAN, **agent}, stt_url=down, tts_url=down)
    repo = make_repo(tmp_path, "calc", toml="\n[limits]\nmax_recoveries_per_task = 0\n")
    project = await running.add_project(repo)
    goal = await running.submit(project["id"], "Greet the world", plan=PLAN)
    assert (await running.wait_goal(goal["id"]))["state"] == "failed"
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)

    async def said(text: str) -> str:
        return str((await voice.reply_to(text)).say["text"])

    question = f"Skip task hello of goal {goal['id']}, Greet the world?"
    assert await said("skip task hello") == question
    assert await said("no") == "Not skipped."
    tasks = (await running.json("GET", f"/api/goals/{goal['id']}"))["tasks"]
    assert {t["id"]: t["state"] for t in tasks}["hello"] == "failed"
    assert await said("skip task hello") == question
    assert await said("yes") == "Skipping task hello."
    final = await running.wait_goal(goal["id"], ("succeeded", "failed"))
    assert {t["id"]: t["state"] for t in final["tasks"]}["hello"] == "skipped"
    await voice.close()


async def test_a_question_expires_and_a_late_yes_does_nothing(live: Start, tmp_path: Path) -> None:
    clock = ManualClock()
    down = f"http://127.0.0.1:{free_port()}/v1"
    running = await live(SCENARIO, clock=clock, stt_url=down, tts_url=down)
    await running.add_project(make_repo(tmp_path, "calc"))
    voice = await Voice.open(ws_url(str(running.http.base_url)), running.token)

    async def said(text: str) -> str:
        return str((await voice.reply_to(text)).say["text"])

    command = "start a goal on the calc project: add a multiply function"
    assert await said(command) == "Start a goal on calc: Add a multiply function?"
    clock.advance(CONFIRM_S + 1)
    late = await voice.reply_to("yes")
    assert late.say["text"] == "That question expired, so nothing was done. Ask again."
    assert late.say["text"] in [m["message"] for m in voice.seen if m["type"] == "error"]
    assert await said("yes") == "There is nothing to confirm."
    assert not await running.json("GET", "/api/goals")
    # Within its lifetime the question still holds (a no to it is a no, not "All right").
    assert await said(command) == "Start a goal on calc: Add a multiply function?"
    clock.advance(CONFIRM_S - 1)
    assert await said("no") == "Not started."
    assert not await running.json("GET", "/api/goals")
    await voice.close()
