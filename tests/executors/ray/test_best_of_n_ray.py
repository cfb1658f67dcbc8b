"""Best-of-N on a Ray cluster: every candidate of an explored task runs on a worker node, each
validated there, the best one lands once on the goal branch on the daemon and every candidate's
work is kept as a ref, as with the local executor (tests/conductor/test_best_of_n.py). Real Ray
nodes, real git on both sides, real gates, the scripted backend on the workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_helpers import branch_commits, git, goal_events, make_repo, of_kind, write
from ray_cluster import RayCluster
from ray_helpers import placed_on, ray_engine

from blitz.domain import AttemptState, GoalState

pytestmark = pytest.mark.timeout(600)

GATE = {"test": "! grep -q bug value.txt", "timeout": 60}


async def test_every_candidate_runs_on_a_worker_and_the_best_lands_once(
    ray_cluster: RayCluster, ray_executor: Any, apps: Any, tmp_path: Path
) -> None:
    app = apps(
        {
            "summary": "explore",
            "tasks": [{"id": "fix", "title": "Fix the value"}],
            "agent": {
                "fix#1": [[write("value.txt", "bug\n")]],  # fails the gate on its node
                "fix#2": [[write("value.txt", "fine\n")]],
            },
        }
    )
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=GATE)
    engine = ray_engine(app, ray_executor())
    project = await app.register(repo)
    goal = await app.new_goal(project, "Explore", explore=2)
    engine.start(project, goal)
    finished = (await engine.run())[goal.id]

    assert finished.state is GoalState.SUCCEEDED, finished.error
    attempts = app.store.load_attempts(goal.id, "fix")
    by_candidate = {a.candidate: a for a in attempts}
    assert sorted(by_candidate) == [1, 2]
    placed = placed_on(goal_events(app, goal.id))
    assert set(placed) == {a.id for a in attempts}  # both ran on worker nodes
    assert set(placed.values()) <= {w.node_id for w in ray_cluster.workers.values()}
    assert by_candidate[1].state is AttemptState.FAILED and not by_candidate[1].selected
    assert by_candidate[2].selected and by_candidate[2].state is AttemptState.SUCCEEDED
    [gate] = by_candidate[1].gates  # judged on its node
    assert not gate.passed and not gate.preexisting

    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("fix",)]
    assert git(repo, "show", f"{goal.branch}:value.txt") == "fine"
    # Every candidate's work is kept as a ref, the loser's too, as with the local executor
    # (tests/conductor/test_best_of_n.py): the node sent its commit back although its gate
    # failed there, and it was never integrated.
    refs = git(repo, "for-each-ref", "--format=%(refname)", f"refs/blitz/attempts/{goal.id}/")
    assert sorted(refs.splitlines()) == sorted(
        f"refs/blitz/attempts/{goal.id}/fix/{a.id}" for a in attempts
    )
    assert git(repo, "show", f"{by_candidate[1].ref}:value.txt") == "bug"
    assert git(repo, "show", f"{by_candidate[2].ref}:value.txt") == "fine"
    assert not by_candidate[1].commit  # on no branch: kept only
    assert "gate test failed" in by_candidate[1].error, by_candidate[1].error
    [explored] = of_kind(goal_events(app, goal.id), "task.explored")
    assert explored.data["winner"] == by_candidate[2].id
