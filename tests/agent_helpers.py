"""What every test of an agent backend gives it and reads back: the task an agent is given and a
sink for the messages it streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blitz.backends.base import AgentRequest


def task(worktree: Path, **changes: Any) -> AgentRequest:
    """The request for task t1 (add hello.py) in ``worktree``, with ``changes``."""
    fields: dict[str, Any] = {
        "goal_id": "g1",
        "goal": "Greet people",
        "task_id": "t1",
        "title": "Add hello.py",
        "instructions": "Add hello() returning 'hello' in hello.py.",
        "worktree": worktree,
        "timeout": 60.0,
    }
    return AgentRequest(**(fields | changes))


class Sink:
    """Collects the messages a run streams."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def __call__(self, text: str) -> None:
        self.messages.append(text)

    def text(self) -> str:
        return "\n".join(self.messages)
