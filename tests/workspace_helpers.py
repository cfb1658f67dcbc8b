"""What the workspace tests share: the workspace fixture, and an attempt's worktree and commit
as the conductor makes them (git for a test's own set-up is engine_helpers')."""

from __future__ import annotations

from pathlib import Path

from blitz.workspace import Workspace

GOAL = "g1"
BRANCH = "blitz/demo-g1"


def workspace(git_repo: Path, tmp_path: Path) -> Workspace:
    """The workspace of ``git_repo``, its worktrees and locks under ``tmp_path``."""
    return Workspace(
        git_repo, worktrees_root=tmp_path / "worktrees", lock_dir=tmp_path / "locks", git_timeout=30
    )


async def attempt(ws: Workspace, name: str) -> tuple[Path, str]:
    """A worktree at the goal branch head, as the conductor starts an attempt."""
    base = await ws.ensure_goal_branch(BRANCH, "main")
    return await ws.add_worktree(name, base), base


async def task_commit(ws: Workspace, name: str, task_id: str, files: dict[str, str]) -> tuple:
    """Start an attempt, write ``files``, commit them as ``task_id``."""
    worktree, base = await attempt(ws, name)
    for rel, text in files.items():
        (worktree / rel).parent.mkdir(parents=True, exist_ok=True)
        (worktree / rel).write_text(text)
    sha = await ws.commit(
        worktree, branch=BRANCH, base_sha=base, goal_id=GOAL, task_id=task_id, title=f"Do {task_id}"
    )
    assert sha is not None
    return worktree, base, sha
