"""Shared pieces of the MCP tests: a real ``blitz serve`` process on a scripted scenario, a
committed repository, and MCP client sessions over stdio (a real ``blitz mcp`` process) and
over streamable HTTP (the daemon's ``/mcp``)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
from blitz_process import BLITZ, add_test_gate, git, start, write_yaml
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

SCENARIO: dict[str, Any] = {
    "summary": "Greet the world",
    "tasks": [
        {"id": "hello", "title": "Write hello"},
        {"id": "world", "title": "Append world", "depends_on": ["hello"]},
        {"id": "review", "title": "Review", "depends_on": ["world"], "allow_empty": True},
    ],
    "agent": {
        "hello": [[{"write": {"path": "hello.txt", "content": "hello\n"}}]],
        "world": [[{"append": {"path": "hello.txt", "content": "world\n"}}]],
    },
}
"""The scripted planner's plan and the scripted agent's work: three tasks, two commits."""

TOOLS = {
    "submit_goal", "list_goals", "goal_status", "goal_events", "approve_plan", "reject_plan",
    "cancel_goal", "retry_task", "skip_task", "list_projects", "add_project",
}  # fmt: skip

ENDED = ("succeeded", "failed", "cancelled")


def make_repo(root: Path, name: str = "repo", *, toml: str = "") -> Path:
    """A committed repository with a passing unittest gate, run by the scripted backend."""
    repo = root / name
    add_test_gate(repo, '[project]\nbase_branch = "main"\nbackend = "scripted"\n' + toml)
    (repo / "README.md").write_text(f"# {name}\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial commit")
    return repo


@dataclass
class Served:
    """A ``blitz serve`` process: its URL and the token it printed."""

    proc: subprocess.Popen[str]
    url: str
    token: str


@contextlib.contextmanager
def daemon(home: Path, scenario: Path) -> Iterator[Served]:
    """``blitz serve`` on a free port of 127.0.0.1, stopped (SIGTERM) at the end."""
    proc = start(
        home, "serve", "--host", "127.0.0.1", "--port", "0", "--grace", "5",
        "--scenario", scenario,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[0].startswith("blitz daemon listening on http://127.0.0.1:"), lines
        assert lines[1].startswith("token: blitz_"), lines
        yield Served(proc=proc, url=lines[0].split()[4], token=lines[1].split()[1])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


def scenario_file(tmp_path: Path, scenario: dict[str, Any] = SCENARIO) -> Path:
    return write_yaml(tmp_path / "scenario.yaml", scenario)


@contextlib.asynccontextmanager
async def over_stdio(
    url: str, token: str, errlog: Path, *args: str
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with a ``blitz mcp`` process (its stderr in ``errlog``)."""
    env = {"BLITZ_SERVER_TOKEN": token} if token else {}
    params = StdioServerParameters(command=BLITZ, args=["mcp", "--server", url, *args], env=env)
    with errlog.open("w") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


@contextlib.asynccontextmanager
async def over_http(url: str, token: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with the daemon's ``/mcp``, the token as a bearer token."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0)) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """The structured answer of a tool call that must succeed."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, text(result)
    assert isinstance(result.structured_content, dict), result
    # The text content carries the same data, for clients that read only text.
    assert json.loads(text(result)) == result.structured_content
    return result.structured_content


async def refused(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The message of a tool call that must come back as a tool error."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result
    return text(result)


async def wait_ended(session: ClientSession, goal: str, limit: float = 90) -> dict[str, Any]:
    """``goal_status`` until the goal ended."""
    deadline = time.monotonic() + limit
    while True:
        status = await call(session, "goal_status", goal=goal)
        if status["state"] in ENDED:
            return status
        assert time.monotonic() < deadline, f"goal {goal} still {status['state']}"
        await anyio.sleep(0.2)


async def wait_state(session: ClientSession, goal: str, state: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while (await call(session, "goal_status", goal=goal))["state"] != state:
        assert time.monotonic() < deadline, f"goal {goal} never {state}"
        await anyio.sleep(0.1)
