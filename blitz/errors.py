"""Errors that say who must act.

* :class:`UserError` - the user must fix something (bad plan, not a git repo, corrupt blitz.toml).
  The CLI prints the message without a traceback and exits with code 2. Never retried.
* :class:`ConfigError` - a kind of UserError about settings.
* :class:`RunError` - something went wrong while running; ``retryable`` says whether trying again
  may help (a timeout, a provider outage) or not (a permission error).

Adapters translate foreign exceptions into these at their edge with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blitz.domain import Project


class BlitzError(Exception):
    """Base class of every error blitz raises on purpose."""


class UserError(BlitzError):
    """The user must act: the message says what is wrong and how to fix it."""


class ConfigError(UserError):
    """A setting is missing, malformed or contradictory."""


class NotFound(UserError):
    """No goal, project or task by that name (the API's 404)."""


class Conflict(UserError):
    """The action does not apply to the goal or project as it is now (the API's 409)."""


class ProjectPaused(Conflict):
    """A new goal for a paused project."""

    def __init__(self, project: Project) -> None:
        self.reason = project.pause_reason or "by the user"
        super().__init__(
            f"project {project.name} is paused ({self.reason}); "
            f"resume it with `blitz projects resume {project.name}`"
        )


class PlanError(UserError):
    """A plan is malformed: the message lists every problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid plan:\n" + "\n".join(f"  - {p}" for p in self.problems))


class RepositoryError(UserError):
    """The repository cannot be used as it is (not a git repo, no commits, ...)."""


class DirtyCheckout(RepositoryError):
    """The repository has uncommitted changes, which a goal would not see (``--allow-dirty``,
    the API's ``allow_dirty``, goes ahead without them)."""

    def __init__(self, repo: str, paths: list[str]) -> None:
        self.repo = repo
        self.paths = list(paths)
        shown = "\n".join(f"  {p}" for p in paths[:10])
        more = f"\n  ... and {len(paths) - 10} more" if len(paths) > 10 else ""
        super().__init__(
            f"{repo} has uncommitted changes:\n{shown}{more}\n"
            "blitz works only from committed work and never touches your checkout, so "
            "these changes would not be part of the goal. Commit or stash them, or pass "
            "--allow-dirty to go ahead without them."
        )


class RunError(BlitzError):
    """A failure while running; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class GitError(RunError):
    """A git command failed; carries the command and its output."""

    def __init__(self, message: str, *, command: str = "", output: str = "") -> None:
        super().__init__(message, retryable=False)
        self.command = command
        self.output = output
