"""Gate results kept so that no gate runs twice on the same input.

A gate's result depends on the tree it ran on, its command, its timeout and the environment the
project's set-up made (the set-up inputs' digest, :func:`blitz.envsetup.inputs_digest`): a
:class:`GateKey` names all of them, with the project. A result is kept *unjudged* (its
``new_failures`` hold every failing id it found, ``preexisting`` is false), because the same
result is judged against each goal's own baseline when it is reused.

Only results of a command that ran to its end are kept: never a timed-out, cancelled or not-run
one (``exit_code`` None), which says nothing about the tree.

:class:`GateCache` is the interface the :class:`~blitz.validation.Validator` uses; the store's
table ``gate_results`` is the durable one (shared by every process on the store), and
:class:`MemoryGateCache` keeps results for one process (tests, benchmarks). :class:`GateFlights`
makes a validation wait for the same gate on the same input already running (in the process, and
in the other processes on the data directory).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from blitz.domain import GateResult

if TYPE_CHECKING:
    import asyncio


@dataclass(frozen=True, slots=True, kw_only=True)
class GateKey:
    """What a gate's result depends on."""

    project_id: str
    tree: str  # git tree id of the worktree's content (untracked files included, ignored not)
    command: str
    timeout: float
    env_digest: str = ""  # the set-up inputs' digest ("" when the project has no set-up)

    @property
    def digest(self) -> str:
        """A short, fixed-length name of the key (the store's primary key)."""
        parts = [
            self.project_id,
            self.tree,
            self.command,
            repr(float(self.timeout)),
            self.env_digest,
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedGate:
    """A kept result, as the store holds it."""

    digest: str
    key: GateKey
    result: GateResult
    created_at: float = 0.0


class GateCache(Protocol):
    """Where unjudged gate results are kept and found."""

    def get(self, key: GateKey) -> GateResult | None: ...

    def put(self, key: GateKey, result: GateResult) -> None: ...


def keepable(result: GateResult) -> bool:
    """Whether ``result`` says something about its tree: the command ran to its end."""
    return result.exit_code is not None and not result.timed_out


class MemoryGateCache:
    """A :class:`GateCache` in memory, for one process."""

    def __init__(self) -> None:
        self.results: dict[GateKey, GateResult] = {}

    def get(self, key: GateKey) -> GateResult | None:
        return self.results.get(key)

    def put(self, key: GateKey, result: GateResult) -> None:
        if keepable(result):
            self.results[key] = result


class GateFlights:
    """Gates running now, by key, so that a second validation of the same tree (goals starting
    from one base commit at once, best-of-N candidates that made the same tree) waits for the
    first run's result instead of running the gate again. One per process and event loop; with a
    ``lock_dir`` (one per data directory) processes sharing it wait for each other too, each
    holding an ``flock`` per key while it runs the gate."""

    def __init__(self, *, lock_dir: Path | None = None) -> None:
        self._running: dict[GateKey, asyncio.Future[GateResult]] = {}
        self.lock_dir = lock_dir
        self.waits = 0
        """How many times a run waited for another one (for tests and figures)."""

    def _waited(self) -> None:
        self.waits += 1

    async def run(
        self, key: GateKey, gate: Callable[[], Awaitable[GateResult]]
    ) -> tuple[GateResult, bool]:
        """The result of ``gate`` for ``key``, and whether it came from a run of another
        caller. A run ahead that is cancelled, fails, or says nothing about the tree (timed out)
        does not stand for this one: then this one runs."""
        import asyncio  # here, as filelock below: the store's row codecs import this module,
        # and ``blitz status`` starts without asyncio (a tenth of a second)

        while (ahead := self._running.get(key)) is not None:
            self.waits += 1
            try:
                result = await asyncio.shield(ahead)
            except asyncio.CancelledError:
                if not ahead.done():
                    raise  # this caller was cancelled, not the run ahead
                continue
            if keepable(result):
                return result, True
            break
        mine: asyncio.Future[GateResult] = asyncio.get_running_loop().create_future()
        self._running[key] = mine
        try:
            result = await gate()
        except BaseException:
            mine.cancel()  # whoever waits runs the gate itself
            raise
        finally:
            if self._running.get(key) is mine:
                del self._running[key]
        mine.set_result(result)
        return result, False

    @contextlib.asynccontextmanager
    async def across_processes(self, key: GateKey) -> AsyncIterator[None]:
        """Hold ``key`` against the other processes on ``lock_dir`` (nothing without one): the
        holder runs the gate, the others wait, then find its result kept."""
        if self.lock_dir is None:
            yield
            return
        from blitz import filelock

        path = self.lock_dir / f"gate-{key.digest}.lock"
        fd = await filelock.acquire(path, on_wait=self._waited)
        try:
            yield
        finally:
            # Best effort, so lock files do not pile up: a process that opened this file
            # meanwhile, or opens a new one, may run the gate too (it finds the result kept).
            with contextlib.suppress(OSError):
                path.unlink()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
