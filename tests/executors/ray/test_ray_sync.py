"""Bundles between the daemon's repository and a node's cache repository (real git, no cluster):
the first time the history, afterwards only the new commits, nothing when the node holds the
head; the commit comes back as a bundle of base..commit."""

from __future__ import annotations

import os
from pathlib import Path

from engine_helpers import git, make_repo

from blitz.executors.ray import sync
from blitz.git import Git, run_git


async def test_a_node_gets_the_history_once_then_only_new_commits_then_nothing(
    tmp_path: Path, isolated_git: None
) -> None:
    repo = make_repo(tmp_path, files={f"src/m{i}.txt": os.urandom(2000).hex() for i in range(50)})
    daemon = Git(repo)
    cache = tmp_path / "node" / "repos" / "p-1"
    cache.mkdir(parents=True)
    await run_git(cache, "init", "-q", "--bare", ".", timeout=30)
    node = Git(cache)
    known = sync.Known()
    branch = "refs/heads/main"

    first_head = await daemon.rev_parse("main")
    first = await sync.bundle(daemon, branch, first_head, known.held("n1", "p-1"))
    assert first is not None
    assert await sync.fetch(node, first, branch, branch) == first_head
    known.add("n1", "p-1", [first_head])

    assert await sync.bundle(daemon, branch, first_head, known.held("n1", "p-1")) is None

    (repo / "one.txt").write_text("one change\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one file")
    head = await daemon.rev_parse("main")
    second = await sync.bundle(daemon, branch, head, known.held("n1", "p-1"))
    assert second is not None
    assert len(second) < len(first) / 10  # only the new commit, not the history again
    assert await sync.fetch(node, second, branch, branch) == head
    # What the node holds is what it reports (asked once per node).
    assert head in await sync.heads(node)
    assert await sync.present(daemon, [head, "f" * 40]) == {head}


async def test_a_commit_made_on_a_node_comes_back_as_a_bundle_of_base_to_commit(
    tmp_path: Path, isolated_git: None
) -> None:
    repo = make_repo(tmp_path)
    daemon = Git(repo)
    base = await daemon.rev_parse("main")
    clone = tmp_path / "node"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    (clone / "made.txt").write_text("made on the node\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "made")
    node = Git(clone)
    made = await node.rev_parse("HEAD")
    await sync.set_ref(node, "refs/blitz/out/a-1", made)
    data = await sync.bundle(node, "refs/blitz/out/a-1", made, [base])
    assert data is not None
    into = "refs/blitz/remote/g/t/a-1"
    assert await sync.fetch(daemon, data, "refs/blitz/out/a-1", into) == made
    assert git(repo, "show", f"{made}:made.txt") == "made on the node"


async def test_only_the_commits_of_what_a_node_reports_count_however_long_the_report(
    tmp_path: Path, isolated_git: None
) -> None:
    repo = make_repo(tmp_path)
    daemon = Git(repo)
    head = await daemon.rev_parse("main")
    tree = git(repo, "rev-parse", "main^{tree}")
    reported = [head, tree, "f" * 40, "--all", f"{head}\n{head}", "HEAD", head.upper(), ""]
    reported += [f"{i:040x}" for i in range(200)]  # a long report

    assert await sync.present(daemon, reported) == {head}  # a tree is not a commit
    assert await sync.present(daemon, []) == set()


async def test_the_daemon_keeps_a_small_bundle_for_the_next_attempt_but_not_a_large_history(
    tmp_path: Path, isolated_git: None
) -> None:
    from blitz.domain import Attempt, Goal, Project, Task
    from blitz.executors.base import AttemptRequest
    from blitz.executors.ray.executor import KEPT_BUNDLE, RayExecutor
    from blitz.testing.scripted import ScriptedBackend
    from blitz.workspace import Workspace

    async def bundle_of(repo: Path) -> tuple[int, bool]:
        executor = RayExecutor("127.0.0.1:1")  # never connects: bundles need no cluster
        executor._known.add("n1", "p-1", [])  # the node was asked: it holds nothing
        request = AttemptRequest(
            project=Project(id="p-1", name="p", path=str(repo)),
            goal=Goal(id="g-1", project_id="p-1", title="g", branch="main"),
            task=Task(id="t", goal_id="g-1", title="t"),
            attempt=Attempt(id="a-1", goal_id="g-1", task_id="t", number=1),
            backend=ScriptedBackend(),
            workspace=Workspace(repo, worktrees_root=tmp_path / "w", lock_dir=tmp_path / "l"),
            validator=None,
            baseline=None,
            timeout=10,
            emit=lambda event: None,
        )
        base = await Git(repo).rev_parse("main")
        data = await executor._bundle(request, "n1", base)
        assert data is not None
        return len(data), "bundle" in executor._flights._last

    small = make_repo(tmp_path / "small")
    big = make_repo(tmp_path / "big", files={"blob.bin": "x"})
    (big / "blob.bin").write_bytes(os.urandom(KEPT_BUNDLE + 1024))  # no compression shrinks it
    git(big, "add", "-A")
    git(big, "commit", "-q", "-m", "a large history")

    size, kept = await bundle_of(small)
    assert size < KEPT_BUNDLE and kept
    size, kept = await bundle_of(big)
    assert size > KEPT_BUNDLE and not kept
