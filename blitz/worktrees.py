"""Where a process's attempts get their worktrees: one warm :class:`~blitz.pool.WorktreePool`
per repository, shared by every goal the process drives, and each project's environment set-up
(``[workspace]``) as the hook the conductor calls in a worktree.

The pool holds the project's parallelism plus :data:`~blitz.pool.SPARE` worktrees; past that,
attempts get temporary worktrees (never a wait). The set-up runs in the worktree's jail with the
host network, since package managers need their registry (:mod:`blitz.envsetup`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blitz.config import setup_of
from blitz.envsetup import SetupSpec
from blitz.pool import SPARE, Entry, WorktreePool
from blitz.workspace import Workspace

if TYPE_CHECKING:
    from blitz.config import RepoConfig
    from blitz.domain import Project


@dataclass(frozen=True, slots=True, kw_only=True)
class Pruned:
    """What ``blitz workspaces prune`` did for one project."""

    project: str  # the project's name
    removed: tuple[str, ...]
    busy: tuple[str, ...]  # held by an attempt (here or in another process): left alone


class Worktrees:
    """The pools of one process, by repository."""

    def __init__(self, *, worktrees_root: Path, lock_dir: Path, home: Path) -> None:
        self.worktrees_root = worktrees_root
        self.lock_dir = lock_dir
        self.home = home
        self._pools: dict[Path, WorktreePool] = {}

    def workspace(self, path: Path) -> Workspace:
        """The repository at ``path`` as blitz writes to it."""
        return Workspace(path, worktrees_root=self.worktrees_root, lock_dir=self.lock_dir)

    def pool(self, project: Project, cfg: RepoConfig | None) -> WorktreePool:
        """The warm worktrees of ``project``'s repository (its size and kept directories follow
        the project's current settings)."""
        repo, size = Path(project.path).resolve(), project.max_parallel + SPARE
        spec = setup_spec(cfg)
        keep = tuple(spec.keep) if spec is not None else ()
        pool = self._pools.get(repo)
        if pool is None:
            pool = self._pools[repo] = WorktreePool(self.workspace(repo), size=size, keep=keep)
        pool.size, pool.keep = max(pool.size, size), keep
        return pool

    async def entries(self, projects: Iterable[Project]) -> list[tuple[Project, Entry]]:
        """Every blitz worktree of each project's repository (``blitz workspaces``)."""
        found = []
        for project in projects:
            for entry in await self._pool_of(project).entries():
                found.append((project, entry))
        return found

    async def prune(self, projects: Iterable[Project]) -> list[Pruned]:
        """Empty each project's pool: remove every pooled worktree nobody holds."""
        done = []
        for project in projects:
            removed, busy = await self._pool_of(project).prune()
            done.append(Pruned(project=project.name, removed=tuple(removed), busy=tuple(busy)))
        return done

    def _pool_of(self, project: Project) -> WorktreePool:
        """The project's pool as this process knows it, or a view of it (the pool's state is
        on disk: any process sees who holds what)."""
        repo = Path(project.path).resolve()
        return self._pools.get(repo) or WorktreePool(self.workspace(repo), size=1)


def setup_spec(cfg: RepoConfig | None) -> SetupSpec | None:
    """``[workspace]`` as a :class:`~blitz.envsetup.SetupSpec`; None without a blitz.toml."""
    return setup_of(cfg) if cfg is not None else None
