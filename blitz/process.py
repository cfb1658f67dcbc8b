"""Running subprocesses safely: every command has a timeout, runs in its own process group, is
killed with its whole group when the timeout passes (or the caller is cancelled), and has its
output capped so a command that floods its output cannot exhaust memory.

Only the tail of the output is kept (the end of a failing test run is where the error is), plus a
count of the bytes dropped.

:func:`run` waits for a command; :func:`stream` also hands each line of its stdout to a callback
as it arrives (an agent CLI's progress, shown live).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blitz import proctree

DEFAULT_CAP = 64 * 1024
"""Bytes of output kept per command (the tail)."""

LINE_CAP = 16 * 1024
"""Bytes of one streamed line kept; the rest of a longer line is dropped (and marked)."""

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL when a command is stopped."""

SECRET_ENV_SUFFIXES = (
    "_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_AUTH_TOKEN", "_KEY", "_CREDENTIALS", "_PASSWD",
)  # fmt: skip
"""Environment variables with these suffixes are not passed to commands that run untrusted code."""

SECRET_ENV_WORDS = ("SECRET", "PASSWORD", "TOKEN", "CREDENTIAL", "PRIVATE_KEY")
"""...nor variables whose name holds one of these words (``AWS_SECRET_ACCESS_KEY``)."""


def secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    upper = name.upper()
    return upper.endswith(SECRET_ENV_SUFFIXES) or any(word in upper for word in SECRET_ENV_WORDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Completed:
    """The outcome of one command."""

    args: tuple[str, ...]
    exit_code: int | None  # None when the command was killed on timeout
    output: str  # stdout and stderr interleaved, the last ``cap`` bytes
    dropped: int  # bytes of output dropped from the front
    duration: float
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, chars: int = 4000) -> str:
        text = self.output[-chars:]
        if self.dropped or len(self.output) > chars:
            return "[... output truncated ...]\n" + text
        return text


class _Tail:
    """A byte buffer that keeps only the last ``cap`` bytes."""

    __slots__ = ("_cap", "_chunks", "_size", "dropped")

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._chunks: list[bytes] = []
        self._size = 0
        self.dropped = 0

    def add(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > 2 * self._cap:
            self._compact()

    def _compact(self) -> None:
        joined = b"".join(self._chunks)
        excess = max(0, len(joined) - self._cap)
        self.dropped += excess
        self._chunks = [joined[excess:]]
        self._size = len(self._chunks[0])

    def text(self) -> str:
        self._compact()
        return self._chunks[0].decode("utf-8", errors="replace") if self._chunks else ""


def clean_env(
    extra: Mapping[str, str] | None = None, *, keep_secrets: bool = False
) -> dict[str, str]:
    """The current environment without secrets (unless ``keep_secrets``), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if keep_secrets or not secret_name(k)}
    if extra:
        env.update(extra)
    return env


async def _stop(proc: asyncio.subprocess.Process, marker: str) -> None:
    """End the command's whole tree: its process group, its descendants and every process
    carrying its marker (SIGTERM, then SIGKILL after a grace), and reap the leader."""
    await proctree.kill_tree(proc.pid, marker=marker, group=True, grace=KILL_GRACE)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(KILL_GRACE):
            await proc.wait()


async def run(
    args: Sequence[str] | str,
    *,
    cwd: Path | str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cap: int = DEFAULT_CAP,
    stdin: bytes | None = None,
    marker: str = "",
    on_output: Callable[[bytes], None] | None = None,
    stdout: int | None = None,
) -> Completed:
    """Run a command (an argument list, or a string run by ``/bin/sh -c``) and wait for it.

    The command gets its own session (process group) and a marker in its environment
    (:data:`blitz.proctree.MARKER_VARIABLE`: ``marker``, else a fresh one). On timeout, or if
    the awaiting task is cancelled, its whole tree is terminated and then killed.
    ``on_output`` sees the output (stdout and stderr) as it comes, chunk by chunk. With
    ``stdout`` (an open file descriptor) the command's stdout goes there instead, and the
    output kept is its stderr alone.
    """
    argv = argv_of(args)
    start = time.monotonic()
    pipes = (
        {"stderr": asyncio.subprocess.STDOUT}
        if stdout is None
        else {"stdout": stdout, "stderr": asyncio.subprocess.PIPE}
    )
    proc, marker = await _spawn(argv, cwd, env, stdin, marker=marker, **pipes)
    tail = _Tail(cap)

    async def read_output() -> None:
        pipe = proc.stdout if stdout is None else proc.stderr
        assert pipe is not None
        while chunk := await pipe.read(65536):
            tail.add(chunk)
            if on_output is not None:
                on_output(chunk)

    timed_out = await _drive(proc, [read_output()], stdin, timeout, marker)
    return _completed(argv, proc, tail, start, timed_out)


def argv_of(args: Sequence[str] | str) -> tuple[str, ...]:
    """The argument list of a command: a string is run by ``/bin/sh -c``."""
    return ("/bin/sh", "-c", args) if isinstance(args, str) else tuple(args)


async def _spawn(
    argv: tuple[str, ...],
    cwd: Path | str,
    env: Mapping[str, str] | None,
    stdin: bytes | None,
    *,
    stdout: int = asyncio.subprocess.PIPE,
    stderr: int,
    marker: str,
) -> tuple[asyncio.subprocess.Process, str]:
    """Start the command in a session of its own; returns it and its marker."""
    full_env = dict(env) if env is not None else dict(os.environ)
    # Always a fresh marker: one inherited from a parent run would make a kill reach its kin.
    marker = full_env[proctree.MARKER_VARIABLE] = marker or proctree.new_marker()
    spawning = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            cwd=str(cwd),
            env=full_env,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    )
    try:
        proc = await asyncio.shield(spawning)
    except asyncio.CancelledError:
        # Cancelled while asyncio connects the pipes: cancelling that would wait for the command
        # to exit and for every process holding its pipes (for ever, for a hung command). Let
        # the start finish, then stop the command's tree.
        await asyncio.shield(_abandon(spawning, marker))
        raise
    return proc, marker


async def _abandon(spawning: asyncio.Future[asyncio.subprocess.Process], marker: str) -> None:
    with contextlib.suppress(Exception):
        await _stop(await spawning, marker)


async def _drive(
    proc: asyncio.subprocess.Process,
    readers: list[Coroutine[Any, Any, None]],
    stdin: bytes | None,
    timeout: float,
    marker: str,
) -> bool:
    """Feed ``stdin``, run the pipe ``readers`` until the command ends, and stop its whole
    group on timeout or cancellation; True if it timed out. A reader's exception (a failing
    line callback) stops the group and propagates."""

    async def pump() -> None:
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await proc.stdin.drain()
            proc.stdin.close()
        jobs = [asyncio.ensure_future(r) for r in readers]
        try:
            # Process.wait() also waits for the pipes to close, which a background child of the
            # command can hold open forever; the return code is set as soon as the leader exits.
            delay = 0.001
            while proc.returncode is None and not all(j.done() for j in jobs):
                if any(j.done() and j.exception() for j in jobs):
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            for job in jobs:
                if job.done() and job.exception():
                    await job  # raises it
            if proc.returncode is None:
                await proc.wait()
            # A background child of the command may keep a pipe open after the leader exited:
            # give it a moment to finish writing, then end the group and whatever left it (it
            # carries the marker) so the pipes close.
            _, pending = await asyncio.wait(jobs, timeout=1.0)
            if pending:
                proctree.send_group(proc.pid, signal.SIGKILL)
                for pid in proctree.marked(marker):
                    proctree.send(pid, signal.SIGKILL)
            for job in jobs:
                await job
        finally:
            for job in jobs:
                job.cancel()

    try:
        # In this task, not a task of its own (as wait_for makes): a cancellation then reaches
        # the pump at once and cannot be lost between two tasks.
        async with asyncio.timeout(timeout):
            await pump()
    except TimeoutError:
        await _stop(proc, marker)
        return True
    except BaseException:
        await asyncio.shield(_stop(proc, marker))
        raise
    # The leader exited; background children it left in its group are not ours to keep.
    proctree.send_group(proc.pid, signal.SIGKILL)
    return False


def _completed(
    argv: tuple[str, ...],
    proc: asyncio.subprocess.Process,
    tail: _Tail,
    start: float,
    timed_out: bool,
) -> Completed:
    return Completed(
        args=argv,
        exit_code=None if timed_out else proc.returncode,
        output=tail.text(),
        dropped=tail.dropped,
        duration=time.monotonic() - start,
        timed_out=timed_out,
    )


class _Lines:
    """Splits a byte stream into lines, keeping at most ``cap`` bytes of each line."""

    __slots__ = ("_buffer", "_cap", "_overflow")

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._buffer = bytearray()
        self._overflow = 0  # bytes of the current line dropped past the cap

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            self._take(data[start:end])
            lines.append(self._finish())
            start = end + 1
        self._take(data[start:])
        return lines

    def close(self) -> list[str]:
        """The last line, if the stream did not end with a newline."""
        return [self._finish()] if self._buffer or self._overflow else []

    def _take(self, data: bytes) -> None:
        room = self._cap - len(self._buffer)
        self._buffer += data[:room]
        self._overflow += max(0, len(data) - room)

    def _finish(self) -> str:
        line = self._buffer.decode("utf-8", errors="replace").removesuffix("\r")
        if self._overflow:
            line += f" [... {self._overflow} bytes of this line dropped ...]"
        self._buffer = bytearray()
        self._overflow = 0
        return line


async def stream(
    args: Sequence[str] | str,
    *,
    cwd: Path | str,
    timeout: float,
    on_line: Callable[[str], Awaitable[None]],
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    cap: int = DEFAULT_CAP,
    line_cap: int = LINE_CAP,
    marker: str = "",
) -> Completed:
    """Run a command like :func:`run`, awaiting ``on_line`` with each line of its stdout as it
    arrives (decoded as UTF-8, newline stripped, at most ``line_cap`` bytes of it).

    ``Completed.output`` holds the tail of stdout and stderr together, as :func:`run` does. The
    timeout covers ``on_line`` too; if ``on_line`` raises, the command's group is stopped and
    the exception propagates.
    """
    argv = argv_of(args)
    start = time.monotonic()
    proc, marker = await _spawn(
        argv, cwd, env, stdin, stderr=asyncio.subprocess.PIPE, marker=marker
    )
    tail = _Tail(cap)

    async def read_stdout() -> None:
        assert proc.stdout is not None
        lines = _Lines(line_cap)
        while chunk := await proc.stdout.read(65536):
            tail.add(chunk)
            for line in lines.feed(chunk):
                await on_line(line)
        for line in lines.close():
            await on_line(line)

    async def read_stderr() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            tail.add(chunk)

    timed_out = await _drive(proc, [read_stdout(), read_stderr()], stdin, timeout, marker)
    return _completed(argv, proc, tail, start, timed_out)
