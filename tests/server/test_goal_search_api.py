"""The goals list route searches in the store: words, states and project narrow it, pages split
it, and ``X-Total-Count`` says how many goals match (real daemon, store and git)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from server_helpers import AGENT, PLAN, Running, make_repo, problem

from blitz.domain import Goal, GoalState

pytestmark = pytest.mark.timeout(120)


async def _list(r: Running, query: str) -> tuple[list[str], int]:
    response = await r.http.get(f"/api/goals{query}")
    assert response.status_code == 200, response.text
    return [g["id"] for g in response.json()], int(response.headers["x-total-count"])


async def test_goals_are_found_by_words_state_and_project_a_page_at_a_time(
    serve: Any, tmp_path: Path
) -> None:
    r: Running = await serve(AGENT)
    first = await r.add_project(make_repo(tmp_path, "first"))
    second = await r.add_project(make_repo(tmp_path, "second"))
    # A goal run for real, then ended goals of both projects written as the engine writes them.
    ran = await r.submit(first["id"], "Greet the world", plan=PLAN)
    assert (await r.wait_goal(ran["id"]))["state"] == "succeeded"
    states = [GoalState.FAILED, GoalState.SUCCEEDED, GoalState.CANCELLED]
    written = [
        Goal(
            id=f"g-old{n:02}",
            project_id=(first if n % 2 else second)["id"],
            title=f"Old chore {n} for the {'login' if n % 3 == 0 else 'billing'} page",
            state=states[n % 3],
            branch=f"blitz/old-chore-{n}",
            created_at=1000.0 + n,
            finished_at=2000.0 + n,
        )
        for n in range(25)
    ]
    r.daemon.app.store.write(*written)
    await r.daemon.app.store.flush()

    ids, total = await _list(r, "?limit=10")
    assert total == 26 and len(ids) == 10
    assert ids[0] == ran["id"]  # newest first
    assert ids[1:] == [f"g-old{n:02}" for n in range(24, 15, -1)]
    more, total = await _list(r, "?limit=10&offset=20")
    assert (more, total) == ([f"g-old{n:02}" for n in range(5, -1, -1)], 26)

    login, total = await _list(r, "?q=LOGIN%20page")
    assert login == [f"g-old{n:02}" for n in (24, 21, 18, 15, 12, 9, 6, 3, 0)] and total == 9
    _, total = await _list(r, "?q=login&state=failed")  # n % 3 == 0: all failed
    assert total == 9
    assert await _list(r, "?q=login&state=succeeded") == ([], 0)
    ended, total = await _list(r, "?state=succeeded&state=cancelled&limit=3")
    assert total == 17 and ended == [ran["id"], "g-old23", "g-old22"]
    of_second, total = await _list(r, f"?project={second['name']}&q=billing&limit=2")
    assert of_second == ["g-old22", "g-old20"] and total == 8
    by_branch, _ = await _list(r, "?q=old-chore-7")
    assert by_branch == ["g-old07"]

    (listed,) = (await r.http.get("/api/goals?q=world")).json()
    assert listed["project"] == "first" and listed["progress"]["done"] == 3


async def test_a_bad_query_is_refused_with_what_is_wrong(serve: Any, tmp_path: Path) -> None:
    r: Running = await serve(AGENT)
    await r.add_project(make_repo(tmp_path))
    wrong_state = problem(await r.http.get("/api/goals?state=done"), 422)
    assert wrong_state["errors"][0]["field"].startswith("query.state")
    assert problem(await r.http.get("/api/goals?offset=-1"), 422)["errors"][0]["field"] == (
        "query.offset"
    )
    assert problem(await r.http.get("/api/goals?q=" + "x" * 201), 422)
    assert (
        "no project 'nope'" in problem(await r.http.get("/api/goals?project=nope"), 404)["detail"]
    )
    assert await _list(r, "?q=%25") == ([], 0)  # a LIKE wildcard is a character like any other
