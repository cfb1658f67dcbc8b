"""The options ``blitz run`` and ``blitz resume`` share: declared once, added to both commands
by :func:`run_options`, and handed to them as one :class:`~blitz.run_options.RunOptions`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from blitz.app import App
from blitz.cli.common import make_app
from blitz.run_options import MAX_EXPLORE, RunOptions

_F = TypeVar("_F", bound=Callable[..., Any])

_OPTIONS: tuple[tuple[str, type, Any], ...] = (
    ("backend", str, typer.Option("", "--backend", help="Agent backend (default: the project's).")),
    (
        "max_parallel",
        int,
        typer.Option(0, "--max-parallel", min=0, help="Tasks at once for this goal."),
    ),
    (
        "scenario",
        str,
        typer.Option("", "--scenario", help="Scenario file for the scripted planner and backend."),
    ),
    (
        "model",
        str,
        typer.Option(
            "",
            "--model",
            help="Model for every role, as provider:model (e.g. anthropic:claude-sonnet-4-6).",
        ),
    ),
    (
        "planner_model",
        str,
        typer.Option(
            "", "--planner-model", help="Model for planning (and recovery), if not --model's."
        ),
    ),
    (
        "agent_model",
        str,
        typer.Option("", "--agent-model", help="Model of the embedded agent, if not --model's."),
    ),
    (
        "judge_model",
        str,
        typer.Option("", "--judge-model", help="Model that breaks ties between best-of-N work."),
    ),
    (
        "explore",
        int,
        typer.Option(
            0,
            "--explore",
            min=0,
            max=MAX_EXPLORE,
            help="Best of N: attempts of every task in parallel.",
        ),
    ),
    (
        "explore_mode",
        str,
        typer.Option(
            "", "--explore-mode", help='"all" (wait for every attempt) or "first" (first to pass).'
        ),
    ),
    (
        "portfolio",
        str,
        typer.Option(
            "",
            "--portfolio",
            help='Backends to spread the attempts over, e.g. "claude-code:sonnet,codex".',
        ),
    ),
)
NAMES = tuple(name for name, _, _ in _OPTIONS)


def run_options(command: _F) -> _F:
    """Give ``command`` the shared options; it receives them as ``options: RunOptions`` (its
    own parameter, which the command line does not show)."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "options"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, kind, default in _OPTIONS
    ]

    @functools.wraps(command)
    def with_options(**kwargs: Any) -> Any:
        chosen = {name: kwargs.pop(name) for name in NAMES}
        return command(options=gather(**chosen), **kwargs)

    with_options.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    with_options.__annotations__ = {p.name: p.annotation for p in [*own, *added]}
    del with_options.__wrapped__  # Typer must read the signature above, not the command's
    return with_options  # type: ignore[return-value]


def gather(
    *,
    backend: str = "",
    max_parallel: int = 0,
    scenario: str = "",
    model: str = "",
    planner_model: str = "",
    agent_model: str = "",
    judge_model: str = "",
    explore: int = 0,
    explore_mode: str = "",
    portfolio: str = "",
) -> RunOptions:
    """The options as given on the command line."""
    models = {
        "default": model,
        "planner": planner_model,
        "agent": agent_model,
        "judge": judge_model,
    }
    return RunOptions(
        backend=backend,
        max_parallel=max_parallel,
        explore=explore,
        explore_mode=explore_mode,
        portfolio=tuple(part.strip() for part in portfolio.split(",") if part.strip()),
        models={role: name for role, name in models.items() if name},
        scenario=scenario,
    )


def app_for(options: RunOptions) -> App:
    """The app of a command run with ``options``: its models win over any other choice."""
    blitz = make_app(scenario_path=options.scenario)
    blitz.models.update(options.models)
    return blitz
