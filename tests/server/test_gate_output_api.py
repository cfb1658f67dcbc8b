"""Gate output streamed while the gate runs: a real daemon over HTTP, a real gate (in the
sandbox when there is one) that prints a line and waits, and the stream showing that line while
the attempt still runs; a stream reconnected with ``Last-Event-ID`` goes on from there."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from server_helpers import AGENT, PLAN, Running, git, make_repo, messages

# Waits (only in a task's worktree, which has hello.txt) until the test removes the hold file,
# kept in the repository's .git, which the sandbox shows read-only at the same path.
GATE = (
    "if [ -e hello.txt ]; then echo 'checking the greeting'; "
    "while [ -e {hold} ]; do sleep 0.05; done; echo 'greeting checked'; fi"
)


async def running_attempt(r: Running, goal_id: str, task: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        goal = await r.json("GET", f"/api/goals/{goal_id}")
        found = [a for a in goal["attempts"] if a["task_id"] == task and a["state"] == "running"]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, goal
        await asyncio.sleep(0.05)


async def test_a_gates_output_is_streamed_while_it_runs(live: Any, tmp_path: Path) -> None:
    r: Running = await live(AGENT)
    repo = make_repo(tmp_path)
    hold = repo / ".git" / "hold-gate"
    hold.write_text("")
    toml = (repo / "blitz.toml").read_text().split("[gates]")[0]
    (repo / "blitz.toml").write_text(
        toml + f"[gates]\ntest = {json.dumps(GATE.format(hold=hold))}\n"
    )
    git(repo, "commit", "-qam", "A gate that waits")
    project = await r.add_project(repo)
    goal = await r.submit(project["id"], plan=PLAN)
    attempt = await running_attempt(r, goal["id"], "hello")

    route = f"/api/goals/{goal['id']}/attempts/{attempt['id']}/gates/live"
    async with r.http.stream("GET", route) as response:
        assert response.status_code == 200
        text = ""
        stream = messages(response)  # one reader: the body can be read once
        first = await anext(stream)
        assert first.event == "gate.reset"  # a first connection starts from what is kept
        async for message in stream:
            assert message.event == "gate.output"
            assert message.data["gate"] == "test" and not message.data["ended"]
            text += message.data["text"]
            if "checking the greeting" in text:
                break
        assert text == "checking the greeting\n"
        last_id = message.raw_id
        now = await r.json("GET", f"/api/goals/{goal['id']}")
        [same] = [a for a in now["attempts"] if a["id"] == attempt["id"]]
        assert same["state"] == "running"  # seen while the gate waits

    # The connection dropped; reconnected with the last id, the stream goes on from there.
    resumed = {"Last-Event-ID": last_id}
    async with r.http.stream("GET", route, headers=resumed) as response:
        stream = messages(response)
        hold.unlink()
        async for message in stream:
            assert message.event == "gate.output", message  # no reset: nothing sent again
            text += message.data["text"]
            if message.data["ended"]:
                break
        assert text == "checking the greeting\ngreeting checked\n"

    # An id this daemon did not give (another process's, before a restart): from the start.
    foreign = {"Last-Event-ID": "0000/5"}
    async with r.http.stream("GET", route, headers=foreign) as response:
        stream = messages(response)
        assert (await anext(stream)).event == "gate.reset"
        again = ""
        async for message in stream:
            again += message.data["text"]
            if message.data["ended"]:
                break
        assert again == text

    done = await r.wait_goal(goal["id"])
    assert done["state"] == "succeeded", done
    detail = await r.json("GET", route.replace("/gates/live", ""))
    [gate] = detail["gates"]
    assert gate["output"] == "checking the greeting\ngreeting checked\n"


async def test_the_stream_of_an_unknown_attempt_is_a_404(live: Any, tmp_path: Path) -> None:
    r: Running = await live(AGENT)
    project = await r.add_project(make_repo(tmp_path))
    goal = await r.submit(project["id"], plan=PLAN)
    missing = await r.http.get(f"/api/goals/{goal['id']}/attempts/a-nope/gates/live")
    assert missing.status_code == 404, missing.text
    await r.wait_goal(goal["id"])
