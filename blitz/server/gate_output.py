"""The route that streams an attempt's gate output while its gates run (server-sent events),
from :class:`blitz.live_gates.LiveGates` of the daemon's app: only gates this process runs are
seen (a goal driven by ``blitz run`` elsewhere shows its gates' output once they end)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from blitz import actions
from blitz.domain import AttemptState
from blitz.live_gates import Cursor, Update
from blitz.redact import redact
from blitz.server import events
from blitz.server.problems import not_found

if TYPE_CHECKING:
    from blitz.server.host import Host


def message(update: Update, cursor: Cursor) -> ServerSentEvent:
    """One update as an SSE message of kind ``gate.output``; its id is where the follower is
    once it has it (a stream reconnected with it as ``Last-Event-ID`` goes on from there)."""
    data = {
        "gate": redact(update.gate),
        "command": redact(update.command),
        "text": redact(update.text),
        "skipped": update.skipped,
        "ended": update.ended,
    }
    return ServerSentEvent(
        data=json.dumps(data, separators=(",", ":")), id=cursor.encode(), event="gate.output"
    )


def reset(cursor: Cursor) -> ServerSentEvent:
    """``gate.reset``: the stream starts again from what is kept; forget what it sent before
    (a first connection, or a ``Last-Event-ID`` this daemon cannot go on from: another
    process's, after a restart)."""
    return ServerSentEvent(data="{}", id=cursor.encode(), event="gate.reset")


def routes(router: APIRouter, host: Host) -> None:
    """Add ``GET /api/goals/{goal}/attempts/{attempt}/gates/live`` (docs/api.md)."""
    store = host.store

    @router.get(
        "/api/goals/{goal}/attempts/{attempt}/gates/live",
        response_class=EventSourceResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def live_gate_output(goal: str, attempt: str, request: Request) -> EventSourceResponse:
        """The attempt's gate output as it is printed: what is kept so far, then as it comes;
        with ``Last-Event-ID``, from where that message left the follower."""
        board = host.app.live_gates
        resumed = Cursor.parse(request.headers.get("last-event-id", ""), board.board)

        def ended() -> bool:
            """Whether the attempt has ended (a 404 when the goal has no such attempt)."""
            found = actions.goal_of(store, goal)
            states = [a.state for a in store.load_attempts(found.id) if a.id == attempt]
            if not states:
                raise not_found(f"goal {found.id} has no attempt {attempt!r}")
            return states[0] is not AttemptState.RUNNING

        over = await asyncio.to_thread(ended)
        passes = 0

        def done() -> bool:
            # An attempt that had ended gets what is kept of its gates once, and the stream
            # ends; a running one is followed for as long as the daemon serves.
            nonlocal passes
            passes += 1
            return host.hub.closed or (over and passes > 1)

        async def stream() -> AsyncIterator[ServerSentEvent]:
            cursor = resumed or Cursor(board.board)
            if resumed is None:
                yield reset(cursor)
            async for update in board.follow(attempt, until=done, cursor=cursor):
                yield message(update, cursor)

        return EventSourceResponse(
            stream(),
            ping=host.ping,
            ping_message_factory=events.ping,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
