"""A real OpenClaw gateway for the tests, one per run, offline, with blitz's scripted model.

The gateway (``openclaw gateway run`` from the workspace's pinned ``openclaw``, on Node 24) runs
in a temporary state directory (its ``HOME``, ``OPENCLAW_STATE_DIR`` and config there), bound to
127.0.0.1 with a token, without update checks, telemetry, Bonjour or chat channels. Its one model
is an OpenAI-compatible provider whose base URL is blitz's scripted model server (Chat
Completions with tool calls), so every model turn is scripted by the test. Plugins are loaded from
their directories (``plugins.load.paths``) with their config (``plugins.entries.<id>.config``),
and their optional tools allowed; Tool Search is off, so the model sees plugin tools directly.

The tests talk to it as the web chat does, over its WebSocket: ``chat.send`` puts a person's
message into a conversation (a session key) and ``chat.history`` reads that conversation back,
including whatever a plugin later adds to it. See /work/notes/openclaw-findings.md (i17-c) for
where each setting comes from in OpenClaw's own docs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import OFFLINE, Daemon
from relay import Relay
from websockets.sync.client import connect

from blitz import proctree
from blitz.testing.model_server import ModelServer
from blitz.testing.openclaw import Workspace, environment
from blitz.testing.speech_server import SpeechServer

START_TIMEOUT = 180.0
"""Seconds the gateway may take to become ready (~20 s here: it loads its bundled plugins)."""

STOP_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL when stopping (its own drain budget is minutes)."""

CALL_TIMEOUT = 30.0
MODEL = "scripted"
PROVIDER = "blitz"
PROTOCOL = 4
"""The gateway WebSocket protocol version openclaw 2026.9.6 speaks."""

_OUTSIDE = ("BLITZ_", "ANTHROPIC_", "OPENAI_", "OPENCLAW_", "GITHUB_TOKEN", "CLAUDE_")
"""Environment variables that would point the gateway at real providers or other state."""


class GatewayError(RuntimeError):
    """The gateway did not start, or refused a call; the message carries its log's tail."""


@dataclass(frozen=True, kw_only=True)
class Plugin:
    """A plugin to load: its directory (with ``openclaw.plugin.json``) and its config."""

    path: Path
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        manifest = json.loads((self.path / "openclaw.plugin.json").read_text())
        return str(manifest["id"])


def message_text(message: Mapping[str, Any]) -> str:
    """A ``chat.history`` row's text: a string, or its text parts (tool calls as JSON)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if part.get("type") == "text":
            parts.append(str(part.get("text", "")))
        else:
            parts.append(json.dumps(part, sort_keys=True))
    return "\n".join(parts)


def said(role: str, text: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Whether a conversation has a ``role`` message containing ``text`` (for
    :meth:`Gateway.wait_for`)."""

    def found(messages: list[dict[str, Any]]) -> bool:
        return any(m.get("role") == role and text in message_text(m) for m in messages)

    return found


def config(
    *, port: int, token: str, model_url: str, state: Path, plugins: Sequence[Plugin]
) -> dict[str, Any]:
    """The gateway's ``openclaw.json``: local, loopback, token auth, quiet, offline."""
    return {
        "gateway": {
            "mode": "local",
            "port": port,
            "bind": "loopback",
            "auth": {"mode": "token", "token": token},
        },
        "update": {"checkOnStart": False},
        "telemetry": {"enabled": False},
        "logging": {"file": str(state / "gateway.log")},
        "tools": {"toolSearch": False, "alsoAllow": [plugin.id for plugin in plugins]},
        # OpenClaw's relayed talk mode on voice-chat's realtime voice provider (blitz's voice
        # session): docs/nodes/talk.md in the openclaw package.
        "talk": {
            "realtime": {
                "provider": "blitz-voice",
                "providers": {"blitz-voice": {}},
                "mode": "realtime",
                "transport": "gateway-relay",
                "brain": "agent-consult",
            }
        },
        "plugins": {
            "load": {"paths": [str(plugin.path) for plugin in plugins]},
            "entries": {
                plugin.id: {"enabled": True, "config": dict(plugin.config)} for plugin in plugins
            },
        },
        "agents": {
            "defaults": {
                "model": {"primary": f"{PROVIDER}/{MODEL}"},
                "workspace": str(state / "workspace"),
                # No scheduled turn during a run; a plugin's wake of a session (fleet's news)
                # runs a turn there, answered into that conversation ("none": no channel route).
                "heartbeat": {"every": "24h", "target": "none"},
            }
        },
        "models": {
            "mode": "replace",
            "providers": {
                PROVIDER: {
                    "baseUrl": model_url,
                    "apiKey": "scripted",
                    "api": "openai-completions",
                    "models": [
                        {
                            "id": MODEL,
                            "name": "blitz scripted model",
                            "reasoning": False,
                            "input": ["text"],
                            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                            "contextWindow": 200000,
                            "maxTokens": 8192,
                        }
                    ],
                }
            },
        },
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Gateway:
    """A started gateway (a context manager); :meth:`send` and :meth:`history` are the
    conversation, :meth:`call` any other gateway method."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        root: Path,
        model: ModelServer,
        plugins: Sequence[Plugin] = (),
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.workspace = workspace
        self.root = root
        self.model = model
        self.plugins = tuple(plugins)
        self.start_timeout = start_timeout
        self.port = _free_port()
        self._token = secrets.token_urlsafe(24)
        self._marker = proctree.new_marker()
        self._proc: subprocess.Popen[bytes] | None = None

    def auth_header(self) -> dict[str, str]:
        """The gateway's token as a client of its HTTP routes (``auth: "gateway"``) sends it."""
        return {"Authorization": f"Bearer {self._token}"}

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """The gateway's token, for a client that keeps its own connection (tests/openclaw/
        operator.py)."""
        return self._token

    @property
    def state(self) -> Path:
        return self.root / "state"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Gateway:
        state = self.state
        (state / "workspace").mkdir(parents=True, exist_ok=True)
        (self.root / "home").mkdir(exist_ok=True)
        settings = config(
            port=self.port,
            token=self._token,
            model_url=self.model.openai_base_url,
            state=state,
            plugins=self.plugins,
        )
        (state / "openclaw.json").write_text(json.dumps(settings, indent=2))
        entry = self.workspace.root / "node_modules" / "openclaw" / "openclaw.mjs"
        with (self.root / "gateway.out").open("wb") as out:
            self._proc = subprocess.Popen(
                [str(self.workspace.node), str(entry), "gateway", "run", "--port", str(self.port)],
                cwd=self.root,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._await_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _environment(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_OUTSIDE)}
        home = str(self.root / "home")
        return environment(
            base,
            **OFFLINE,
            HOME=home,
            OPENCLAW_HOME=home,
            OPENCLAW_STATE_DIR=str(self.state),
            OPENCLAW_CONFIG_PATH=str(self.state / "openclaw.json"),
            # What only a gateway starts: Bonjour adverts, chat channels.
            OPENCLAW_DISABLE_BONJOUR="1",
            OPENCLAW_SKIP_CHANNELS="1",
            DO_NOT_TRACK="1",
            **{proctree.MARKER_VARIABLE: self._marker},
        )

    def _await_ready(self) -> None:
        """Wait for ``/readyz`` to answer 200; fail with the log if it exits or takes too long."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise GatewayError(f"the gateway exited ({self._proc.returncode}):\n{self.log()}")
            with contextlib.suppress(urllib.error.URLError, OSError):
                ready = f"http://127.0.0.1:{self.port}/readyz"
                with urllib.request.urlopen(ready, timeout=5) as answer:
                    if answer.status == 200:
                        return
            time.sleep(0.5)
        raise GatewayError(
            f"the gateway was not ready within {self.start_timeout:g} s:\n{self.log()}"
        )

    def log(self, lines: int = 60) -> str:
        """The tail of the gateway's console output, without the tests' own history polls."""
        path = self.root / "gateway.out"
        if not path.exists():
            return "(the gateway wrote nothing)"
        said = [
            line
            for line in path.read_text(errors="replace").splitlines()
            if "chat.history" not in line and "] ← open" not in line and "→ close" not in line
        ]
        return "\n".join(said[-lines:]).replace(self._token, "[token]")

    def stop(self) -> None:
        """SIGTERM to its group, then SIGKILL to the group and to every process it started
        (its spawn broker leaves the group, so the marker finds it)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proctree.send_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_GRACE)
        proctree.send_group(proc.pid, signal.SIGKILL)
        for pid in proctree.marked(self._marker):
            proctree.send(pid, signal.SIGKILL)
        proc.wait(STOP_GRACE)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the gateway's WebSocket -------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any], timeout: float = CALL_TIMEOUT) -> Any:
        """One gateway method as an operator (token auth); its payload, or a GatewayError."""
        with connect(self.url, open_timeout=timeout, max_size=None) as ws:
            self._await(ws, None, timeout)  # connect.challenge
            hello = {
                "minProtocol": PROTOCOL,
                "maxProtocol": PROTOCOL,
                "client": {"id": "cli", "version": "blitz", "platform": "linux", "mode": "cli"},
                "role": "operator",
                "scopes": ["operator.read", "operator.write"],
                "caps": [],
                "auth": {"token": self._token},
            }
            self._request(ws, "hello", "connect", hello)
            self._await(ws, "hello", timeout)
            self._request(ws, "call", method, params)
            return self._await(ws, "call", timeout)

    @staticmethod
    def _request(ws: Any, id: str, method: str, params: Mapping[str, Any]) -> None:
        ws.send(json.dumps({"type": "req", "id": id, "method": method, "params": params}))

    def _await(self, ws: Any, request: str | None, timeout: float) -> Any:
        """The next event (``request`` None), or the answer to ``request``."""
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if request is None:
                return frame
            if frame.get("type") == "res" and frame.get("id") == request:
                if not frame.get("ok"):
                    raise GatewayError(f"{request} refused: {frame.get('error')}")
                return frame.get("payload")

    def send(self, session: str, message: str) -> str:
        """Put ``message`` into the conversation ``session`` as the person; the run's id."""
        params = {"sessionKey": session, "message": message, "idempotencyKey": uuid.uuid4().hex}
        answer = self.call("chat.send", params)
        return str(answer["runId"])

    def history(self, session: str) -> list[dict[str, Any]]:
        """The conversation's messages, oldest first (roles ``user``, ``assistant``,
        ``toolResult``)."""
        answer = self.call("chat.history", {"sessionKey": session, "limit": 200})
        return list(answer.get("messages") or [])

    def wait_for(
        self,
        session: str,
        found: Callable[[list[dict[str, Any]]], bool],
        *,
        timeout: float,
        what: str,
    ) -> list[dict[str, Any]]:
        """The conversation once ``found`` holds for it; a failure showing the conversation, the
        model's requests and the gateway's log when it does not within ``timeout``."""
        deadline = time.monotonic() + timeout
        messages = self.history(session)
        while not found(messages):
            if time.monotonic() > deadline or not self.alive():
                raise AssertionError(f"{what}: not seen in {timeout:g} s\n{self.explain(session)}")
            time.sleep(0.5)
            messages = self.history(session)
        return messages

    def explain(self, session: str) -> str:
        """What a failing test shows: the conversation, the model's requests, the log."""
        try:
            rows = [f"{m.get('role')}: {message_text(m)[:600]}" for m in self.history(session)]
        except Exception as exc:  # the gateway may be what broke
            rows = [f"(no history: {exc})"]
        unmatched = [r.text[-300:] for r in self.model.unmatched]
        return (
            "conversation:\n  " + "\n  ".join(rows)
            + f"\nmodel requests: {len(self.model.requests)}, unmatched: {unmatched}"
            + f"\ngateway {'alive' if self.alive() else 'dead'}; log:\n{self.log()}"
        )  # fmt: skip


@pytest.fixture(scope="session")
def scripted_model() -> Iterator[ModelServer]:
    """The gateway's model for the whole run; each test adds the turns it expects."""
    with ModelServer(models=(MODEL,)) as server:
        yield server


PLUGINS = ("fleet", "voice-chat")
"""The workspace's plugins (directories) the gateway loads."""


def plugin_config(name: str, daemon: Daemon, relay: Relay, speech: SpeechServer) -> dict[str, Any]:
    """What each plugin is configured with: the suite's daemon (through the relay), and for
    voice-chat the speech server."""
    return {
        "fleet": {"url": relay.url, "token": daemon.token},
        "voice-chat": {
            "speechUrl": speech.url,
            "speechApiKey": speech.key,
            "daemonUrl": relay.url,
            "daemonToken": daemon.token,
        },
    }[name]


@pytest.fixture(scope="session")
def daemon_relay(blitz_daemon: Daemon) -> Iterator[Relay]:
    """The way to the suite's daemon the gateway's plugins take, which a test can cut."""
    relay = Relay(urlsplit(blitz_daemon.url).port or 80).start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture(scope="session")
def openclaw_gateway(
    openclaw_workspace: Workspace,
    scripted_model: ModelServer,
    blitz_daemon: Daemon,
    daemon_relay: Relay,
    speech_server: SpeechServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    """One real gateway for the run, its plugins pointed at the suite's daemon (through
    :func:`daemon_relay`)."""
    root = openclaw_workspace.root
    plugins = [
        Plugin(
            path=root / name,
            config=plugin_config(name, blitz_daemon, daemon_relay, speech_server),
        )
        for name in PLUGINS
    ]
    home = tmp_path_factory.mktemp("openclaw-gateway")
    try:
        gateway = Gateway(openclaw_workspace, root=home, model=scripted_model, plugins=plugins)
        gateway.start()
    except GatewayError as exc:
        pytest.fail(str(exc))
    try:
        yield gateway
    finally:
        gateway.stop()
