"""A person's client kept connected to the gateway, as the Control UI is: it hears the gateway's
events (a plugin's approval request, ``plugin.approval.requested``) and the person answers from it
in the conversation (``/approve ID DECISION``).

The gateway asks only connected approval clients: a connection with the ``operator.approvals``
scope that advertises the ``plugin-approvals`` capability (``canDeliverApprovals`` in openclaw's
``dist/server-request-context-*.mjs``). A web chat has no approval route of its own
(``hasApprovalTurnSourceRoute`` is false for ``webchat``), so without such a client a plugin's
approval is refused at once ("no approval route"). See /work/notes/openclaw-findings.md (i17-d).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from gateway import CALL_TIMEOUT, PROTOCOL, Gateway, GatewayError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

SCOPES = ("operator.read", "operator.write", "operator.approvals", "operator.admin")
"""The owner's scopes, as the Control UI connects. ``operator.approvals`` to be asked and to say
``/approve``; ``operator.admin`` to see an approval the agent's run requested: such a request is
bound to its requester (the run's in-process client), visible to another connection only through
the same paired device or with the admin scope (``isApprovalRecordVisibleToClient`` in openclaw's
``dist/approval-record-lookup-*.mjs``), and this client has no device identity."""
CAPS = ("plugin-approvals",)

Event = dict[str, Any]


class Person:
    """One WebSocket connection, open until :meth:`close` (a context manager): requests by
    :meth:`call`, every event kept for :meth:`event`."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.events: list[Event] = []
        self._answers: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self._ws: ClientConnection | None = None
        self._reader: threading.Thread | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Person:
        ws = self._stack.enter_context(
            connect(self.gateway.url, open_timeout=CALL_TIMEOUT, max_size=None)
        )
        self._ws = ws
        ws.recv(timeout=CALL_TIMEOUT)  # connect.challenge
        self._reader = threading.Thread(target=self._read, name="openclaw-person", daemon=True)
        self._reader.start()
        self.call(
            "connect",
            {
                "minProtocol": PROTOCOL,
                "maxProtocol": PROTOCOL,
                "client": {"id": "cli", "version": "blitz", "platform": "linux", "mode": "cli"},
                "role": "operator",
                "scopes": list(SCOPES),
                "caps": list(CAPS),
                "auth": {"token": self.gateway.token},
            },
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._ws = None
        self._stack.close()
        if self._reader is not None:
            self._reader.join(CALL_TIMEOUT)

    def _read(self) -> None:
        assert self._ws is not None
        try:
            for raw in self._ws:
                frame = json.loads(raw)
                with self._changed:
                    if frame.get("type") == "res":
                        self._answers[str(frame.get("id"))] = frame
                    elif frame.get("type") == "event":
                        self.events.append(frame)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass

    def call(self, method: str, params: Mapping[str, Any], timeout: float = CALL_TIMEOUT) -> Any:
        """``method`` on this connection; its payload, or a GatewayError."""
        assert self._ws is not None, "not connected"
        id = uuid.uuid4().hex
        self._ws.send(json.dumps({"type": "req", "id": id, "method": method, "params": params}))
        with self._changed:
            if not self._changed.wait_for(lambda: id in self._answers, timeout):
                raise GatewayError(f"{method}: no answer in {timeout:g} s")
            frame = self._answers.pop(id)
        if not frame.get("ok"):
            raise GatewayError(f"{method} refused: {frame.get('error')}")
        return frame.get("payload")

    def send(self, session: str, message: str) -> str:
        """Say ``message`` in the conversation ``session`` from this client (``/approve`` needs
        its ``operator.approvals`` scope: openclaw's ``dist/commands-approve-*.mjs``); the run's
        id."""
        params = {"sessionKey": session, "message": message, "idempotencyKey": uuid.uuid4().hex}
        return str(self.call("chat.send", params)["runId"])

    def event(
        self, name: str, found: Callable[[Any], bool], *, timeout: float, what: str, session: str
    ) -> Any:
        """The payload of the first event ``name`` for which ``found`` holds; a failure showing
        the conversation ``session`` when none comes within ``timeout``."""
        deadline = time.monotonic() + timeout

        def seen() -> Any:
            for frame in self.events:
                if frame.get("event") == name and found(frame.get("payload")):
                    return frame.get("payload")
            return None

        with self._changed:
            while (payload := seen()) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{what}: no {name} in {timeout:g} s\n{self.gateway.explain(session)}"
                    )
                self._changed.wait(min(left, 1.0))
        return payload
