"""What the gateway tests share about goals: how long to wait, which goal a conversation
started (read from fleet's submit tool's answer, as the model saw it), a goal's state."""

from __future__ import annotations

import re
import time
from typing import Any

from conftest import Daemon

from blitz.testing.model_server import ModelServer

TURN_TIMEOUT = 120.0
"""Seconds a scripted model turn may take through the gateway on a loaded machine."""

GOAL_TIMEOUT = 300.0
"""Seconds for a one-task goal (scripted agent, gates, push, pull request) and its news."""


def submitted_goal(model: ModelServer, title: str) -> str:
    """The id of the goal ``title`` that fleet's submit tool started."""
    pattern = rf"Started goal (\S+) on \S+: {re.escape(title)} \(state"
    ids = {m.group(1) for r in model.requests for m in re.finditer(pattern, r.tool_results)}
    assert len(ids) == 1, f"goal {title!r} started {len(ids)} times: {ids}"
    return ids.pop()


def await_state(daemon: Daemon, goal_id: str, states: set[str]) -> dict[str, Any]:
    """The goal once it is in one of ``states``."""
    deadline = time.monotonic() + GOAL_TIMEOUT
    goal = daemon.goal(goal_id)
    while goal["state"] not in states:
        assert time.monotonic() < deadline, f"{goal_id} stayed {goal['state']}: {goal}"
        time.sleep(0.5)
        goal = daemon.goal(goal_id)
    return goal
