"""How an action on a goal reaches the process that drives it: applied in the caller's engine
(taking the goal on when nobody drives it), or queued in the store for the process that does,
which applies it on its next step (:mod:`blitz.actions` decides which)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from blitz.conductor.ownership import GoalTaken
from blitz.domain import GOAL_DONE, Goal, GoalState
from blitz.errors import Conflict, UserError
from blitz.store.base import Store

if TYPE_CHECKING:
    from blitz.conductor import Engine


class Applied(StrEnum):
    """Where an action took effect."""

    ENGINE = "engine"  # in the caller's engine
    QUEUED = "queued"  # stored for the process that drives the goal
    STORE = "store"  # nobody drives the goal: written to the store directly


@dataclass(frozen=True, slots=True)
class Done:
    """An action on a goal: the goal as found, and where the action took effect."""

    goal: Goal
    applied: Applied


async def queue(store: Store, goal: Goal, command: str) -> Done:
    await asyncio.to_thread(store.add_command, goal.id, command)
    return Done(goal=goal, applied=Applied.QUEUED)


async def steer(
    store: Store,
    engine: Engine,
    goal: Goal,
    action: str,
    apply: Callable[[], Awaitable[None] | None],
    *,
    command: str | None,
    reopens: bool = False,
) -> Done:
    """Apply ``apply`` in ``engine``, taking the goal on if nobody drives it; or queue
    ``command`` for the process that drives it (None: only that process can do it)."""
    ended = goal.state in GOAL_DONE or goal.id in engine.finished
    if ended and (not reopens or goal.state is GoalState.SUCCEEDED):
        raise Conflict(f"goal {goal.id} already ended ({goal.state.value})")
    if not ended and goal.id not in engine.runs:
        try:
            await engine.resume(goal)  # a claim: it succeeds if nobody drives the goal
        except GoalTaken as exc:
            if not exc.holder:  # it ended meanwhile
                raise Conflict(str(exc)) from exc
            if command is None:
                raise Conflict(
                    f"{exc}; only that process can {action} it with an edited plan"
                ) from exc
            return await queue(store, goal, command)
    try:
        pending = apply()
        if pending is not None:
            await pending
    except UserError as exc:
        raise Conflict(str(exc)) from exc
    await store.flush()
    return Done(goal=goal, applied=Applied.ENGINE)


def require_driver(store: Store, goal: Goal) -> None:
    """Refuse to queue an approval nobody would apply: a goal that waits for approval is not
    taken up by ``blitz resume`` or a daemon by itself, so with no live process driving it the
    request would wait for ever."""
    lease = store.lease(goal.id)
    if lease is not None and lease.live(time.time()):
        return
    raise UserError(
        f"no process drives goal {goal.id} now (the one that planned it ended), and none takes "
        "up a goal that waits for approval by itself: approve it through a daemon, which takes "
        f"it on: `blitz serve`, then `blitz approve {goal.id} --server URL` (or its dashboard)"
    )
