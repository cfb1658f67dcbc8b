"""The output of gates while they run, for the dashboard to stream: a gate's recorded result
keeps only the tail of its output, once it has ended; this keeps each running attempt's gate
output in memory (the last ``cap`` bytes of each gate), in the process that runs it, and wakes
whoever follows it.

Which attempt a gate runs for comes from :func:`for_attempt`, a context variable set around an
attempt's gates, so the validator's signatures stay as they are. Followers get whole lines
(the rest once the gate ended), so a secret is never split across two updates and every update
can be redacted on its way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
from collections.abc import AsyncGenerator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

CAP = 256 * 1024
"""Bytes of each gate's output kept (its end)."""

KEPT_ATTEMPTS = 64
"""Attempts whose ended gates are still kept (a follower that comes late sees them)."""

LONG_LINE = 8192
"""A line longer than this is sent before its end."""

_ATTEMPT: ContextVar[str] = ContextVar("blitz_live_gates_attempt", default="")


@contextlib.contextmanager
def for_attempt(attempt_id: str) -> Iterator[None]:
    """Gates run inside this block run for ``attempt_id``."""
    token = _ATTEMPT.set(attempt_id)
    try:
        yield
    finally:
        _ATTEMPT.reset(token)


@dataclass(frozen=True, slots=True)
class Update:
    """What a gate printed since the follower's last update."""

    gate: str
    command: str
    text: str
    skipped: int  # bytes left out before ``text`` (more than the cap came at once)
    ended: bool  # the gate has ended: its result is recorded with the attempt


@dataclass(slots=True)
class LiveGate:
    """One gate's output as it runs."""

    attempt: str
    name: str
    command: str
    cap: int
    buffer: bytearray = field(default_factory=bytearray)
    total: int = 0  # bytes written, the dropped ones too
    ended: bool = False

    def write(self, chunk: bytes) -> None:
        self.buffer += chunk
        self.total += len(chunk)
        if len(self.buffer) > 2 * self.cap:
            del self.buffer[: len(self.buffer) - self.cap]


@dataclass(slots=True)
class Cursor:
    """How far a follower has got in an attempt's gates: the byte of each gate's output it was
    sent up to (by the gate's place in the attempt; a gate not in ``sent`` it has not heard of)
    and the gates whose end it was told. As text (:meth:`encode`) it is the id of a stream's
    message, so a follower that reconnects with ``Last-Event-ID`` goes on where it was;
    ``board`` names the :class:`LiveGates` it belongs to (another process's offsets mean
    nothing here)."""

    board: str
    sent: dict[int, int] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)

    def encode(self) -> str:
        """``BOARD/OFFSET[!],...``: one entry per gate, ``-`` for a gate not heard of, ``!`` for
        a gate whose end was told."""
        entries = [
            "-" if i not in self.sent else f"{self.sent[i]}{'!' if i in self.ended else ''}"
            for i in range(max(self.sent, default=-1) + 1)
        ]
        return f"{self.board}/{','.join(entries)}"

    @classmethod
    def parse(cls, text: str, board: str) -> Cursor | None:
        """The cursor ``text`` encodes if it is one of ``board``'s, else None."""
        found, _, entries = text.strip().partition("/")
        if found != board or not board:
            return None
        cursor = cls(board)
        for i, entry in enumerate(entries.split(",") if entries else []):
            if entry == "-":
                continue
            offset = entry.removesuffix("!")
            if not offset.isdigit():
                return None
            cursor.sent[i] = int(offset)
            if entry.endswith("!"):
                cursor.ended.add(i)
        return cursor


class LiveGates:
    """The gates running (or just ended) in this process, by attempt."""

    def __init__(self, cap: int = CAP) -> None:
        self.board = secrets.token_hex(4)
        """Names this board in its followers' cursors."""
        self._cap = cap
        self._gates: dict[str, list[LiveGate]] = {}
        self._changed: dict[str, asyncio.Event] = {}

    def start(self, gate: str, command: str) -> LiveGate | None:
        """A gate starting for the current attempt (None outside of one)."""
        attempt = _ATTEMPT.get()
        if not attempt:
            return None
        live = LiveGate(attempt, gate, command, self._cap)
        self._gates.setdefault(attempt, []).append(live)
        self._forget_old()
        self._wake(attempt)
        return live

    def write(self, gate: LiveGate, chunk: bytes) -> None:
        """What the gate printed (stdout and stderr together)."""
        gate.write(chunk)
        self._wake(gate.attempt)

    def end(self, gate: LiveGate) -> None:
        gate.ended = True
        self._wake(gate.attempt)

    def _wake(self, attempt: str) -> None:
        event = self._changed.pop(attempt, None)
        if event is not None:
            event.set()

    def _forget_old(self) -> None:
        done = [a for a, gates in self._gates.items() if all(g.ended for g in gates)]
        for attempt in done[: max(0, len(self._gates) - KEPT_ATTEMPTS)]:
            del self._gates[attempt]

    async def follow(
        self,
        attempt: str,
        *,
        until: Callable[[], bool] = lambda: False,
        wait: float = 1.0,
        cursor: Cursor | None = None,
    ) -> AsyncGenerator[Update, None]:
        """The attempt's gate output from the start of what is kept (or from ``cursor``), then
        as it comes, until ``until()`` (asked at least every ``wait`` seconds) or the follower
        stops. ``cursor`` is moved past each update before it is yielded."""
        cursor = cursor if cursor is not None else Cursor(self.board)
        sent, ended = cursor.sent, cursor.ended
        while not until():
            wake = self._changed.setdefault(attempt, asyncio.Event())
            for i, gate in enumerate(self._gates.get(attempt, [])):
                found = _update(gate, sent.get(i), i in ended)
                if found is None:
                    continue
                update, sent[i] = found
                if update.ended:
                    ended.add(i)
                yield update
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wake.wait()


def _update(gate: LiveGate, sent: int | None, told_end: bool) -> tuple[Update, int] | None:
    """The update after byte ``sent`` of ``gate``'s output (None: the follower has not heard
    of the gate yet), and the byte it ends at; None when there is nothing new."""
    done = sent or 0
    first = gate.total - len(gate.buffer)  # the offset of the buffer's first byte
    skipped = max(0, first - done)
    start = max(done, first) - first
    chunk = bytes(gate.buffer[start:])
    if not gate.ended:
        cut = chunk.rfind(b"\n") + 1
        if cut == 0 and len(chunk) < LONG_LINE:
            chunk = b""
        elif cut:
            chunk = chunk[:cut]
    if sent is not None and not chunk and not skipped and (told_end or not gate.ended):
        return None
    text = chunk.decode("utf-8", errors="replace")
    upto = first + start + len(chunk)
    return Update(gate.name, gate.command, text, skipped, gate.ended and upto == gate.total), upto


@contextlib.contextmanager
def watching(
    board: LiveGates | None, gate: str, command: str
) -> Iterator[Callable[[bytes], None] | None]:
    """Follow a gate's output on ``board`` while the block runs it: gives the callback for the
    output (None when nobody follows gates here, or outside an attempt)."""
    live = board.start(gate, command) if board is not None and gate else None
    if board is None or live is None:
        yield None
        return
    try:
        yield functools.partial(board.write, live)
    finally:
        board.end(live)
