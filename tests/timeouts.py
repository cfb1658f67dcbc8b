"""Timeout tests that do not race the machine.

A test of "X is stopped at its timeout, with its children" needs X to have started its children
before the timeout fires. With one short timeout that is a race: on a loaded machine (CI, two
cores shared by several test runs) the shell, the sandbox or the agent CLI may not have got that
far yet, and the test fails, or, worse, passes without the children it meant to see killed.
:func:`long_enough` runs the thing again with a doubled timeout until the run got as far as the
test needs, so a quiet machine takes one short run and a loaded one a few longer ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["long_enough"]

T = TypeVar("T")


async def long_enough(
    run: Callable[[float], Awaitable[T]],
    got_far_enough: Callable[[T], bool],
    *,
    first: float,
    limit: float = 64.0,
) -> tuple[T, float]:
    """``run(timeout)`` with ``first`` seconds, then twice as long each time, until
    ``got_far_enough(result)``: the result and the timeout it ran with. Fails the test when
    even ``limit`` seconds were not enough (then something is wrong, not slow)."""
    timeout = first
    while True:
        result = await run(timeout)
        if got_far_enough(result):
            return result, timeout
        assert timeout * 2 <= limit, f"not far enough with a timeout of {timeout:g}s: {result!r}"
        timeout *= 2
