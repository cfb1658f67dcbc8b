"""``blitz backends``: which agent backends can run here, and installing the agent CLIs."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from blitz import sandbox
from blitz.backends import registry
from blitz.backends.install import (
    CODEX_PACKAGE,
    CODEX_VERSION,
    INSTALL_HINT,
    check_version,
    find_codex,
    install_codex,
    installed_codex,
)
from blitz.cli.common import app, out, print_json
from blitz.config import RepoConfig, load_repo_config
from blitz.errors import ConfigError, UserError
from blitz.settings import Settings

backends = typer.Typer(help="Agent backends: which can run, and installing their CLIs.")
app.add_typer(backends, name="backends", no_args_is_help=True)

INSTALLABLE = ("codex",)

TOOLS_DIR_HELP = "Where blitz installs agent CLIs (default: <BLITZ_HOME>/tools)."


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a backend can run here, and what it needs when it cannot."""

    name: str
    available: bool
    detail: str


def tools_dir(settings: Settings, given: Path | None) -> Path:
    return (given or settings.home / "tools").expanduser().resolve()


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
    """Every backend the registry and ``cfg`` know, with whether it can run here."""
    found = []
    for name in registry.names(cfg.backends):
        if name == "scripted":
            found.append(Availability(name, True, "scripted scenarios, for tests and demos"))
        elif name == "embedded":
            found.append(_embedded(settings, cfg))
        elif name == "codex":
            found.append(await _codex(cfg, tools))
        elif name == "claude-code":
            found.append(await _claude_code(cfg))
        elif name in cfg.backends:
            found.append(_command(name, cfg))
        else:
            found.append(Availability(name, False, "unknown"))
    return found


def _embedded(settings: Settings, cfg: RepoConfig) -> Availability:
    model = cfg.models.agent or cfg.models.default or settings.agent_model or settings.model
    if model:
        return Availability("embedded", True, f"model {model}")
    return Availability(
        "embedded", False, "no model configured: set BLITZ_MODEL (provider:model) or [models]"
    )


async def _codex(cfg: RepoConfig, tools: Path) -> Availability:
    binary = find_codex(cfg.codex, tools)
    if binary is None:
        if cfg.codex.binary:
            why = f"[codex] binary = {cfg.codex.binary!r} was not found"
        else:
            why = f"the codex CLI is not installed: run `{INSTALL_HINT}`"
        return Availability("codex", False, why)
    problem = await check_version(binary)
    if problem:
        return Availability("codex", False, problem)
    return Availability("codex", True, str(binary))


async def _claude_code(cfg: RepoConfig) -> Availability:
    try:
        from blitz.backends.claude_code import _cli_path, check_cli
    except ImportError as exc:
        return Availability("claude-code", False, f"cannot be loaded: {exc}")
    path = _cli_path(cfg.claude_code.cli_path)
    problem = await check_cli(path)
    return Availability("claude-code", not problem, problem or str(path))


def _command(name: str, cfg: RepoConfig) -> Availability:
    command = cfg.backends[name].command
    program = command[0] if command else ""
    if program and (shutil.which(program) or Path(program).expanduser().is_file()):
        return Availability(name, True, " ".join(command))
    return Availability(name, False, f"{program or '(empty command)'} was not found")
