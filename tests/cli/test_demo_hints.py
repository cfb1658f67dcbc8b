"""The demo's hints (``blitz status g-...``) are printed as they can be typed in the shell that
started it: ``blitz`` when it is on that shell's PATH, ``uv run blitz`` under ``uv run`` from the
clone, else the path of the blitz that ran."""

from __future__ import annotations

import os
from pathlib import Path

from blitz.cli.demo import shell_command


def _blitz_in(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "blitz"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return script


def test_under_uv_run_the_clones_environment_does_not_count_as_on_path(tmp_path: Path) -> None:
    venv = tmp_path / "clone" / ".venv"
    running = _blitz_in(venv / "bin")
    elsewhere = tmp_path / "usr-bin"
    elsewhere.mkdir()
    env = {
        "PATH": os.pathsep.join([str(venv / "bin"), str(elsewhere)]),
        "VIRTUAL_ENV": str(venv),
        "UV_RUN_RECURSION_DEPTH": "1",
    }
    assert shell_command(env, str(running)) == "uv run blitz"

    _blitz_in(tmp_path / "tools-bin")  # installed with `uv tool install .`
    env["PATH"] += os.pathsep + str(tmp_path / "tools-bin")
    assert shell_command(env, str(running)) == "blitz"


def test_outside_uv_run_blitz_on_path_or_else_its_own_path(tmp_path: Path) -> None:
    running = _blitz_in(tmp_path / "some where" / "bin")
    assert shell_command({"PATH": str(running.parent)}, str(running)) == "blitz"
    assert shell_command({"PATH": str(tmp_path)}, str(running)) == f"'{running.resolve()}'"
