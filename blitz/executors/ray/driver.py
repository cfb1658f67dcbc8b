"""The Ray driver of a daemon, in a child process of its own.

A process connected to a Ray cluster is Ray's to end: when the cluster's head goes away for longer
than Ray's reconnect timeout (60 s), or comes back as a new cluster, Ray's core worker aborts the
whole process. The daemon must outlive that (its tasks wait, the ``executor`` breaker opens and
closes when the cluster is back), so it never calls ``ray.init`` itself: :class:`Driver` starts
``python -m blitz.executors.ray.driver_main`` and asks it, over a socket pair, for what it needs
from Ray: the cluster's nodes, what a node holds, and one streamed attempt at a time. When that
child dies, every call and stream waiting on it fails with :class:`DriverLost`, and the executor
starts a new one once the cluster answers again.

The child gets the daemon's environment without secrets (:func:`blitz.process.clean_env`): nothing
of the daemon's keys is in the process that talks to Ray. Frames are a 4-byte length and a pickle
of a tuple; both ends are blitz's own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pickle
import socket
import struct
import sys
from collections.abc import AsyncGenerator
from typing import Any

from blitz import proctree
from blitz.process import clean_env

CANCEL_GRACE = 15.0
"""Seconds a cancelled remote attempt has to clean up before its task is force-cancelled."""

MAX_FRAME = 1 << 31
"""The largest frame either end accepts (a bundle of a big repository's history)."""

STDERR_KEPT = 4000
"""Characters of the child's last output kept to say why it ended."""

_HEADER = struct.Struct(">I")


class DriverLost(Exception):
    """The driver process ended (the cluster went away, or it could not connect)."""


class RemoteFault(Exception):
    """Ray failed under a call: ``kind`` is ``node`` (the node died), ``cluster`` (the cluster is
    gone) or ``error`` (anything else)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


async def send(writer: asyncio.StreamWriter, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_HEADER.pack(len(data)) + data)
    await writer.drain()


async def receive(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    """The next frame; IncompleteReadError at the end of the stream."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes is over the limit")
    message: tuple[Any, ...] = pickle.loads(await reader.readexactly(size))
    return message


class Driver:
    """The parent's handle on one driver process (see the module's docstring)."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        marker: str,
    ) -> None:
        self._proc = proc
        self._reader = reader
        self._writer = writer
        self._marker = marker
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, asyncio.Queue[tuple[Any, ...]]] = {}
        self._write = asyncio.Lock()
        self._output = ""
        self.lost = ""  # why the driver ended ("" while it runs)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(
        cls,
        address: str,
        namespace: str,
        *,
        timeout: float,
        gcs_timeout: float = 0,
        warm: bool = False,
    ) -> Driver:
        """A driver process connected to the cluster at ``address`` (warming each worker node it
        sees when ``warm``); DriverLost saying why when it could not connect within ``timeout``
        seconds."""
        ours, theirs = socket.socketpair()
        marker = proctree.new_marker()
        env = clean_env({proctree.MARKER_VARIABLE: marker})
        if gcs_timeout:
            env["RAY_gcs_rpc_server_reconnect_timeout_s"] = str(int(gcs_timeout))
        with theirs:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "blitz.executors.ray.driver_main",
                str(theirs.fileno()), address, namespace, *(["warm"] if warm else []),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )  # fmt: skip
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=1 << 20)
        driver = cls(proc, reader, writer, marker)
        driver._tasks.append(asyncio.create_task(driver._collect_output()))
        try:
            async with asyncio.timeout(timeout):
                first = await receive(reader)
        except (TimeoutError, asyncio.IncompleteReadError, OSError) as exc:
            await driver.close()
            why = "no answer in time" if isinstance(exc, TimeoutError) else "it ended"
            raise DriverLost(f"{why}{driver._last_words()}") from exc
        if first[0] != "ready":
            await driver.close()
            raise DriverLost(str(first[1]) if len(first) > 1 else repr(first))
        driver._tasks.append(asyncio.create_task(driver._route()))
        return driver

    @property
    def alive(self) -> bool:
        return not self.lost

    @property
    def exited(self) -> bool:
        """Whether the driver process has ended (and been reaped)."""
        return self._proc.returncode is not None

    async def call(self, op: str, *args: Any, timeout: float) -> Any:
        """One request and its reply; RemoteFault, DriverLost, or TimeoutError after
        ``timeout`` seconds."""
        self._check()
        rid = next(self._ids)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[rid] = reply
        try:
            await self._send((op, rid, *args))
            async with asyncio.timeout(timeout):
                return await reply
        finally:
            self._calls.pop(rid, None)

    async def attempt(self, *args: Any) -> AsyncGenerator[tuple[str, Any], None]:
        """Run one attempt's Ray task (``node_id, resources, job, data``), yielding what it
        streams back; RemoteFault or DriverLost when it fails. Cancelling the consumer cancels
        the task (politely, then by force) before the cancellation goes on."""
        self._check()
        rid = next(self._ids)
        items: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._streams[rid] = items
        ended = False
        try:
            await self._send(("run", rid, *args))
            while True:
                message = await items.get()
                if message[0] == "item":
                    yield message[2]
                    continue
                ended = True
                if message[0] == "end":
                    return
                if message[0] == "lost":
                    raise DriverLost(self.lost)
                raise RemoteFault(message[2], message[3])  # ("fail", rid, kind, text)
        except asyncio.CancelledError:
            await self._cancel(rid, items)
            raise
        except GeneratorExit:  # the consumer stopped reading: the task is not waited for
            if not ended:
                self._tasks.append(asyncio.create_task(self._send_quietly(("cancel", rid))))
            raise
        finally:
            self._streams.pop(rid, None)

    async def _cancel(self, rid: int, items: asyncio.Queue[tuple[Any, ...]]) -> None:
        """Ask the driver to cancel the attempt and wait (shielded, bounded) until it ended."""

        async def ended() -> None:
            with contextlib.suppress(DriverLost, OSError, TimeoutError):
                async with asyncio.timeout(CANCEL_GRACE + 10):
                    await self._send(("cancel", rid))
                    while (await items.get())[0] == "item":
                        pass

        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(ended())

    async def close(self) -> None:
        """End the driver: it disconnects from the cluster (its Ray tasks end with it); killed
        with its whole tree if it has not ended within a few seconds."""
        self._lose("the executor was closed")
        with contextlib.suppress(Exception):
            self._writer.close()
        try:
            async with asyncio.timeout(10):
                await self._proc.wait()
        except TimeoutError:
            await proctree.kill_tree(self._proc.pid, marker=self._marker, group=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- plumbing ------------------------------------------------------------------------------

    def _check(self) -> None:
        if self.lost:
            raise DriverLost(self.lost)

    async def _send(self, message: tuple[Any, ...]) -> None:
        try:
            async with self._write:
                await send(self._writer, message)
        except (OSError, RuntimeError) as exc:
            self._lose(f"the driver process cannot be reached: {exc}")
            raise DriverLost(self.lost) from exc

    async def _send_quietly(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(DriverLost):
            await self._send(message)

    async def _route(self) -> None:
        try:
            while True:
                message = await receive(self._reader)
                kind, rid = message[0], message[1]
                if kind in ("reply", "error"):
                    reply = self._calls.get(rid)
                    if reply is not None and not reply.done():
                        if kind == "reply":
                            reply.set_result(message[2])
                        else:
                            reply.set_exception(RemoteFault(message[2], message[3]))
                elif (items := self._streams.get(rid)) is not None:
                    items.put_nowait(message)
        except (asyncio.IncompleteReadError, OSError, ValueError, pickle.UnpicklingError):
            pass
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._proc.wait()
        code = self._proc.returncode
        self._lose(f"the Ray driver process ended (exit {code}){self._last_words()}")

    def _lose(self, why: str) -> None:
        if self.lost:
            return
        self.lost = why
        for reply in self._calls.values():
            if not reply.done():
                reply.set_exception(DriverLost(why))
        for items in self._streams.values():
            items.put_nowait(("lost", 0))

    async def _collect_output(self) -> None:
        assert self._proc.stdout is not None
        while chunk := await self._proc.stdout.read(4096):
            self._output = (self._output + chunk.decode(errors="replace"))[-STDERR_KEPT:]

    def _last_words(self) -> str:
        lines = [line for line in self._output.splitlines() if line.strip()]
        important = [line for line in lines if " C " in line or "Error" in line or "error" in line]
        last = (important or lines)[-1:] if lines else []
        return f": {last[0].strip()[:300]}" if last else ""
