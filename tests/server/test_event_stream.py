"""The event stream over real HTTP: uvicorn on 127.0.0.1 serving a daemon whose engine runs real
goals. Whatever the client does (disconnect mid-goal, reconnect with an old, stale or future
id), it sees every event of the store exactly once, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import (
    AGENT,
    PLAN,
    Message,
    Running,
    blitz,
    hold_first,
    make_repo,
    messages,
)

from blitz.events import Event

pytestmark = pytest.mark.timeout(120)


def stored(r: Running, goal_id: str | None = None, after: int = 0) -> list[Event]:
    return r.daemon.store.events(goal_id=goal_id, after=after, limit=100_000)


async def read(
    r: Running,
    *,
    until: Callable[[Message], bool],
    goal: str | None = None,
    last_id: int | None = None,
    params: dict[str, str] | None = None,
    limit: int = 10_000,
) -> list[Message]:
    """Connect, read messages until ``until`` says stop (or ``limit`` were read), disconnect."""
    query = dict(params or {})
    if goal:
        query["goal"] = goal
    headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
    got: list[Message] = []

    async def go() -> None:
        async with r.http.stream("GET", "/api/events", params=query, headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            async for message in messages(response):
                got.append(message)
                if until(message) or len(got) >= limit:
                    return

    await asyncio.wait_for(go(), 60)
    return got


def ended(message: Message) -> bool:
    return message.event in ("goal.succeeded", "goal.failed", "goal.cancelled")


def same(got: list[Message], events: list[Event]) -> None:
    """``got`` is exactly ``events``: same ids in the same order, same kinds and contents."""
    assert [m.id for m in got] == [e.id for e in events]
    for m, e in zip(got, events, strict=True):
        assert m.event == e.kind.value == m.data["kind"]
        assert m.data["id"] == e.id and m.data["message"] == e.message
        assert m.data["goal_id"] == e.goal_id and m.data["task_id"] == e.task_id


async def test_reconnecting_mid_goal_misses_and_repeats_nothing(
    hold_file: Path, live: Any, tmp_path: Path
) -> None:
    hold = hold_file
    hold.touch()
    r: Running = await live(hold_first(AGENT, "world", hold))
    project = await r.add_project(make_repo(tmp_path))
    goal = await r.submit(project["id"], plan=PLAN)
    gid = goal["id"]

    first = await read(
        r, goal=gid, until=lambda m: m.event == "task.started" and m.data["task_id"] == "world"
    )
    assert first[0].event == "goal.created"
    # Disconnected: the goal goes on, and its events are written while nobody listens.
    hold.unlink()
    await r.wait_goal(gid)
    rest = await read(r, goal=gid, last_id=first[-1].id, until=ended)
    assert rest[0].id > first[-1].id
    same(first + rest, stored(r, gid))

    # The query parameter resumes too; the header wins over it.
    middle = first[len(first) // 2].id
    by_query = await read(r, goal=gid, params={"last_event_id": str(middle)}, until=ended)
    same(by_query, stored(r, gid, after=middle))
    header_wins = await read(
        r, goal=gid, last_id=first[-1].id, params={"last_event_id": "0"}, until=ended
    )
    assert header_wins == rest


async def test_many_reconnects_while_a_goal_runs(live: Any, tmp_path: Path) -> None:
    plan = {"tasks": [{"id": f"t{i}", "title": f"Write {i}"} for i in range(8)]}
    agent = {
        "agent": {
            f"t{i}": [[{"sleep": 0.05}, {"write": {"path": f"f{i}.txt", "content": f"{i}\n"}}]]
            for i in range(8)
        }
    }
    r: Running = await live(agent)
    project = await r.add_project(make_repo(tmp_path))
    before = stored(r)
    last = before[-1].id if before else 0
    goal = await r.submit(project["id"], plan=plan)
    got: list[Message] = []
    connections = 0
    while not got or not ended(got[-1]):
        # A new connection after every few events, without any goal filter.
        got += await read(r, last_id=last, until=ended, limit=3)
        last = got[-1].id
        connections += 1
    assert connections > 5
    assert got[-1].data["goal_id"] == goal["id"]
    same(got, [e for e in stored(r, after=before[-1].id if before else 0) if e.id <= last])


async def test_stale_and_future_ids(live: Any, tmp_path: Path) -> None:
    r: Running = await live(AGENT)
    gone = await r.add_project(make_repo(tmp_path, "gone"))
    old = await r.submit(gone["id"], plan=PLAN)
    await r.wait_goal(old["id"])
    kept = await r.add_project(make_repo(tmp_path, "kept"))
    goal = await r.submit(kept["id"], plan=PLAN)
    await r.wait_goal(goal["id"])
    assert (await r.http.delete(f"/api/projects/{gone['id']}")).status_code == 204
    everything = stored(r)
    # The log is append-only: the removed project's events stay and ids are never reused.
    assert any(e.project_id == gone["id"] for e in everything)

    # An old id (a client that was away for long): everything after it is replayed.
    stale = await read(r, last_id=everything[0].id, until=lambda m: m.id == everything[-1].id)
    same(stale, everything[1:])

    # An id from the future: nothing is replayed; the stream starts with the next event.
    newest = everything[-1].id
    reader = asyncio.ensure_future(read(r, last_id=newest + 1000, until=ended))
    await asyncio.sleep(0.5)  # connected and waiting
    assert not reader.done()
    another = await r.submit(kept["id"], "Again", plan=PLAN)
    future = await reader
    assert future[0].data["goal_id"] == another["id"] and future[0].event == "goal.created"
    same(future, stored(r, after=newest))

    bad = await r.http.get("/api/events", headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422 and "Last-Event-ID" in bad.json()["detail"]


async def test_the_wire_format_pings_and_query_token(live: Any, tmp_path: Path) -> None:
    r: Running = await live(AGENT)
    project = await r.add_project(make_repo(tmp_path))
    goal = await r.submit(project["id"], plan=PLAN)
    await r.wait_goal(goal["id"])
    first = stored(r, goal["id"])[0]
    lines: list[str] = []
    anonymous = httpx.AsyncClient(base_url=str(r.http.base_url), timeout=30)

    async def raw() -> None:
        params = {"goal": goal["id"], "token": r.token}
        async with anonymous.stream("GET", "/api/events", params=params) as response:
            assert response.status_code == 200
            assert response.headers["cache-control"] == "no-cache"
            async for line in response.aiter_lines():
                lines.append(line)
                if line == ": ping":
                    return

    async with anonymous:
        await asyncio.wait_for(raw(), 30)
        assert lines[:3] == [
            f"id: {first.id}",
            f"event: {first.kind.value}",
            lines[2],
        ]
        assert lines[2].startswith('data: {"id":') and lines[3] == ""
        refused = await anonymous.get("/api/events", params={"token": "blitz_wrong"})
        assert refused.status_code == 401
        assert (await anonymous.get("/api/events")).status_code == 401
        login = await anonymous.post("/api/login", json={"token": r.token})
        assert login.status_code == 204
        by_cookie = await asyncio.wait_for(_first_event(anonymous, goal["id"]), 30)
        assert by_cookie == first.id


async def _first_event(client: httpx.AsyncClient, goal_id: str) -> int:
    async with client.stream("GET", "/api/events", params={"goal": goal_id}) as response:
        assert response.status_code == 200
        async for message in messages(response):
            return message.id
    raise AssertionError("no event")


async def test_shutdown_ends_open_streams(live: Any, tmp_path: Path) -> None:
    r: Running = await live(AGENT)
    reader = asyncio.ensure_future(read(r, until=lambda m: False))
    await asyncio.sleep(0.5)
    assert not reader.done()
    r.daemon.request_stop()
    await asyncio.wait_for(reader, 20)  # the stream ended instead of hanging the shutdown
    assert await asyncio.wait_for(r.tasks[0], 30) == 0
    r.tasks.clear()
    with pytest.raises(httpx.TransportError):
        await r.http.get("/api/health")


async def test_events_written_by_another_process_are_streamed(live: Any, tmp_path: Path) -> None:
    r: Running = await live(AGENT)
    project = await r.add_project(make_repo(tmp_path))
    newest = stored(r)[-1].id
    reader = asyncio.ensure_future(
        read(r, last_id=newest, until=lambda m: m.event == "project.paused")
    )
    await asyncio.sleep(0.3)
    done = await asyncio.to_thread(
        blitz, r.home, "projects", "pause", project["name"], "--reason", "from the CLI"
    )
    assert done.returncode == 0, done.stderr
    got = await asyncio.wait_for(reader, 60)
    assert [m.event for m in got] == ["project.paused"]
    assert got[0].data["message"] == "from the CLI" and got[0].id > newest
