"""The store's queries and its transactions outside group commit, on SQLite and PostgreSQL:
finding goals and projects, deleting a project, commands, and replacing a goal's plan."""

from __future__ import annotations

from sample_records import (
    event,
    make_attempt,
    make_baseline,
    make_breaker,
    make_goal,
    make_project,
    make_recovery,
    make_task,
)

from blitz.domain import GoalState
from blitz.events import EventKind
from blitz.store.sql import SqlStore


def test_commands_are_taken_once_in_order(store: SqlStore) -> None:
    first = store.add_command("g-1", "cancel")
    second = store.add_command("g-2", "cancel")
    assert second > first
    third = store.add_command("g-3", "cancel")
    taken = store.take_commands(["g-1", "g-2"])
    assert [(c.id, c.goal_id) for c in taken] == [(first, "g-1"), (second, "g-2")]
    assert all(c.created_at > 0 for c in taken)
    assert store.take_commands(["g-1", "g-2"]) == []
    assert [c.id for c in store.take_commands(["g-3"])] == [third]


# -- replacing a plan ------------------------------------------------------------------------------


def test_replace_plan_swaps_the_goals_tasks_durably(store: SqlStore) -> None:
    store.write(make_task("t1"), make_task("t2"), make_task("t1", goal_id="g-2"))
    store.flush_sync()
    # Staged tasks of the goal belong to the plan being replaced; another goal's stay staged.
    store.write(make_task("t3"), make_task("t2", goal_id="g-2"), events=[event(message="kept")])
    edited = [make_task("t2", title="edited", depends_on=()), make_task("t4", depends_on=("t2",))]

    store.replace_plan("g-1", edited)

    assert store.load_tasks("g-1") == edited  # durable without a flush
    assert store.load_tasks("g-2") == [make_task("t1", goal_id="g-2")]
    store.flush_sync()
    assert store.load_tasks("g-1") == edited
    assert [t.id for t in store.load_tasks("g-2")] == ["t1", "t2"]
    assert [e.message for e in store.events()] == ["kept"]
    store.replace_plan("g-1", [])
    assert store.load_tasks("g-1") == []


# -- queries ---------------------------------------------------------------------------------------


def test_get_goal_by_id_or_unique_prefix(store: SqlStore) -> None:
    store.write(make_goal("g-3f9a1c2b"), make_goal("g-3f9a77aa"), make_goal("g-3f"))
    store.flush_sync()
    assert store.get_goal("g-3f9a1") == make_goal("g-3f9a1c2b")
    assert store.get_goal("g-3f9a") is None  # two goals start with it
    assert store.get_goal("g-3f") == make_goal("g-3f")  # an exact id beats prefixes
    assert store.get_goal("G-3F9A1") is None  # prefixes are case-sensitive
    assert store.get_goal("g-3f9a1%") is None  # no LIKE wildcards
    assert store.get_goal("nothing") is None
    assert store.get_goal("") is None


def test_list_goals_newest_first_with_filters(store: SqlStore) -> None:
    store.write(
        make_goal("g-old", created_at=1.0, state=GoalState.SUCCEEDED),
        make_goal("g-new", created_at=3.0, state=GoalState.RUNNING),
        make_goal("g-mid", project_id="p-2", created_at=2.0, state=GoalState.RUNNING),
    )
    store.flush_sync()
    assert [g.id for g in store.list_goals()] == ["g-new", "g-mid", "g-old"]
    assert [g.id for g in store.list_goals(project_id="p-1")] == ["g-new", "g-old"]
    assert [g.id for g in store.list_goals(states={GoalState.RUNNING})] == ["g-new", "g-mid"]
    assert store.list_goals(project_id="p-2", states=[GoalState.SUCCEEDED]) == []


def test_get_project_prefers_the_id_over_another_projects_name(store: SqlStore) -> None:
    store.write(make_project("p-1", name="p-2"), make_project("p-2", name="other"))
    store.flush_sync()
    assert store.get_project("p-2") == make_project("p-2", name="other")
    assert store.get_project("other") == make_project("p-2", name="other")
    assert store.get_project("missing") is None


def test_delete_project_removes_everything_of_its_goals_but_keeps_the_event_log(
    store: SqlStore,
) -> None:
    def everything(project: str, goal: str) -> None:
        store.write(
            make_project(project),
            make_goal(goal, project_id=project),
            make_task("t1", goal_id=goal),
            make_attempt(f"a-{goal}", goal_id=goal),
            make_recovery(f"r-{goal}", goal_id=goal),
            make_baseline(goal),
            make_breaker(f"project:{project}"),
            events=[
                event(goal_id=goal, message=f"{goal} event"),
                event(EventKind.PROJECT_ADDED, project_id=project, message=f"{project} event"),
            ],
        )

    everything("p-1", "g-1")
    everything("p-2", "g-2")
    store.add_command("g-1", "cancel")
    store.flush_sync()
    # Rows staged but not yet flushed belong to the project too.
    store.write(make_goal("g-staged", project_id="p-1"), make_task("t9", goal_id="g-staged"))
    store.write(events=[event(goal_id="g-staged", message="staged event")])

    store.delete_project("p-1")
    store.flush_sync()

    assert [p.id for p in store.list_projects()] == ["p-2"]
    assert [g.id for g in store.list_goals()] == ["g-2"]
    for goal in ("g-1", "g-staged"):
        assert store.load_tasks(goal) == []
        assert store.load_attempts(goal) == []
        assert store.load_recoveries(goal) == []
        assert store.load_baseline(goal) is None
    assert [b.key for b in store.load_breakers()] == ["project:p-2"]
    # The log is append-only: ids are never reused, so a follower never skips a new event.
    assert [e.message for e in store.events()] == [
        "g-1 event",
        "p-1 event",
        "g-2 event",
        "p-2 event",
        "staged event",
    ]
    newest = store.events()[-1].id
    store.write(events=[event(goal_id="g-2", message="after")])
    store.flush_sync()
    assert store.events(after=newest)[0].message == "after"
    assert store.take_commands(["g-1", "g-2"]) == []
    assert store.load_tasks("g-2") == [make_task("t1", goal_id="g-2")]
    assert store.load_attempts("g-2") == [make_attempt("a-g-2", goal_id="g-2")]


def test_events_newest_reads_only_the_last_ones_oldest_first(store: SqlStore) -> None:
    store.write(
        events=[event(goal_id="g-1" if i % 2 else "g-2", message=f"m{i}") for i in range(7)]
    )
    store.flush_sync()
    assert [e.message for e in store.events(limit=3, newest=True)] == ["m4", "m5", "m6"]
    assert [e.message for e in store.events(goal_id="g-1", limit=2, newest=True)] == ["m3", "m5"]
    first = store.events(limit=1)[0].id
    # ``after`` still bounds them: the newest of those after the first, never the first itself.
    assert [e.message for e in store.events(after=first, limit=9, newest=True)] == [
        f"m{i}" for i in range(1, 7)
    ]
    assert store.events(goal_id="g-9", limit=3, newest=True) == []
