"""The guard around a backend: real git repositories with a worktree, and test-double agents that
write where they are told to (in their worktree, or in the user's checkout)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from blitz.backends.base import AgentRequest, AgentResult, MessageSink
from blitz.backends.guard import GuardedBackend


@pytest.fixture
def worktree(git_repo: Path) -> Path:
    """A real git worktree of ``git_repo``, detached at its commit, as the engine makes one."""
    path = git_repo.parent / "worktrees" / "attempt-1"
    git(git_repo, "worktree", "add", "-q", "--detach", str(path), "HEAD")
    return path


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip()


class Agent:
    """A test double of an agent: runs ``act`` on the request, then reports ``result``."""

    name = "double"

    def __init__(
        self,
        act: Callable[[AgentRequest], None],
        result: AgentResult | None = None,
    ) -> None:
        self.act = act
        self.result = result or AgentResult(ok=True, summary="done", messages=("working",))
        self.runs = 0

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        self.runs += 1
        self.act(request)
        return self.result


def request(worktree: Path) -> AgentRequest:
    return AgentRequest(
        goal_id="g1",
        goal="Greet",
        task_id="hello",
        title="Write hello.txt",
        instructions="",
        worktree=worktree,
    )


async def test_an_agent_writing_in_the_main_checkout_fails_and_the_file_stays(
    git_repo: Path, worktree: Path
) -> None:
    def act(req: AgentRequest) -> None:
        (req.worktree / "hello.txt").write_text("hello\n")
        (git_repo / "notes").mkdir()
        (git_repo / "notes" / "stray.txt").write_text("written in the wrong place\n")
        (git_repo / "README.md").write_text("# changed\n")

    guarded = GuardedBackend(Agent(act))
    result = await guarded.run(request(worktree))

    assert guarded.name == "double"
    assert not result.ok and not result.crashed and not result.config_error
    assert "changed files outside its worktree: README.md, notes/stray.txt" in result.error
    assert str(git_repo) in result.error
    assert "left in place" in result.error and "nothing was deleted" in result.error
    assert result.messages == ("working",)
    # Nothing was cleaned up: the user inspects it.
    assert (git_repo / "notes" / "stray.txt").read_text() == "written in the wrong place\n"
    assert (git_repo / "README.md").read_text() == "# changed\n"


async def test_an_agent_writing_only_in_its_worktree_passes_through_unchanged(
    git_repo: Path, worktree: Path
) -> None:
    # A new mtime with the same content: a `git status` allowed to would refresh the index.
    os.utime(git_repo / "README.md", (1_700_000_000, 1_700_000_000))
    index = (git_repo / ".git" / "index").read_bytes()
    inner = Agent(lambda req: (req.worktree / "hello.txt").write_text("hello\n"))

    result = await GuardedBackend(inner).run(request(worktree))

    assert result is inner.result
    assert inner.runs == 1
    assert (worktree / "hello.txt").read_text() == "hello\n"
    assert (git_repo / ".git" / "index").read_bytes() == index  # the snapshots never wrote it


async def test_changes_the_user_had_before_are_not_blamed(git_repo: Path, worktree: Path) -> None:
    (git_repo / "README.md").write_text("# demo\n\nwork in progress\n")
    (git_repo / "scratch.txt").write_text("untracked notes\n")
    git(git_repo, "add", "scratch.txt")
    (git_repo / "todo.txt").write_text("untracked\n")
    inner = Agent(lambda req: (req.worktree / "hello.txt").write_text("hello\n"))

    result = await GuardedBackend(inner).run(request(worktree))

    assert result.ok, result.error


async def test_a_further_edit_to_a_file_the_user_had_changed_is_caught(
    git_repo: Path, worktree: Path
) -> None:
    # Same `git status` line before and after (" M README.md"): only the content tells.
    (git_repo / "README.md").write_text("# demo\n\nwork in progress\n")

    def act(req: AgentRequest) -> None:
        (git_repo / "README.md").write_text("# demo\n\nwork in progress, edited by the agent\n")

    result = await GuardedBackend(Agent(act)).run(request(worktree))

    assert not result.ok
    assert "outside its worktree: README.md" in result.error


async def test_deleting_a_file_or_moving_head_in_the_checkout_is_caught(
    git_repo: Path, worktree: Path
) -> None:
    def act(req: AgentRequest) -> None:
        git(git_repo, "commit", "-q", "--allow-empty", "-m", "agent commit")
        (git_repo / "README.md").unlink()

    result = await GuardedBackend(Agent(act)).run(request(worktree))

    assert not result.ok
    assert "outside its worktree: HEAD, README.md" in result.error


async def test_the_inner_failure_is_kept_beside_the_outside_change(
    git_repo: Path, worktree: Path
) -> None:
    inner = Agent(
        lambda req: (git_repo / "stray.txt").write_text("x\n"),
        AgentResult(ok=False, crashed=True, error="the agent process died"),
    )
    result = await GuardedBackend(inner).run(request(worktree))

    assert not result.ok and not result.crashed  # wrong work, not broken machinery
    assert "outside its worktree: stray.txt" in result.error
    assert "the agent process died" in result.error


async def test_a_directory_that_is_not_a_repository_is_passed_through(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    inner = Agent(lambda req: (req.worktree / "hello.txt").write_text("hello\n"))

    result = await GuardedBackend(inner).run(request(plain))

    assert result is inner.result
