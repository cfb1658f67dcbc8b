"""The ``blitz`` command line: Typer commands, one group per file.

``common.py`` holds the Typer application and what the commands share; each command module adds
its commands to it. ``lazy.py`` lists the commands and imports a command's module only when that
command runs, so each command starts with what it needs (``blitz --help`` with none of them).
The rules of what a person may do are :mod:`blitz.actions`; the commands only read arguments and
print. User errors (:class:`blitz.errors.UserError`) print one clear message and exit with code
2; run errors (:class:`blitz.errors.RunError`) one message and code 1; only bugs show a
traceback.
"""

from __future__ import annotations

import sys
import traceback

from rich.markup import escape

from blitz.cli.common import app, err
from blitz.errors import RunError, UserError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except UserError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except RunError as exc:
        # The run failed for a reason blitz knows (a provider still down after the retries, git
        # failing): a message, not a traceback.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted: unfinished goals continue with `blitz resume`")
        sys.exit(130)
    except Exception:
        # A bug: its traceback, redacted like all the rest (what an exception says may hold a
        # key).
        err.echo(traceback.format_exc().rstrip())
        sys.exit(1)
