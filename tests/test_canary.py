"""A canary secret in every text field of every record type reaches none of what blitz writes or
shows: the database file (and its WAL), the pull request description, ``blitz status`` and
``blitz events``, and every route of the API, the event stream included.

The records are generated from the dataclasses (:func:`poisoned`): a field added later carries
the canary without a change here, and so does a record type added to the store. The canary is a
registered secret, one with a non-ASCII letter (JSON escapes it), and a key of a known shape that
nobody registered. The command line and the API are checked twice: over what the store wrote,
and over a database whose text columns were given the canary behind the store's back (as one
written before the store redacted everything would hold it), which their own redaction must hide.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import typing
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_helpers import make_app
from fastapi.routing import APIRoute, APIWebSocketRoute
from typer.testing import CliRunner

from blitz.cli import app as cli
from blitz.conductor import GoalReport
from blitz.domain import (
    Attempt,
    AttemptState,
    BreakerRecord,
    Command,
    Goal,
    GoalState,
    Project,
    Recovery,
    Task,
    TaskState,
)
from blitz.events import Event, EventKind
from blitz.publish import Publisher
from blitz.redact import register_secret
from blitz.server.auth import TokenStore
from blitz.server.daemon import Daemon, listen, url_of
from blitz.store.rows import COMMANDS, EVENTS, RECORDS
from blitz.store.sql import SqlStore

pytestmark = pytest.mark.timeout(180)

CANARY = "canary-7f3c9a1e5d2b"  # registered
CANARY_UTF8 = "kan\u00e4rien-geheimnis-42"  # registered; JSON writes it as kan\u00e4rien
KEY = "sk-ant-api03-canary" + "Q" * 32  # a key's shape, never registered

LEAKS = (CANARY, CANARY_UTF8, json.dumps(CANARY_UTF8)[1:-1], "Q" * 12)
"""What must not appear: the registered values (raw and JSON-escaped) and the key's body."""

LINKS = frozenset({"id", "goal_id", "project_id", "task_id", "attempt_id", "depends_on"})
"""Fields that connect records: kept real where the records must stay one goal's."""


def text(where: str) -> str:
    return f"{where} {CANARY} {CANARY_UTF8} {KEY}"


def value_of(tp: Any, where: str) -> Any:
    """A value of type ``tp`` with the canary in every string it holds."""
    if tp is str:
        return text(where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        return (value_of(args[0], f"{where}[0]"), value_of(args[0], f"{where}[1]"))
    if origin is Mapping:
        return {"text": text(where), "nested": {"list": [text(where), 1]}, text(where): 2}
    if dataclasses.is_dataclass(tp):
        return poisoned(tp)  # type: ignore[arg-type]
    raise TypeError(f"{where}: no canary for {tp!r}")


def has_text(tp: Any) -> bool:
    """Whether a value of type ``tp`` can hold a string."""
    if tp is str or typing.get_origin(tp) is Mapping:
        return True
    if typing.get_origin(tp) is tuple:
        return has_text(typing.get_args(tp)[0])
    if dataclasses.is_dataclass(tp):
        return any(has_text(t) for t in typing.get_type_hints(tp).values())
    return False


def poisoned(cls: type, *, keep: frozenset[str] = frozenset(), **given: Any) -> Any:
    """A ``cls`` record with the canary in every text field (nested records, tuples and JSON
    data included) but those ``given`` or, if they have a default, in ``keep``."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        has_default = f.default is not dataclasses.MISSING or (
            f.default_factory is not dataclasses.MISSING
        )
        if f.name in given:
            values[f.name] = given[f.name]
        elif f.name in keep and has_default:
            continue
        elif has_text(tp):
            values[f.name] = value_of(tp, f"{cls.__name__}.{f.name}")
        elif not has_default:  # a number, a flag or a state the record cannot do without
            values[f.name] = next(iter(tp)) if isinstance(tp, type) and issubclass(tp, Enum) else 1
    return cls(**values)


def assert_clean(where: str, output: str | bytes) -> None:
    if isinstance(output, bytes):
        found = [leak for leak in LEAKS if leak.encode() in output]
    else:
        found = [leak for leak in LEAKS if leak in output]
    assert not found, f"{where} shows {found}"


@pytest.fixture(autouse=True)
def _registered() -> None:
    register_secret(CANARY)
    register_secret(CANARY_UTF8)


def test_every_record_type_carries_the_canary_in_every_text_field() -> None:
    # The generator itself: what it makes is what the other tests rely on.
    for cls in (*RECORDS, Event, Command):
        record = poisoned(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if has_text(hints[f.name]):
                assert CANARY in repr(getattr(record, f.name)), f"{cls.__name__}.{f.name}"


def test_no_canary_reaches_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "blitz.db"
    store = SqlStore(f"sqlite:///{db}")
    try:
        store.write(*(poisoned(cls) for cls in RECORDS))  # ids and links poisoned too
        store.write(events=[poisoned(Event, kind=kind, id=0) for kind in list(EventKind)[:3]])
        flat = {text("a key"): text("a value"), "n": 1}  # flat data takes the store's short cut
        store.write(events=[poisoned(Event, kind=EventKind.GOAL_CREATED, id=0, data=flat)])
        store.add_command("g-1", "cancel")
        store.flush_sync()
        files = sorted(tmp_path.glob("blitz.db*"))
        assert db in files and len(files) > 1  # the WAL is there while the store is open
        for path in files:
            assert_clean(path.name, path.read_bytes())
        assert_clean("the events read back", repr(store.events(after=0, limit=100)))
        assert "[redacted]" in repr(store.list_projects())
    finally:
        store.close()
    for path in sorted(tmp_path.glob("blitz.db*")):
        assert_clean(f"{path.name} after closing", path.read_bytes())
    # Commands: the store adds them from an id and a kind (add_command); their row conversion
    # redacts like every other's.
    assert_clean("a command's row", repr(COMMANDS.to_row(poisoned(Command))))
    assert_clean("an event's row", repr(EVENTS.to_row(poisoned(Event, id=0))))


# -- one goal's records, as the CLI, the API and the pull request show them ----------------------


@dataclasses.dataclass
class Seeded:
    project: Project
    goal: Goal
    tasks: tuple[Task, ...]
    attempts: tuple[Attempt, ...]
    recoveries: tuple[Recovery, ...]


def seed(store: Any) -> Seeded:
    """One settled goal of two tasks, its attempts (a best-of-2), a recovery, a breaker, a
    baseline and events, every text field but their links carrying the canary."""
    keep = LINKS
    project = poisoned(Project, keep=keep, id="p-1")
    goal = poisoned(Goal, keep=keep, id="g-1", project_id="p-1", state=GoalState.SUCCEEDED)
    tasks = (
        poisoned(Task, keep=keep, id="t1", goal_id="g-1", state=TaskState.SUCCEEDED),
        poisoned(Task, keep=keep, id="t2", goal_id="g-1", state=TaskState.FAILED),
    )
    attempts = tuple(
        poisoned(
            Attempt,
            keep=keep,
            id=f"a-{n}",
            goal_id="g-1",
            task_id="t1",
            number=1,
            candidate=n,
            selected=n == 1,
            state=AttemptState.SUCCEEDED,
        )
        for n in (1, 2)
    )
    recoveries = (
        poisoned(Recovery, keep=keep, id="r-1", goal_id="g-1", task_id="t2", attempt_id="a-2"),
    )
    others = [poisoned(cls, keep=keep, goal_id="g-1") for cls in RECORDS if cls.__name__ in (
        "Baseline",)] + [poisoned(BreakerRecord)]  # fmt: skip
    covered = {type(r) for r in (project, goal, *tasks, *attempts, *recoveries, *others)}
    assert covered == set(RECORDS), "a record type the store keeps is not seeded here"
    events = [
        poisoned(Event, keep=keep, id=0, kind=kind, goal_id="g-1", task_id="t1", project_id="p-1")
        for kind in (EventKind.GOAL_CREATED, EventKind.TASK_FAILED, EventKind.GOAL_SUCCEEDED)
    ]
    store.write(project, goal, *tasks, *attempts, *recoveries, *others, events=events)
    return Seeded(project, goal, tasks, attempts, recoveries)


def poison_behind_the_store(db: Path) -> None:
    """Give every string in every text column but the links the canary, JSON columns (nested
    records, event data) included, as a database written before the store redacted everything
    would hold it."""

    def poison(value: Any) -> Any:
        if isinstance(value, str):
            return f"{value} {text('raw')}"
        if isinstance(value, list):
            return [poison(item) for item in value]
        if isinstance(value, dict):
            return {key: poison(item) for key, item in value.items()}
        return value

    connection = sqlite3.connect(db)
    try:
        for codec in (*RECORDS.values(), EVENTS):
            hints = typing.get_type_hints(codec.record)
            table = codec.table.name
            for column in codec.columns:
                tp = hints.get(column)  # None: a field of a record stored flat (numbers)
                if column in LINKS or tp is None or not has_text(tp):
                    continue
                rows = connection.execute(f'SELECT rowid, "{column}" FROM "{table}"').fetchall()
                for rowid, value in rows:
                    changed = poison(value) if tp is str else json.dumps(poison(json.loads(value)))
                    connection.execute(
                        f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?',
                        (changed, rowid),
                    )
        connection.commit()
    finally:
        connection.close()


def cli_outputs(home: Path) -> dict[str, str]:
    runner = CliRunner()
    env = {"BLITZ_HOME": str(home), "COLUMNS": "100"}
    shown = {}
    for args in (
        ["status"],
        ["status", "--json"],
        ["status", "g-1"],
        ["status", "g-1", "--json"],
        ["events"],
        ["events", "g-1", "--json"],
    ):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 0, (args, result.output, result.exception)
        shown[" ".join(["blitz", *args])] = result.output
    return shown


async def test_no_canary_in_the_pull_request_status_or_api(tmp_path: Path) -> None:
    home = tmp_path / "home"
    app = make_app(home, {})
    try:
        seeded = seed(app.store)
        await app.store.flush()
        # The pull request, from the records as the engine holds them (never redacted).
        (tmp_path / "repo").mkdir()
        publish = Publisher(workspace=app.workspace(tmp_path / "repo"), goals_dir=home / "goals")
        report = GoalReport(
            project=dataclasses.replace(seeded.project, remote=""),  # written, not pushed
            goal=seeded.goal,
            tasks=seeded.tasks,
            attempts=seeded.attempts,
            recoveries=seeded.recoveries,
            scripted=False,
        )
        published = await publish(report)
        description = Path(published.description_path).read_text(encoding="utf-8")
        assert "## Recoveries" in description and "Best of 2" in description
        assert_clean("the pull request description", description)
    finally:
        await app.aclose()

    for command, output in cli_outputs(home).items():
        assert "[redacted]" in output, command
        assert_clean(command, output)

    poison_behind_the_store(home / "blitz.db")
    for command, output in cli_outputs(home).items():
        assert_clean(f"{command} over raw rows", output)

    await check_every_route(home)


def endpoints(routes: list[Any], prefix: str = "") -> list[tuple[str, str]]:
    """(method, path) of every route, those of included routers too."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            context = getattr(route, "include_context", None)
            found += endpoints(included.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, APIWebSocketRoute):
            found.append(("WEBSOCKET", prefix + route.path))
        else:
            assert isinstance(route, APIRoute), route
            found += [(m, prefix + route.path) for m in sorted(route.methods - {"HEAD"})]
    return found


async def voice_said(url: str, token: str) -> str:
    """Everything the voice socket sends in text when asked how things are going (its speech
    service is not there: the answer comes as text, and the error with it)."""
    from websockets.asyncio.client import connect

    said: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(
        url.replace("http", "ws", 1) + "/api/voice", additional_headers=headers
    ) as ws:
        await ws.send(json.dumps({"type": "text", "text": "how is it going"}))
        while True:
            got = await asyncio.wait_for(ws.recv(), 60)
            if isinstance(got, str):
                said.append(got)
                if json.loads(got)["type"] == "said":
                    return "\n".join(said)


async def check_every_route(home: Path) -> None:
    """Every route of the real API (its own list, so a new route is checked too), the event
    stream replayed, and answers that echo a request, over a daemon on 127.0.0.1."""
    app = make_app(home, {})
    tokens = TokenStore.of_home(home)
    daemon = Daemon(app, tokens=tokens, grace=5, ping=0.2, poll=0.02)
    token = tokens.rotate()
    params = {
        "goal": "g-1",
        "task": "t1",
        "attempt": "a-1",
        "project": "p-1",
        "channel": "C0CANARY",
    }
    order = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 2, "DELETE": 3}  # the project's removal last
    found = endpoints(daemon.api.routes)
    sockets = [path for method, path in found if method == "WEBSOCKET"]
    assert sockets == ["/api/voice"]  # a new socket is checked below too
    calls = sorted(
        (order[method], method, path.format(**params))
        for method, path in found
        if method != "WEBSOCKET"
    )
    assert len(calls) >= 20
    sock = listen("127.0.0.1", 0)
    ready = asyncio.Event()
    serving = asyncio.get_running_loop().create_task(
        daemon.serve(sock, ready=lambda _: ready.set(), signals=False)
    )
    await asyncio.wait_for(ready.wait(), 30)
    try:
        async with httpx.AsyncClient(
            base_url=url_of(sock), headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            newest = max(e.id for e in app.store.events(after=0, limit=1000))
            for query in ({}, {"goal": "g-1"}):
                async with http.stream("GET", "/api/events", params=query) as response:
                    assert response.status_code == 200, await response.aread()
                    seen: list[str] = []
                    async for line in response.aiter_lines():
                        if not line and f"id: {newest}" in seen:
                            break  # the end of the newest event
                        seen.append(line)
                assert_clean(f"the event stream {query}", "\n".join(seen))
                assert sum(line.startswith("data: ") for line in seen) >= 3
            for method, path in (
                ("GET", f"/api/goals/{CANARY}"),
                ("GET", f"/api/goals/g-1/tasks/{KEY}"),
                ("POST", "/api/projects"),
                ("GET", f"/api/{CANARY}"),
            ):
                body = {"path": text("a path")} if method == "POST" else None
                response = await http.request(method, path, json=body)
                assert response.status_code in (404, 422), (method, path, response.text)
                assert_clean(f"{method} {path} (echoing the request)", response.content)
            answered = 0
            for _, method, path in calls:
                if path == "/api/events":
                    continue
                body = None if method == "GET" else {}
                response = await http.request(method, path, json=body)
                assert response.status_code < 500, (method, path, response.text)
                assert_clean(f"{method} {path}", response.content)
                answered += response.status_code < 300
            assert answered >= 8  # the reads answered, not just refused
            said = await voice_said(url_of(sock), token)
            assert '"type":"say"' in said.replace(" ", "")
            assert_clean("the voice socket", said)
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(serving, 60) == 0
        await app.aclose()
