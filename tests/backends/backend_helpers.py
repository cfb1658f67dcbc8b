"""Helpers shared by the backend tests: the task an agent is given, a sink for its messages, and
agent CLIs written as scripts (stand-ins for CLIs that are missing, too old, broken or hung)."""

from __future__ import annotations

import stat
from pathlib import Path

from agent_helpers import Sink, task

from blitz.testing.model_server import ModelServer

__all__ = ["Sink", "assert_script_done", "hung_cli", "script", "task"]


def assert_script_done(server: ModelServer) -> None:
    """Every scripted reply was used, and no request went unanswered."""
    assert not server.unmatched, [r.last_user_text for r in server.unmatched]
    assert not server.pending


def script(path: Path, text: str) -> Path:
    """``text`` written to ``path`` as an executable script."""
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def hung_cli(path: Path, marker: str, *, version: str) -> Path:
    """A CLI that answers ``--version`` (and codex's ``sandbox`` check), then starts a child in
    a session of its own and a grandchild, both ``sleep MARKER``, and hangs."""
    return script(
        path,
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi\n'
        'if [ "$1" = "sandbox" ]; then exit 0; fi\n'
        f"setsid sleep {marker} &\n"
        f"sh -c 'sleep {marker}; true' &\n"
        "sleep 600\n",
    )
