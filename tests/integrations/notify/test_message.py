"""What a notification about a goal says: the goal's summary (how far it got, what it cost, why
it failed, what to do, in commands a person can type), built from the store as it is."""

from __future__ import annotations

from pathlib import Path

from blitz.domain import Goal, GoalState, Project, Task, TaskState
from blitz.events import Event, EventKind
from blitz.integrations.notify.message import compose
from blitz.store.sql import SqlStore


async def test_a_failed_goal_s_notification_says_why_and_what_to_do(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'blitz.db'}")
    try:
        project = Project(id="p-1", name="shop", path=str(tmp_path))
        goal = Goal(
            id="g-1",
            project_id="p-1",
            title="Add a cart",
            state=GoalState.FAILED,
            error="task cart failed",
        )
        tasks = [
            Task(id="model", goal_id="g-1", title="Model", state=TaskState.SUCCEEDED),
            Task(
                id="cart",
                goal_id="g-1",
                title="Cart",
                state=TaskState.FAILED,
                reason="test failed: tests/test_cart.py::test_total\nmore output",
            ),
        ]
        store.write(
            project,
            goal,
            *tasks,
            events=[Event(kind=EventKind.GOAL_FAILED, goal_id="g-1", message="task cart failed")],
        )
        await store.flush()
        (notification,) = store.outbox.unexpanded()
        message = compose(notification, store)
    finally:
        await store.aclose()
    assert message.title == "❌ Goal g-1 failed (shop)"
    text = message.text()
    assert "Add a cart (g-1, shop): failed" in text
    assert "1/2 tasks done, 1 failed (cart); $0.00 spent" in text
    assert "- cart: test failed: tests/test_cart.py::test_total" in text
    assert "retry task cart in the dashboard" in text and "skip task cart" in text
    assert text.count("task cart failed") == 1  # the event's message is the summary's why
    assert message.payload()["goal"]["tasks"] == {
        "done": 1,
        "total": 2,
        "by_state": {"succeeded": 1, "failed": 1},
    }
