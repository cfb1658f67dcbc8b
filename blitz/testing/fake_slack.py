"""A Slack on 127.0.0.1: the Web API methods blitz calls, and a Socket Mode WebSocket server.

It is a real aiohttp server in a background thread with a loop of its own, so slack_sdk's
clients (``base_url=fake.url``) go through sockets and JSON exactly as they would against Slack::

    with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert slack.texts("C1") == ["hi"]

Web API (``POST /api/<method>``): ``auth.test``, ``chat.postMessage``, ``chat.update``,
``chat.postEphemeral``, ``reactions.add`` and ``apps.connections.open`` (with the app token: a
``ws://`` URL on this server); any other method answers ``ok``. Every call is recorded in
:attr:`FakeSlack.calls`. :meth:`FakeSlack.fail` makes the next calls of a method fail (429 with
``Retry-After``, a 5xx, or an API error such as ``invalid_auth``); :meth:`FakeSlack.revoke`
refuses every call from then on, as Slack does once a token is revoked.

Socket Mode (``GET /socket``): Slack's protocol as its docs describe it: a ``hello`` on connect,
then envelopes ``{envelope_id, type, payload, ...}`` the client acknowledges with
``{envelope_id}``. :meth:`FakeSlack.deliver` sends one and :meth:`FakeSlack.acked` says whether
it was acknowledged.

The module also builds what Slack sends blitz: signed Events API bodies (:func:`signed`),
events (:func:`mention`, :func:`message`) and button clicks (:func:`click`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

BOT_USER = "UBLITZ"
TEAM = "T0FAKE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """A Web API call the fake answered: the method, its arguments and what it answered."""

    method: str
    args: Mapping[str, Any]
    token: str
    status: int
    answer: Mapping[str, Any]


@dataclass(slots=True, kw_only=True)
class _Failure:
    status: int
    error: str
    headers: Mapping[str, str]
    times: int


@dataclass(slots=True)
class _Socket:
    ws: web.WebSocketResponse
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeSlack:
    """An in-memory Slack at a free port of 127.0.0.1; see the module docstring."""

    def __init__(
        self, *, bot_token: str = "xoxb-fake-bot-token", app_token: str = "xapp-fake-app-token"
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message
        self.connections = 0  # Socket Mode connections opened
        self.acks: dict[str, dict[str, Any]] = {}  # envelope id -> the client's answer
        self.revoked = ""
        self._failures: dict[str, list[_Failure]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._sockets: list[_Socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- life cycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The Web API's base URL, for slack_sdk's ``base_url`` (it ends with a slash)."""
        return f"http://127.0.0.1:{self._port}/api/"

    def start(self) -> Self:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-slack", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def shut() -> None:
            for socket in list(self._sockets):
                await socket.ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shut(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the tests ask -----------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str = "",
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail: with HTTP ``status`` (429 with a
        ``Retry-After`` of ``retry_after`` seconds, a 5xx), or ``{"ok": false, "error": error}``."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        failure = _Failure(status=status, error=error, headers=headers, times=times)
        with self._lock:
            self._failures.setdefault(method, []).append(failure)

    def revoke(self, error: str = "token_revoked") -> None:
        """Refuse every call with ``error`` from now on."""
        self.revoked = error

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The messages posted in the thread rooted at ``thread_ts``, as they read now."""
        with self._lock:
            return [
                m
                for (c, _), m in self.messages.items()
                if c == channel and m.get("thread_ts") == thread_ts
            ]

    def reactions(self, channel: str, ts: str) -> list[str]:
        """The reactions added to the message ``ts``, in order."""
        return [
            c.args["name"]
            for c in self.calls_of("reactions.add")
            if c.status == 200 and c.answer.get("ok")
            and c.args.get("channel") == channel and c.args.get("timestamp") == ts
        ]  # fmt: skip

    async def deliver(self, kind: str, payload: Mapping[str, Any], *, retry: int = 0) -> str:
        """Send an envelope of ``kind`` (``events_api``, ``interactive``) over every open
        Socket Mode connection; return its id."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": dict(payload),
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry,
            "retry_reason": "timeout" if retry else "",
        }

        async def send() -> int:
            for socket in list(self._sockets):
                await socket.ws.send_str(json.dumps(envelope))
            return len(self._sockets)

        assert self._loop is not None
        sent = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(send(), self._loop))
        if not sent:
            raise RuntimeError("no Socket Mode connection is open")
        return envelope_id

    def acked(self, envelope_id: str) -> bool:
        with self._lock:
            return envelope_id in self.acks

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    # -- the Web API ------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        body = await request.read()
        if body:
            if request.content_type == "application/json":
                args.update(json.loads(body))
            else:
                args.update(parse_qsl(body.decode()))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or str(args.pop("token", ""))
        status, headers, answer = self._answer(method, args, token)
        with self._lock:
            self.calls.append(
                Call(method=method, args=args, token=token, status=status, answer=answer)
            )
        return web.json_response(answer, status=status, headers=headers)

    def _answer(
        self, method: str, args: dict[str, Any], token: str
    ) -> tuple[int, Mapping[str, str], dict[str, Any]]:
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if self.revoked:
            return 200, {}, {"ok": False, "error": self.revoked}
        if token != expected:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        with self._lock:
            queue = self._failures.get(method, [])
            if queue:
                failure = queue[0]
                failure.times -= 1
                if failure.times <= 0:
                    queue.pop(0)
                if failure.status != 200:
                    return failure.status, failure.headers, {"ok": False, "error": "fake failure"}
                return 200, failure.headers, {"ok": False, "error": failure.error}
        return 200, {}, self._ok(method, args)

    def _ok(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": "BBLITZ", "team_id": TEAM}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/socket"}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            n = next(self._ts)
            ts = f"{1_800_000_000 + n}.{n:06d}"
            message = {**args, "ts": ts, "user": BOT_USER}
            if method == "chat.postMessage":
                with self._lock:
                    self.messages[(channel, ts)] = message
                return {"ok": True, "channel": channel, "ts": ts, "message": message}
            return {"ok": True, "message_ts": ts}
        if method == "chat.update":
            key = (channel, str(args.get("ts", "")))
            with self._lock:
                if key not in self.messages:
                    return {"ok": False, "error": "message_not_found"}
                self.messages[key] = {**self.messages[key], **args}
            return {"ok": True, "channel": channel, "ts": key[1], "text": args.get("text", "")}
        return {"ok": True}

    # -- Socket Mode ------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        socket = _Socket(ws)
        self._sockets.append(socket)
        self.connections += 1
        hello = {"type": "hello", "num_connections": len(self._sockets), "debug_info": {}}
        await ws.send_str(json.dumps(hello))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    answer = json.loads(msg.data)
                    if "envelope_id" in answer:
                        with self._lock:
                            self.acks[answer["envelope_id"]] = answer
        finally:
            self._sockets.remove(socket)
        return ws


# -- what Slack sends ------------------------------------------------------------------------------


def signed(secret: str, body: str, *, timestamp: float | None = None) -> dict[str, str]:
    """The headers of a request Slack signs (v0) with ``secret``, sent at ``timestamp``."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    base = f"v0:{ts}:{body}".encode()
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/json",
    }


def callback(event: Mapping[str, Any], *, event_id: str = "") -> dict[str, Any]:
    """An Events API ``event_callback`` body around ``event``."""
    return {
        "token": "unused",
        "team_id": TEAM,
        "api_app_id": "AFAKE",
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "event": dict(event),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    }


def mention(channel: str, user: str, text: str, ts: str) -> dict[str, Any]:
    """An ``app_mention`` of the bot saying ``text``."""
    return {
        "type": "app_mention",
        "channel": channel,
        "user": user,
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
        "event_ts": ts,
    }


def message(channel: str, user: str, text: str, ts: str, *, thread_ts: str = "") -> dict[str, Any]:
    """A ``message`` in a channel, or a reply in the thread ``thread_ts``."""
    event = {
        "type": "message",
        "channel": channel,
        "channel_type": "channel",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def click(
    channel: str, user: str, action_id: str, value: str, *, message_ts: str
) -> dict[str, Any]:
    """The ``block_actions`` payload of ``user`` clicking the button ``action_id``."""
    return {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": user},
        "api_app_id": "AFAKE",
        "token": "unused",
        "trigger_id": "1.2.3",
        "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel, "message_ts": message_ts},
        "message": {"ts": message_ts, "text": ""},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "value": value,
                "block_id": "b",
                "action_ts": "1",
            }
        ],
    }
