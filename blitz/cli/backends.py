"""``blitz backends``: which agent backends can run here, and installing the agent CLIs."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from blitz import sandbox
from blitz.backends.availability import Availability, check_all
from blitz.backends.install import CODEX_PACKAGE, CODEX_VERSION, install_codex, installed_codex
from blitz.backends.options import BackendOptions
from blitz.cli.common import app, out, print_json
from blitz.config import RepoConfig, load_repo_config
from blitz.errors import ConfigError, UserError
from blitz.settings import Settings

backends = typer.Typer(help="Agent backends: which can run, and installing their CLIs.")
app.add_typer(backends, name="backends", no_args_is_help=True)

INSTALLABLE = ("codex",)

TOOLS_DIR_HELP = "Where blitz installs agent CLIs (default: <BLITZ_HOME>/tools)."


def tools_dir(settings: Settings, given: Path | None) -> Path:
    return (given or settings.tools).expanduser().resolve()


@backends.command("list")
def list_(
    repo: Path = typer.Option(Path("."), "--repo", help="Repository whose blitz.toml applies."),
    tools: Path | None = typer.Option(None, "--tools-dir", help=TOOLS_DIR_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the backends, whether each can run here, and why not."""
    settings = Settings()
    try:
        cfg = load_repo_config(repo.expanduser().resolve()) or RepoConfig()
    except ConfigError:
        cfg = RepoConfig()
    found = asyncio.run(availability(settings, cfg, tools_dir(settings, tools)))
    if json_out:
        print_json([asdict(item) for item in found])
        return
    table = Table(header_style="bold")
    for column in ("backend", "available", "detail"):
        table.add_column(column)
    for item in found:
        mark = "[green]yes[/]" if item.available else "[red]no[/]"
        table.add_row(item.name, mark, escape(item.detail))
    out.print(table)
    out.print(escape(sandbox_line(cfg)), soft_wrap=True)


def sandbox_line(cfg: RepoConfig) -> str:
    """Whether agents run confined here, and why not."""
    found = sandbox.probe()
    if cfg.sandbox.mode == "off":
        return f'sandbox: mode "off": agents run unconfined ({found.reason})'
    if found.ok:
        return f"sandbox: required; {found.reason}"
    return f"sandbox: required, but agents cannot run here: {found.reason}"


@backends.command("install")
def install(
    name: str = typer.Argument(
        ..., help=f"The backend whose CLI to install: {', '.join(INSTALLABLE)}."
    ),
    tools: Path | None = typer.Option(None, "--tools-dir", help=TOOLS_DIR_HELP),
) -> None:
    """Install a backend's agent CLI (from npm) where blitz finds it."""
    if name not in INSTALLABLE:
        known = ", ".join(INSTALLABLE)
        raise UserError(f"{name!r} has no CLI for blitz to install; installable: {known}")
    directory = tools_dir(Settings(), tools)
    if installed_codex(directory) is None:
        out.print(f"installing {CODEX_PACKAGE}@{CODEX_VERSION} under {directory} ...")
    binary = asyncio.run(install_codex(directory))
    out.print(f"codex {CODEX_VERSION} is installed: {binary}", soft_wrap=True)


async def availability(settings: Settings, cfg: RepoConfig, tools: Path) -> list[Availability]:
    """Every backend the registry and ``cfg`` know, with whether a run could use it here."""
    return await check_all(options_of(settings, cfg, tools))


def options_of(settings: Settings, cfg: RepoConfig, tools: Path) -> BackendOptions:
    """What a run of a project with ``cfg`` builds its backends from, as far as they are
    checked (the provider environment, the agent model, the CLIs' settings)."""
    scenario = None
    if settings.scenario:
        from blitz.testing.scripted import Scenario  # the fakes, only when a scenario is given

        scenario = Scenario.load(Path(settings.scenario))
    return BackendOptions(
        scenario=scenario,
        model=cfg.models.agent or cfg.models.default or settings.agent_model or settings.model,
        providers=settings.provider_config(),
        claude_code=cfg.claude_code,
        codex=cfg.codex,
        commands=dict(cfg.backends),
        env=settings.provider_env(),
        tools_dir=tools,
    )
