"""``blitz init``: write a blitz.toml with the detected gates and environment set-up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from blitz.cli.common import app, make_app, out
from blitz.config import (
    CONFIG_NAME,
    GatesConfig,
    ProjectConfig,
    RepoConfig,
    WorkspaceConfig,
    load_repo_config,
    render_repo_config,
)
from blitz.detect import detect_gates, detect_setup
from blitz.errors import RepositoryError, UserError


@app.command()
def init(
    path: Path = typer.Argument(Path("."), help="The repository."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing blitz.toml."),
) -> None:
    """Detect the project's build/test/typecheck/lint commands and its set-up (the command that
    installs its dependencies in a worktree), and write blitz.toml."""
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise RepositoryError(f"{path} is not a directory")
    target = path / CONFIG_NAME
    if target.exists() and not force:
        load_repo_config(path)  # says what is wrong if it is corrupt
        raise UserError(f"{target} already exists (pass --force to overwrite it)")
    gates, notes = detect_gates(path)
    setup, setup_notes = detect_setup(path)
    notes += setup_notes
    blitz = make_app()
    try:
        ws = blitz.workspace(path)
        try:
            branch = asyncio.run(ws.current_branch())
        except Exception:
            branch = ""
    finally:
        blitz.store.close()
    cfg = RepoConfig(
        project=ProjectConfig(name=path.name, base_branch=branch if branch != "HEAD" else ""),
        gates=GatesConfig.from_gates(gates),
        workspace=WorkspaceConfig(
            keep=list(setup.keep), setup=setup.command, setup_inputs=list(setup.inputs)
        ),
    )
    target.write_text(render_repo_config(cfg, notes), encoding="utf-8")
    out.print(f"wrote {target}")
    for note in notes:
        out.print(f"  {note}")
    for name, command in gates.configured().items():
        out.print(f"  {name}: {command}")
    if setup.command:
        out.print(f"  setup: {setup.command}")
    if setup.keep:
        out.print(f"  keep: {', '.join(setup.keep)}")
