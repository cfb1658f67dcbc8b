"""A wave of attempts finishing together: each lands with one attempt.

With nothing to judge a rebased commit by (no gate, no check, no environment set-up), the
landing holds the repository lock from its first try to the goal branch's update, so a commit
rebased onto work that landed meanwhile lands right after its rebase. (Before, every landing of
the wave rebased again each time another landed first, the last ones gave up after
``MAX_REBASES`` with "the goal branch kept moving", and their tasks ran again.) With gates, a
rebased combination is still judged before it lands: test_engine's
test_work_that_breaks_only_in_combination_fails_after_rebase.
"""

from __future__ import annotations

from pathlib import Path

from engine_helpers import (
    MakeApp,
    assert_engine_invariants,
    branch_commits,
    make_repo,
    run_one,
    task,
    write,
)

from blitz.domain import GoalState

WAVE = 8


async def test_a_wave_of_independent_tasks_lands_each_with_one_attempt(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, max_parallel=WAVE)
    ids = [f"t{i}" for i in range(WAVE)]
    app = apps(
        {
            "tasks": [task(t) for t in ids],
            # The same short wait, so the wave's attempts commit and land at about one time.
            "agent": {t: [[{"sleep": 0.5}, write(f"{t}.txt", f"{t}\n")]] for t in ids},
        },
        max_parallel=WAVE,
    )

    _, goal = await run_one(app, repo)

    attempts = app.store.load_attempts(goal.id)
    assert goal.state is GoalState.SUCCEEDED, [a.error for a in attempts]
    assert sorted(a.task_id for a in attempts) == ids, [a.error for a in attempts if a.error]
    assert sorted(t for c in branch_commits(repo, goal.branch) for t in c.tasks) == ids
    assert_engine_invariants(app, repo, goal)
