"""Finding goals for the goals list (blitz.store.goal_search), on SQLite and PostgreSQL: filters
by project, states and words, newest first, a page at a time, with the number found."""

from __future__ import annotations

from sample_records import make_goal

from blitz.domain import GoalState
from blitz.store.base import GoalQuery
from blitz.store.sql import SqlStore


def _ids(store: SqlStore, **query: object) -> list[str]:
    return [g.id for g in store.find_goals(GoalQuery(**query)).goals]  # type: ignore[arg-type]


def _goals(store: SqlStore) -> None:
    store.write(
        make_goal("g-a1", title="Add rate limiting to the API", created_at=1.0),
        make_goal("g-b2", title="Fix the login form", created_at=2.0, state=GoalState.SUCCEEDED),
        make_goal(
            "g-c3",
            project_id="p-2",
            title="Rate the API's docs",
            created_at=3.0,
            state=GoalState.FAILED,
        ),
        make_goal("g-d4", title="Use 100%_pure names", created_at=4.0, branch="blitz/pure-names"),
    )
    store.flush_sync()


def test_words_are_found_in_the_title_id_or_branch_whatever_their_case(store: SqlStore) -> None:
    _goals(store)
    assert _ids(store) == ["g-d4", "g-c3", "g-b2", "g-a1"]
    assert _ids(store, text="rate") == ["g-c3", "g-a1"]
    assert _ids(store, text="  API   RATE ") == ["g-c3", "g-a1"]  # every word, any order
    assert _ids(store, text="rate limiting") == ["g-a1"]
    assert _ids(store, text="g-b2") == ["g-b2"]  # the id
    assert _ids(store, text="pure-names") == ["g-d4"]  # the branch
    assert _ids(store, text="nowhere") == []


def test_like_wildcards_in_the_text_are_taken_literally(store: SqlStore) -> None:
    _goals(store)
    assert _ids(store, text="100%_pure") == ["g-d4"]
    assert _ids(store, text="%") == ["g-d4"]
    assert _ids(store, text="_") == ["g-d4"]  # "g-d4"'s title; no id or branch has one
    assert _ids(store, text="A%I") == []


def test_project_and_states_narrow_the_search(store: SqlStore) -> None:
    _goals(store)
    assert _ids(store, project_id="p-2") == ["g-c3"]
    assert _ids(store, project_id="p-1", text="rate") == ["g-a1"]
    done = frozenset({GoalState.SUCCEEDED, GoalState.FAILED})
    assert _ids(store, states=done) == ["g-c3", "g-b2"]
    assert _ids(store, states=done, project_id="p-1") == ["g-b2"]
    assert _ids(store, states=frozenset({GoalState.CANCELLED})) == []


def test_pages_split_what_was_found_and_say_how_much_there_is(store: SqlStore) -> None:
    _goals(store)
    first = store.find_goals(GoalQuery(limit=3))
    second = store.find_goals(GoalQuery(limit=3, offset=3))
    assert ([g.id for g in first.goals], first.total) == (["g-d4", "g-c3", "g-b2"], 4)
    assert ([g.id for g in second.goals], second.total) == (["g-a1"], 4)
    beyond = store.find_goals(GoalQuery(limit=3, offset=10))
    assert (beyond.goals, beyond.total) == ([], 4)
    narrowed = store.find_goals(GoalQuery(text="rate", limit=1, offset=1))
    assert ([g.id for g in narrowed.goals], narrowed.total) == (["g-a1"], 2)
    assert first.goals[0] == make_goal(
        "g-d4", title="Use 100%_pure names", created_at=4.0, branch="blitz/pure-names"
    )


def test_goals_created_at_the_same_time_keep_one_order_across_pages(store: SqlStore) -> None:
    store.write(*(make_goal(f"g-{n}", created_at=5.0) for n in range(5)))
    store.flush_sync()
    pages = [_ids(store, limit=2, offset=offset) for offset in (0, 2, 4)]
    assert pages == [["g-4", "g-3"], ["g-2", "g-1"], ["g-0"]]
