"""Shared pieces of the daemon's tests: repositories, plans, and readers of the API."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from blitz_process import (  # noqa: F401 - shared with the CLI tests, re-exported
    BLITZ,
    TEST_GATE,
    add_test_gate,
    blitz,
    blitz_env,
    git,
    start,
    write_yaml,
)

from blitz.server.daemon import Daemon
from blitz.server.problems import MEDIA_TYPE

PLAN: dict[str, Any] = {
    "summary": "Greet the world",
    "tasks": [
        {"id": "hello", "title": "Write hello"},
        {"id": "world", "title": "Append world", "depends_on": ["hello"]},
        {"id": "review", "title": "Review", "depends_on": ["world"], "allow_empty": True},
    ],
}

AGENT: dict[str, Any] = {
    "agent": {
        "hello": [[{"write": {"path": "hello.txt", "content": "hello\n"}}]],
        "world": [[{"append": {"path": "hello.txt", "content": "world\n"}}]],
    }
}

DONE = ("succeeded", "failed", "cancelled")


def make_repo(root: Path, name: str = "repo", *, toml: str | None = "") -> Path:
    """A committed repository with a passing unittest gate; ``toml`` is added to its
    blitz.toml (None: no blitz.toml at all)."""
    repo = root / name
    add_test_gate(repo, '[project]\nbase_branch = "main"\nbackend = "scripted"\n' + (toml or ""))
    (repo / "README.md").write_text(f"# {name}\n")
    if toml is None:
        (repo / "blitz.toml").unlink()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial commit")
    return repo


def hold_first(agent: Mapping[str, Any], task: str, hold: Path) -> dict[str, Any]:
    """``agent`` with ``task`` waiting for ``hold`` to disappear before it does its work."""
    copy: dict[str, Any] = json.loads(json.dumps(dict(agent)))
    wait = {"run": f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done"}
    copy["agent"].setdefault(task, [[]])[0].insert(0, wait)
    return copy


def committed_tasks(repo: Path, branch: str) -> list[str]:
    """The Blitz-Task trailers on ``branch``, oldest first (one per integrated task)."""
    log = git(repo, "log", "--reverse", "--format=%(trailers:key=Blitz-Task,valueonly)", branch)
    return [line.strip() for line in log.splitlines() if line.strip()]


@dataclass
class Running:
    """An in-process daemon (its engine on the test's loop) and a client of its API."""

    daemon: Daemon
    token: str
    http: httpx.AsyncClient
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.daemon.app.settings.home

    async def json(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        assert response.status_code == expect, (response.status_code, response.text)
        return response.json() if response.content else None

    async def add_project(self, repo: Path) -> dict[str, Any]:
        return dict(await self.json("POST", "/api/projects", 201, json={"path": str(repo)}))

    async def submit(self, project: str, title: str = "Greet", **body: Any) -> dict[str, Any]:
        body = {"project": project, "title": title, **body}
        return dict(await self.json("POST", "/api/goals", 201, json=body))

    async def wait_goal(
        self, goal_id: str, states: tuple[str, ...] = DONE, timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            goal = await self.json("GET", f"/api/goals/{goal_id}")
            if goal["state"] in states:
                return dict(goal)
            assert time.monotonic() < deadline, f"goal {goal_id} still {goal['state']}"
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Message:
    id: int  # a goal event's id (0: the message's id is not a number)
    event: str
    data: dict[str, Any]
    raw_id: str = ""  # the id as sent (the gate output stream's are cursors)


async def read_stream(
    response: httpx.Response, *, until: str = "", count: int = 0, comments: list[str] | None = None
) -> list[Message]:
    """SSE messages from ``response`` until one of kind ``until`` (or ``count`` of them)."""
    got: list[Message] = []
    async for message in messages(response, comments=comments):
        got.append(message)
        if (until and message.event == until) or (count and len(got) >= count):
            break
    return got


async def messages(
    response: httpx.Response, *, comments: list[str] | None = None
) -> AsyncIterator[Message]:
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if fields:
                data = json.loads(fields["data"])
                raw = fields["id"]
                number = int(raw) if raw.isdigit() else 0
                yield Message(id=number, event=fields["event"], data=data, raw_id=raw)
                fields = {}
            continue
        if line.startswith(":"):
            if comments is not None:
                comments.append(line)
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")


# -- blitz as a process ----------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A `blitz serve` process and what it printed when it came up."""

    proc: subprocess.Popen[str]
    url: str
    lines: list[str]

    @property
    def token(self) -> str | None:
        """The token, if this start made one (it is printed only then)."""
        line = self.lines[1]
        return None if "kept hashed" in line else line.split()[1]

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def stop(self, sig: int, timeout: float = 60) -> tuple[int, str, str]:
        """Send ``sig``; the exit code and the rest of the output."""
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        """Kill it if it runs; close its pipes either way (a pipe left to the garbage collector
        is a ResourceWarning, an error, in whichever test comes next)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


def serve(
    home: Path, *args: str | Path, port: int = 0, host: str | None = "127.0.0.1", **env: str
) -> Served:
    """Start `blitz serve` on 127.0.0.1 (``host`` None: with no --host) with ``env`` added to
    its environment, and wait until it listens."""
    where = ("--host", host) if host is not None else ()
    proc = start(home, "serve", *where, "--port", str(port), *args, **env)
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < 2:
        line = proc.stdout.readline()
        if not line:
            out, err = proc.communicate(timeout=10)
            raise AssertionError(f"blitz serve exited {proc.returncode}: {lines} {out} {err}")
        lines.append(line.rstrip("\n"))
    assert lines[0].startswith("blitz daemon listening on http://127.0.0.1:"), lines
    assert lines[1].startswith("token: "), lines
    return Served(proc=proc, url=lines[0].split()[4], lines=lines)


def wait_state(
    url: str, token: str, goal_id: str, states: tuple[str, ...] = DONE, limit: float = 60
) -> dict[str, Any]:
    """Poll the daemon until the goal is in one of ``states``."""
    deadline = time.monotonic() + limit
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        goal = httpx.get(f"{url}/api/goals/{goal_id}", headers=headers, timeout=30).json()
        if goal["state"] in states:
            return dict(goal)
        assert time.monotonic() < deadline, f"goal {goal_id} still {goal['state']}"
        time.sleep(0.1)


def wait_task(url: str, token: str, goal_id: str, task: str, state: str) -> None:
    deadline = time.monotonic() + 60
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        goal = httpx.get(f"{url}/api/goals/{goal_id}", headers=headers, timeout=30).json()
        if any(t["id"] == task and t["state"] == state for t in goal["tasks"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"task {task} never {state}")


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document (RFC 9457) a refused request answers with, checked."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == MEDIA_TYPE
    body = response.json()
    assert body["status"] == status and body["title"] and "type" in body
    assert "Traceback" not in response.text
    return dict(body)
