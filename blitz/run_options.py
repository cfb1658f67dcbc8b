"""How a goal runs: the choices ``blitz run`` and ``blitz resume`` share, and how a goal being
resumed takes the ones it is resumed with.

A goal keeps what it was started with (its backend, the model of each role, exploration,
parallelism) so that ``blitz resume`` with no options runs it the same way; an option given to
``resume`` overrides the stored choice and is stored in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from blitz.backends.registry import check_name
from blitz.domain import Goal, Project
from blitz.errors import UserError

if TYPE_CHECKING:
    from blitz.app import App

MAX_EXPLORE = 10
"""Most best-of-N attempts per task."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """What a person chose on the command line; empty or 0 means "not chosen"."""

    backend: str = ""
    max_parallel: int = 0
    explore: int = 0
    explore_mode: str = ""
    portfolio: tuple[str, ...] = ()
    models: Mapping[str, str] = field(default_factory=dict)  # by role; "default": every role
    scenario: str = ""  # the scripted fakes' scenario file (tests, demos)


def check_exploration(explore: int, mode: str) -> None:
    """Refuse an exploration blitz cannot run (a UserError)."""
    if not 1 <= explore <= MAX_EXPLORE:
        raise UserError(f"--explore must be between 1 and {MAX_EXPLORE}, not {explore}")
    if mode not in ("all", "first"):
        raise UserError(f'the explore mode must be "all" or "first", not {mode!r}')


def resumed_with(app: App, project: Project, goal: Goal, options: RunOptions) -> Goal:
    """``goal`` with the choices of ``options`` over those it was started with; its models
    are those of ``app`` (whose command-line models win) over its own."""
    changes: dict[str, object] = {"models": app.run_models(project, goal)}
    if options.backend:
        check_name(options.backend, app.backend_options(project, goal).commands)
        changes["backend"] = options.backend
    if options.max_parallel:
        changes["max_parallel"] = options.max_parallel
    if options.explore or options.explore_mode:
        explore = options.explore or max(1, goal.explore)
        mode = options.explore_mode or goal.explore_mode
        check_exploration(explore, mode)
        changes.update(explore=explore if explore > 1 else 0, explore_mode=mode)
        if explore < 2:
            changes["portfolio"] = ()
    if options.portfolio:
        changes["portfolio"] = options.portfolio
    return goal.evolve(**changes)
