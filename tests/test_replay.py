"""A commit made elsewhere (a remote worker's) lands on a goal branch that moved meanwhile without
a worktree: replayed in the object store as a rebase would (its message, trailers, author and
date kept; a change already made lands as its own commit), a conflict names its files and moves
nothing, and what a replay cannot do (more than one commit on the base) is left to a rebase in a
worktree. Landed by :func:`blitz.conductor.landing.land`, a replayed commit with nothing to judge
it by lands with no worktree at all; with gates, they run on the combination, in a worktree at
the replayed commit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from engine_helpers import git
from workspace_helpers import BRANCH, GOAL, task_commit, workspace

from blitz.conductor.landing import land
from blitz.domain import Attempt, AttemptState, Gates, Goal, Project, Task
from blitz.events import Event
from blitz.executors.base import AttemptReport, AttemptRequest, Outcome
from blitz.testing.scripted import ScriptedBackend
from blitz.validation import Validator
from blitz.workspace import Integration, Workspace


@pytest.fixture
def ws(git_repo: Path, tmp_path: Path) -> Workspace:
    return workspace(git_repo, tmp_path)


def _worktrees(repo: Path) -> list[str]:
    return [
        line for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]  # fmt: skip


async def test_a_commit_made_elsewhere_is_replayed_onto_the_moved_branch_without_a_worktree(
    ws: Workspace, git_repo: Path
) -> None:
    _, base1, sha1 = await task_commit(ws, "w1", "t1", {"a.txt": "a\n"})
    w2, base2, sha2 = await task_commit(ws, "w2", "t2", {"b.txt": "b\n"})
    git(w2, "commit", "-q", "--amend", "--no-edit", "--author=Someone Else <else@example.test>",
        "--date=2001-02-03T04:05:06+0700")  # fmt: skip
    sha2 = git(w2, "rev-parse", "HEAD")
    assert (await ws.integrate(None, branch=BRANCH, commit_sha=sha1, base_sha=base1)).status == (
        "integrated"
    )
    before = _worktrees(git_repo)

    rebased = await ws.integrate(None, branch=BRANCH, commit_sha=sha2, base_sha=base2)

    assert rebased.status == "rebased" and rebased.detail == sha1
    new = rebased.head
    assert git(git_repo, "rev-parse", f"{new}^") == sha1
    assert git(git_repo, "rev-parse", BRANCH) == sha1  # not moved until it is integrated
    assert git(git_repo, "ls-tree", "--name-only", new).split() == ["README.md", "a.txt", "b.txt"]
    same = "%B%n%an <%ae> %ad"
    assert git(git_repo, "log", "-1", f"--format={same}", "--date=raw", new) == git(
        git_repo, "log", "-1", f"--format={same}", "--date=raw", sha2
    )
    assert git(git_repo, "log", "-1", "--format=%cn", new) == "Test Committer"
    assert _worktrees(git_repo) == before  # no worktree was made for it
    done = await ws.integrate(None, branch=BRANCH, commit_sha=new, base_sha=sha1)
    assert done == Integration(status="integrated", head=new)
    assert await ws.committed_tasks(BRANCH, base1, GOAL) == {"t1": sha1, "t2": new}


async def test_a_replay_that_conflicts_names_the_files_and_moves_nothing(
    ws: Workspace, git_repo: Path
) -> None:
    _, base, sha1 = await task_commit(ws, "w1", "t1", {"README.md": "one\n", "a.txt": "a"})
    _, _, sha2 = await task_commit(ws, "w2", "t2", {"README.md": "two\n", "b.txt": "b"})
    await ws.integrate(None, branch=BRANCH, commit_sha=sha1, base_sha=base)

    result = await ws.integrate(None, branch=BRANCH, commit_sha=sha2, base_sha=base)

    assert result.status == "conflict"
    assert result.conflict_files == ("README.md",)
    assert result.head == sha1 and git(git_repo, "rev-parse", BRANCH) == sha1


async def test_the_same_change_already_on_the_branch_still_lands_as_the_tasks_commit(
    ws: Workspace, git_repo: Path
) -> None:
    _, base, sha1 = await task_commit(ws, "w1", "t1", {"same.txt": "same\n"})
    _, _, sha2 = await task_commit(ws, "w2", "t2", {"same.txt": "same\n"})
    await ws.integrate(None, branch=BRANCH, commit_sha=sha1, base_sha=base)

    rebased = await ws.integrate(None, branch=BRANCH, commit_sha=sha2, base_sha=base)
    assert rebased.status == "rebased"
    await ws.integrate(None, branch=BRANCH, commit_sha=rebased.head, base_sha=sha1)

    assert git(git_repo, "rev-parse", f"{rebased.head}^{{tree}}") == git(
        git_repo, "rev-parse", f"{sha1}^{{tree}}"
    )  # empty, kept (as rebase --empty=keep): the task is recorded as committed
    assert await ws.committed_tasks(BRANCH, base, GOAL) == {"t1": sha1, "t2": rebased.head}


async def test_more_than_one_commit_on_the_base_is_left_to_a_rebase_in_a_worktree(
    ws: Workspace, git_repo: Path
) -> None:
    _, base1, sha1 = await task_commit(ws, "w1", "t1", {"a.txt": "a\n"})
    w2, base2, sha2 = await task_commit(ws, "w2", "t2", {"b.txt": "b\n"})
    message = git(w2, "log", "-1", "--format=%B")
    git(w2, "commit", "-q", "--allow-empty", "-m", message)  # trailers on top of two commits
    top = git(w2, "rev-parse", "HEAD")
    await ws.integrate(None, branch=BRANCH, commit_sha=sha1, base_sha=base1)

    behind = await ws.integrate(None, branch=BRANCH, commit_sha=top, base_sha=base2)
    assert behind == Integration(status="behind", head=sha1)

    rebased = await ws.integrate(w2, branch=BRANCH, commit_sha=top, base_sha=base2)
    assert rebased.status == "rebased" and rebased.detail == sha1
    assert sha2 != top


# -- landed by land(): a worktree only to judge the combination --------------------------------


def _request(ws: Workspace, repo: Path, attempt: Attempt, gates: Gates | None) -> AttemptRequest:
    events: list[Event] = []
    project = Project(id="p-1", name="p", path=str(repo), gates=gates or Gates())
    goal = Goal(id=GOAL, project_id="p-1", title="g", branch=BRANCH)
    return AttemptRequest(
        project=project,
        goal=goal,
        task=Task(id=attempt.task_id, goal_id=GOAL, title="t"),
        attempt=attempt,
        backend=ScriptedBackend(),
        workspace=ws,
        validator=Validator(gates) if gates else None,
        baseline=None,
        timeout=30,
        emit=events.append,
    )


def _made(attempt: Attempt, sha: str, base: str) -> AttemptReport:
    done = dataclasses.replace(attempt, state=AttemptState.SUCCEEDED, commit=sha, base_sha=base)
    return AttemptReport(outcome=Outcome.SUCCEEDED, attempt=done)


async def test_landing_a_replayed_commit_with_nothing_to_judge_makes_no_worktree(
    ws: Workspace, git_repo: Path, tmp_path: Path
) -> None:
    w1, base, sha1 = await task_commit(ws, "w1", "t1", {"a.txt": "a\n"})
    w2, _, sha2 = await task_commit(ws, "w2", "t2", {"b.txt": "b\n"})
    await ws.integrate(None, branch=BRANCH, commit_sha=sha1, base_sha=base)
    # No worktree can be made from here on (where they go is a file): the landing needs none.
    for made in (w1, w2):
        await ws.remove_worktree(made)
    w1.parent.rmdir()
    w1.parent.write_text("not a directory\n")
    attempt = Attempt(id="a-2", goal_id=GOAL, task_id="t2", number=1)

    report = await land(_request(ws, git_repo, attempt, None), _made(attempt, sha2, base))

    assert report.outcome is Outcome.SUCCEEDED, report.error
    head = git(git_repo, "rev-parse", BRANCH)
    assert report.attempt.commit == head and git(git_repo, "rev-parse", f"{head}^") == sha1
    assert report.attempt.base_sha == sha1


async def test_landing_a_replayed_commit_runs_the_gates_on_the_combination(
    ws: Workspace, git_repo: Path, tmp_path: Path
) -> None:
    _, base, sha1 = await task_commit(ws, "w1", "t1", {"a.txt": "a\n"})
    _, _, sha2 = await task_commit(ws, "w2", "t2", {"b.txt": "b\n"})
    await ws.integrate(None, branch=BRANCH, commit_sha=sha1, base_sha=base)
    seen = tmp_path / "seen.txt"
    gates = Gates(test=f"ls > {seen} && git rev-parse HEAD >> {seen}", timeout=30)
    attempt = Attempt(id="a-2", goal_id=GOAL, task_id="t2", number=1)

    report = await land(_request(ws, git_repo, attempt, gates), _made(attempt, sha2, base))

    assert report.outcome is Outcome.SUCCEEDED, report.error
    head = git(git_repo, "rev-parse", BRANCH)
    assert seen.read_text().split() == ["README.md", "a.txt", "b.txt", head]
    assert [g.name for g in report.attempt.gates] == ["test"]
