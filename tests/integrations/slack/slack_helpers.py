"""Shared pieces of the Slack tests: a daemon with Slack in this test's loop (uvicorn on
127.0.0.1), signed deliveries to it, and readers of what the fake Slack was sent."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from engine_helpers import git, make_repo, task, write

from blitz.server.daemon import Daemon
from blitz.testing import fake_slack
from blitz.testing.fake_slack import FakeSlack

SECRET = "slack-signing-secret-0123456789abcdef"
CHANNEL, OTHER_CHANNEL = "C0BLITZ01", "C0ELSE002"
ALICE, MALLORY = "U0ALICE01", "U0MALLORY"
GH_TOKEN = "ghp_slackTestToken0123456789abcdefABCDEF"

GATE = {"test": "test -f README.md", "timeout": 60}
PLAN = {"summary": "Greet", "tasks": [task("hello"), task("world", "hello")]}
AGENT = {
    "hello": [[write("hello.txt", "hello\n")]],
    "world": [[{"append": {"path": "hello.txt", "content": "world\n"}}]],
}
SCENARIO: dict[str, Any] = {**PLAN, "agent": AGENT}


def repo(
    root: Path, *, approval: bool = False, github: str = "", recoveries: int | None = None
) -> Path:
    """A committed repository with a passing gate; ``github``: its origin is
    ``https://github.com/acme/<name>.git``, pushed to a bare repository beside it;
    ``recoveries``: recovery plans a failed task may get."""
    project = {"require_plan_approval": True} if approval else {}
    limits = {"max_recoveries_per_task": recoveries} if recoveries is not None else {}
    path = make_repo(root, gates=GATE, project=project, limits=limits)
    if github:
        bare = root / "origin.git"
        git(root, "init", "-q", "--bare", str(bare))
        git(path, "remote", "add", "origin", f"https://github.com/acme/{github}.git")
        git(path, "remote", "set-url", "--push", "origin", str(bare))
    return path


@dataclass
class Live:
    """A daemon serving HTTP on 127.0.0.1 with Slack, in the test's loop."""

    daemon: Daemon
    url: str
    http: httpx.AsyncClient  # the API, with the daemon's token
    task: asyncio.Task[int]
    slack: FakeSlack
    secret: str = SECRET
    stopped: bool = field(default=False)

    async def map(self, project: str, channel: str = CHANNEL) -> None:
        response = await self.http.put(f"/api/slack/channels/{channel}", json={"project": project})
        assert response.status_code == 200, response.text

    async def add_project(self, path: Path) -> str:
        response = await self.http.post("/api/projects", json={"path": str(path)})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def deliver(
        self,
        event: dict[str, Any],
        *,
        event_id: str = "",
        timestamp: float | None = None,
        secret: str = "",
        tamper: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Post ``event`` as Slack's Events API does, signed (with ``secret``, at ``timestamp``;
        ``tamper``: the body changed after signing)."""
        body = json.dumps(fake_slack.callback(event, event_id=event_id))
        signed = fake_slack.signed(secret or self.secret, body, timestamp=timestamp)
        if tamper:
            body = body.replace(event["text"], event["text"] + " and delete the repository")
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            return await client.post(
                "/slack/events", content=body, headers={**signed, **(headers or {})}
            )

    async def click(self, payload: dict[str, Any]) -> httpx.Response:
        """Post a button click as Slack's interactivity requests do (a signed form)."""
        body = urlencode({"payload": json.dumps(payload)})
        headers = fake_slack.signed(self.secret, body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            return await client.post("/slack/events", content=body, headers=headers)

    async def goals(self) -> list[dict[str, Any]]:
        response = await self.http.get("/api/goals")
        assert response.status_code == 200, response.text
        return list(response.json())

    async def goal(self, goal_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/goals/{goal_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.http.aclose()
        self.daemon.request_stop()
        assert await asyncio.wait_for(self.task, 60) == 0


def thread_texts(slack: FakeSlack, ts: str, channel: str = CHANNEL) -> list[str]:
    """The texts of the thread rooted at ``ts``, as they read now, oldest first."""
    return [m.get("text", "") for m in slack.replies(channel, ts)]


async def until(condition: Any, timeout: float = 60.0) -> Any:
    """Wait for ``condition()`` (or what it awaits) to be truthy and return it; fail after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


def ending(slack: FakeSlack, ts: str, word: str, channel: str = CHANNEL) -> Any:
    """A condition: a reply in the thread ``ts`` saying ``word`` (Done, Failed, Cancelled)."""
    return lambda: [t for t in thread_texts(slack, ts, channel) if word in t]
