"""The Ray driver process (:mod:`blitz.executors.ray.driver`): ``python -m
blitz.executors.ray.driver_main FD ADDRESS NAMESPACE [warm]``.

It connects to the cluster, says ``ready`` (or why not) on the socket ``FD``, and then serves the
daemon's requests until the socket closes, when it disconnects (the Ray tasks it owns end with it).
With ``warm`` it also warms each worker node it sees (:mod:`~blitz.executors.ray.warming`).

* ``("state", id)``: Ray's node list and each node's available resources;
* ``("warmed", id)``: the worker processes each warmed node started (node id -> process ids);
* ``("held", id, node, project)``: what ``node`` holds of ``project`` (a tiny task pinned there);
* ``("run", id, node, resources, job, data)``: one attempt's streaming task pinned to ``node``
  asking for ``resources``, its items relayed as they come (``item``), then ``end``, or ``fail``
  with the kind of failure (``node``: the node died; ``cluster``: the cluster is gone);
* ``("cancel", id)``: cancel that attempt's task politely (the worker cancels the attempt, which
  kills its processes), by force after :data:`~blitz.executors.ray.driver.CANCEL_GRACE`.

If the cluster goes away, Ray ends this process; the daemon sees the socket close.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import sys
from typing import Any

from blitz.executors.ray import placement, remote, warming
from blitz.executors.ray.driver import CANCEL_GRACE, receive, send


class Server:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.warmer = warming.Warmer(_warm_up)
        self.writer = writer
        self.lock = asyncio.Lock()
        self.streams: dict[int, Any] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def tell(self, *message: Any) -> None:
        async with self.lock:
            await send(self.writer, message)

    def spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def handle(self, message: tuple[Any, ...]) -> None:
        op, rid, *args = message
        if op == "state":
            self.spawn(self.answer(rid, asyncio.to_thread(placement.cluster_state)))
        elif op == "warmed":
            self.spawn(self.answer(rid, _now(dict(self.warmer.warmed))))
        elif op == "held":
            node_id, project = args
            ask = _held_task().options(scheduling_strategy=_pinned(node_id))
            self.spawn(self.answer(rid, _awaited(ask.remote(project))))
        elif op == "run":
            self.spawn(self.run(rid, *args))
        elif op == "cancel":
            self.spawn(self.cancel(rid))

    async def answer(self, rid: int, work: Any) -> None:
        try:
            value = await work
        except Exception as exc:
            await self.tell("error", rid, _kind(exc), _what(exc))
        else:
            await self.tell("reply", rid, value)

    async def run(self, rid: int, node_id: str, resources: Any, job: Any, data: Any) -> None:
        import ray

        try:
            stream = (
                _attempt_task()
                .options(resources=resources, scheduling_strategy=_pinned(node_id))
                .remote(job, ray.put(data) if data is not None else None)
            )
            self.streams[rid] = stream
            async for ref in stream:
                await self.tell("item", rid, await ref)
        except Exception as exc:
            await self.tell("fail", rid, _kind(exc), _what(exc))
        else:
            await self.tell("end", rid)
        finally:
            self.streams.pop(rid, None)

    async def cancel(self, rid: int) -> None:
        import ray

        stream = self.streams.get(rid)
        if stream is None:
            return
        try:
            ray.cancel(stream, force=False)
        except Exception:
            return
        await asyncio.sleep(CANCEL_GRACE)
        if rid in self.streams:  # still not ended: by force
            try:
                ray.cancel(stream, force=True)
            except Exception:
                return


async def _awaited(ref: Any) -> Any:
    return await ref


async def _now(value: Any) -> Any:
    return value


def _warm_up(node_id: str, round_id: str, count: int, backends: tuple[str, ...]) -> Any:
    """One warm-up task pinned to ``node_id`` (:func:`~blitz.executors.ray.warming.warm`)."""
    ask = _warm_task().options(scheduling_strategy=_pinned(node_id))
    return _awaited(ask.remote(round_id, count, backends))


def _kind(exc: BaseException) -> str:
    """``cluster`` (the cluster is gone), ``node`` (the node died) or ``error``."""
    import ray

    if isinstance(exc, ray.exceptions.RaySystemError) and "GCS" in str(exc):
        return "cluster"
    if isinstance(exc, ray.exceptions.RayError):
        return "node"
    return "error"


def _what(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@functools.cache
def _attempt_task() -> Any:
    import ray

    return ray.remote(num_cpus=0, max_retries=0, retry_exceptions=False, num_returns="streaming")(
        remote.attempt_stream
    )


@functools.cache
def _warm_task() -> Any:
    import ray

    return ray.remote(num_cpus=0, max_retries=0)(warming.warm)


@functools.cache
def _held_task() -> Any:
    import ray

    return ray.remote(num_cpus=0, max_retries=0)(remote.held)


def _pinned(node_id: str) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


async def serve(fd: int, address: str, namespace: str, warm: bool = False) -> None:
    import ray

    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd))
    try:
        await asyncio.to_thread(
            ray.init,
            address=address,
            namespace=namespace,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except Exception as exc:
        await send(writer, ("fatal", f"cannot reach the Ray cluster at {address}: {_what(exc)}"))
        return
    await send(writer, ("ready",))
    server = Server(writer)
    if warm:
        server.spawn(server.warmer.watch())
    try:
        while True:
            try:
                message = await receive(reader)
            except (asyncio.IncompleteReadError, OSError):
                return  # the daemon closed the socket, or is gone
            server.handle(message)
    finally:
        for task in server.tasks:
            task.cancel()
        ray.shutdown()


def main(argv: list[str]) -> int:
    fd, address, namespace = int(argv[1]), argv[2], argv[3]
    asyncio.run(serve(fd, address, namespace, warm=argv[4:] == ["warm"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
