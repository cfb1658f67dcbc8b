"""Where a process's attempts get their worktrees: one warm :class:`~blitz.pool.WorktreePool`
per repository, shared by every goal the process drives, and each project's environment set-up
(``[workspace]``) as the hook the conductor calls in a worktree.

The pool holds the project's parallelism plus :data:`~blitz.pool.SPARE` worktrees; past that,
attempts get temporary worktrees (never a wait). The set-up runs in the worktree's jail with the
host network, since package managers need their registry (:mod:`blitz.envsetup`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from blitz.pool import SPARE, WorktreePool
from blitz.workspace import Workspace

if TYPE_CHECKING:
    from blitz.config import RepoConfig
    from blitz.domain import GateResult, Project
    from blitz.executors.base import Setup
    from blitz.sandbox import Policy


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

    def setup(self, project: Project, cfg: RepoConfig | None, policy: Policy) -> Setup | None:
        """The project's environment set-up, run in a worktree's jail with the host network when
        its inputs changed (``blitz.envsetup.ensure_setup``); None when it has none."""
        spec = setup_spec(cfg)
        if spec is None or not spec.command.strip():
            return None
        import blitz.envsetup as envsetup

        cache = envsetup.cache_dir(self.home, project.id)

        async def ensure(worktree: Path, marker: Path) -> GateResult | None:
            jail = policy.jail(worktree, network="host")
            return await envsetup.ensure_setup(
                worktree, spec, marker=marker, jail=jail, cache=cache
            )

        return ensure


def setup_spec(cfg: RepoConfig | None) -> Any:
    """``[workspace]`` as a ``blitz.envsetup.SetupSpec``; None when there is none.

    Written against the environment set-up's interface before it was merged: until
    ``blitz.envsetup`` and the ``[workspace]`` section exist, there is none."""
    section = getattr(cfg, "workspace", None)
    try:
        import blitz.envsetup as envsetup
    except ImportError:
        return None
    if section is None:
        return None
    return envsetup.SetupSpec(
        command=section.setup,
        inputs=tuple(section.setup_inputs),
        keep=tuple(section.keep),
        timeout=section.setup_timeout,
    )
