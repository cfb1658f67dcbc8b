"""A project with ``[executor] sync = "fetch"``: each worker fetches the base branch from the
project's git remote (a bare repository on this machine, reachable from the nodes), and the daemon
sends only the goal's own commits; a remote's credentials never travel."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import git, goal_events, make_repo, task, write
from ray_cluster import RayCluster
from ray_helpers import placed_on, ray_engine

from blitz.domain import GoalState
from blitz.executors.base import AttemptRequest
from blitz.executors.ray import sync
from blitz.executors.ray.executor import RayExecutor

pytestmark = pytest.mark.timeout(600)


class Measured(RayExecutor):
    """The Ray executor, noting the size of each bundle it sends (what the bench counts)."""

    sent: list[int]

    async def _bundle(
        self, request: AttemptRequest, node_id: str, base: str, upstream: Any = None
    ) -> bytes | None:
        data = await super()._bundle(request, node_id, base, upstream)
        self.sent.append(len(data or b""))
        return data


def with_origin(repo: Path, origin: Path) -> None:
    """``repo`` given a remote ``origin``: a bare clone of it here, which the nodes reach too."""
    git(repo.parent, "clone", "-q", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "-q", "origin")


async def run_goal(app: Any, executor: Measured, repo: Path, title: str) -> tuple[Any, Any, Any]:
    """One goal on ``repo`` through ``executor`` (closed after): project, goal, its end."""
    executor.sent = []
    try:
        project = await app.register(repo)
        goal = await app.new_goal(project, title)
        engine = ray_engine(app, executor)
        engine.start(project, goal)
        return project, goal, (await engine.run())[goal.id]
    finally:
        await executor.close()


async def test_workers_fetch_the_history_from_the_remote_and_get_only_the_goals_commits(
    ray_cluster: RayCluster, apps: Any, tmp_path: Path
) -> None:
    history = {f"data/{i}.txt": os.urandom(10_000).hex() for i in range(60)}  # about 1.2 MB
    repo = make_repo(tmp_path, files=history, sections={"executor": {"sync": "fetch"}})
    with_origin(repo, tmp_path / "origin.git")
    upstream = git(repo, "rev-parse", "refs/remotes/origin/main")
    names = ("a", "b", "c")
    app = apps({
        "summary": "three files",
        "tasks": [task("a"), task("b", "a"), task("c", "b")],
        "agent": {n: [[write(f"{n}.txt", f"{n}\n")]] for n in names},
    })  # fmt: skip
    executor = Measured(ray_cluster.address, poll=0.2)
    project, goal, finished = await run_goal(app, executor, repo, "three files")

    assert finished.state is GoalState.SUCCEEDED, finished
    # Each bundle held the goal's own commits at most, never the history the remote has.
    assert len(executor.sent) == 3 and max(executor.sent) < 20_000, executor.sent
    nodes = set(placed_on(goal_events(app, goal.id)).values())
    by_id = {w.node_id: w for w in ray_cluster.workers.values()}
    for node in nodes:  # every node that ran an attempt fetched the base branch itself
        cache = by_id[node].home / "repos" / project.id
        assert git(cache, "rev-parse", sync.UPSTREAM_REF) == upstream


async def test_a_worker_that_cannot_fetch_gets_the_full_history_at_once_without_a_crash(
    ray_cluster: RayCluster, apps: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, sections={"executor": {"sync": "fetch"}})
    with_origin(repo, tmp_path / "origin.git")
    # The daemon's view of the remote is ahead of the remote itself (a push that never landed):
    # a worker's fetch cannot bring the commit the bundle leaves out.
    (repo / "unpushed.txt").write_text("never pushed\n")
    git(repo, "add", "unpushed.txt")
    git(repo, "commit", "-q", "-m", "unpushed")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    app = apps(
        {"summary": "one file", "tasks": [task("a")], "agent": {"a": [[write("a.txt", "a\n")]]}}
    )
    executor = Measured(ray_cluster.address, poll=0.2)
    _, goal, finished = await run_goal(app, executor, repo, "one file")

    assert finished.state is GoalState.SUCCEEDED, finished
    events = goal_events(app, goal.id)
    attempts = app.store.load_attempts(goal.id)
    assert [a.state.value for a in attempts] == ["succeeded"], attempts  # no crash, no retry
    again = [e for e in events if e.kind.value == "attempt.placed" and "no_fetch" in e.data]
    assert len(again) == 1 and "origin.git" in again[0].message, again
    assert len(executor.sent) == 2 and executor.sent[1] > executor.sent[0], executor.sent


def test_a_remotes_credentials_never_travel_to_a_worker() -> None:
    assert sync.public_url("https://bot:ghp_secret@github.com/o/r.git") == (
        "https://github.com/o/r.git"
    )
    assert sync.public_url("https://ghp_secret@github.com/o/r") == "https://github.com/o/r"
    assert sync.public_url("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert sync.public_url("/srv/git/r.git") == "/srv/git/r.git"


async def test_a_worker_that_cannot_fetch_says_from_where_and_what(
    tmp_path: Path, isolated_git: None
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    git(cache, "init", "-q", "--bare", ".")
    missing = sync.Upstream(str(tmp_path / "nowhere.git"), "refs/heads/main", "a" * 40)
    from blitz.git import Git

    with pytest.raises(sync.FetchFailed, match=r"fetching refs/heads/main from .*nowhere\.git"):
        await sync.fetch_upstream(Git(cache), missing)
