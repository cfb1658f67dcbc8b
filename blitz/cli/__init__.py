"""The ``blitz`` command line: Typer commands, one group per file.

User errors (:class:`blitz.errors.UserError`) print one clear message and exit with code 2; run
errors (:class:`blitz.errors.RunError`) one message and code 1; only bugs show a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from blitz.errors import RunError, UserError

app = typer.Typer(
    name="blitz",
    help="Run AI coding agents to completion: goal -> tasks -> validated commits -> PR.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

err = Console(stderr=True)


def _register() -> None:
    from blitz.cli import (  # noqa: F401
        backends,
        demo,
        events,
        init,
        plan,
        projects,
        run,
        serve,
        status,
    )


def main() -> None:
    _register()
    try:
        app()
    except UserError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except RunError as exc:
        # The run failed for a reason blitz knows (a provider still down after the retries, git
        # failing): a message, not a traceback.
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted: unfinished goals continue with `blitz resume`")
        sys.exit(130)
