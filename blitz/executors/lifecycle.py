"""An executor's life in a process that runs attempts: started (connected to where attempts
run) before the first one, closed at the end. The local executor has neither step; the ray
executor connects to its cluster and lets it go."""

from __future__ import annotations

import inspect

from blitz.errors import BlitzError, ConfigError
from blitz.executors.base import Executor


async def start(executor: Executor, name: str, address: str = "") -> None:
    """Start ``executor`` (named ``name``, reaching its cluster at ``address``): a cluster that
    cannot be reached is a ConfigError naming the address."""
    begin = getattr(executor, "start", None)
    if begin is None:
        return
    try:
        done = begin()
        if inspect.isawaitable(done):
            await done
    except BlitzError:
        raise
    except Exception as exc:  # the executor's own failure: say where it was going
        where = f" at {address}" if address else ""
        raise ConfigError(f"the {name} executor cannot reach its cluster{where}: {exc}") from exc


async def close(executor: Executor | None) -> None:
    """Let ``executor`` go (a Ray executor disconnects); nothing for None or the local one."""
    end = getattr(executor, "close", None)
    if end is not None:
        done = end()
        if inspect.isawaitable(done):
            await done
