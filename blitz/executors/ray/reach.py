"""Whether a Ray cluster's address answers at all, asked before Ray is: ``ray.init`` retries a
closed or silent address for minutes (and its thread cannot be stopped), so a daemon pointed at
the wrong address would hang at its start instead of saying so."""

from __future__ import annotations

import asyncio
import contextlib

from blitz.errors import ConfigError

PROBE_TIMEOUT = 5.0
"""Seconds a TCP connection to the cluster's address may take to open."""


async def probe(address: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Open (and close) a TCP connection to ``address`` (``HOST:PORT``); a ConfigError naming
    the address when nothing answers there. Addresses Ray resolves itself (``auto``,
    ``ray://...``, none) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or "://" in address or not port.isdigit():
        return
    host = host.strip("[]")  # an IPv6 literal, [::1]:6379
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, int(port))
    except TimeoutError as exc:
        why = f"no answer within {timeout:g}s"
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {why}") from exc
    except ConnectionRefusedError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: connection refused") from exc
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {why}") from exc
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
