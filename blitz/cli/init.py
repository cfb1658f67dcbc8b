"""``blitz init``: write a blitz.toml with the detected gates and environment set-up."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from blitz.backends import local_servers
from blitz.backends.availability import check_all
from blitz.backends.choice import HOW_TO_GET_ONE, Choice, choose, near_misses, other_keys
from blitz.cli.common import app, make_app, out
from blitz.config import (
    CONFIG_NAME,
    GatesConfig,
    ModelsConfig,
    ProjectConfig,
    RepoConfig,
    WorkspaceConfig,
    load_repo_config,
    render_repo_config,
)
from blitz.detect import detect_gates, detect_setup
from blitz.domain import Project
from blitz.errors import RepositoryError, UserError

if TYPE_CHECKING:
    from blitz.app import App


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
        agent = asyncio.run(pick_agent(blitz, path))
    finally:
        blitz.store.close()
    choice = agent.choice
    notes.append(
        f"agent: {choice.backend}, {choice.reason}"
        if choice
        else f"agent: none usable here; {NO_AGENT_BACKEND} is written, which needs a model"
    )
    if choice:
        notes += choice.notes
    if choice and choice.local:
        notes.append("max_parallel: 1 (a local model server answers one request at a time)")
    project = ProjectConfig(
        name=path.name,
        base_branch=branch if branch != "HEAD" else "",
        backend=choice.backend if choice else NO_AGENT_BACKEND,
        max_parallel=1 if choice and choice.local else ProjectConfig().max_parallel,
    )
    cfg = RepoConfig(
        project=project,
        models=ModelsConfig(default=choice.model if choice else ""),
        gates=GatesConfig.from_gates(gates),
        workspace=WorkspaceConfig(
            keep=list(setup.keep), setup=setup.command, setup_inputs=list(setup.inputs)
        ),
    )
    target.write_text(render_repo_config(cfg, notes), encoding="utf-8")
    out.print(f"wrote {target}", markup=False)
    for note in notes:
        out.print(f"  {note}", markup=False, soft_wrap=True)
    for name, command in gates.configured().items():
        out.print(f"  {name}: {command}", markup=False)
    if setup.command:
        out.print(f"  setup: {setup.command}", markup=False)
    if setup.keep:
        out.print(f"  keep: {', '.join(setup.keep)}", markup=False)
    if choice is None:
        out.print("\nno coding agent is usable here yet:", markup=False)
        named = [name for name, value in os.environ.items() if value]  # names only, no value
        for line in (*agent.near_misses, *other_keys(named), *HOW_TO_GET_ONE):
            out.print(line, markup=False, soft_wrap=True)


NO_AGENT_BACKEND = "embedded"
"""Written when no agent is usable: the agent built into blitz, which runs once a model is set
(a run says so, before it starts, until then). Never ``scripted``, which does no work."""


@dataclass(frozen=True, slots=True)
class Found:
    """The agent chosen for the repository (None: none is usable), and why the others are not."""

    choice: Choice | None
    near_misses: list[str]


async def pick_agent(blitz: App, path: Path) -> Found:
    """The best agent usable for the repository at ``path``: the keys and models this process
    has, the agent CLIs, and the local model servers answering."""
    from blitz.llm.models import LOCAL_SERVERS

    # What this process has, not what a blitz.toml being replaced (--force) says.
    options = dataclasses.replace(
        blitz.backend_options(Project(id="", name=path.name, path=str(path))),
        model=blitz.settings.agent_model or blitz.settings.model,
        claude_code=None,
        codex=None,
        commands={},
    )
    urls = LOCAL_SERVERS if blitz.settings.local_servers is None else blitz.settings.local_servers
    servers = await local_servers.find(urls)
    choice = await choose(options, servers)
    if choice is not None:
        return Found(choice, [])
    return Found(None, near_misses(await check_all(options)))
