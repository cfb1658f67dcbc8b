"""``blitz doctor``: whether this machine can run blitz's agents safely, and what to fix; and
what the configured local model supports and how fast it answers (:mod:`blitz.llm.probe`)."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from blitz import git, sandbox
from blitz.cli.backends import availability, tools_dir
from blitz.cli.common import app, out, print_json
from blitz.config import RepoConfig, load_repo_config
from blitz.errors import ConfigError
from blitz.settings import Settings

if TYPE_CHECKING:
    pass

LOW_DISK = 2 * 1024**3
"""Free bytes under BLITZ_HOME below which worktrees and the store may run out of room."""

USERNS_FILES = {
    "/proc/sys/kernel/unprivileged_userns_clone": "sysctl kernel.unprivileged_userns_clone=1",
    "/proc/sys/user/max_user_namespaces": "sysctl user.max_user_namespaces=15000",
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": (
        "sysctl kernel.apparmor_restrict_unprivileged_userns=0"
    ),
}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str


@app.command()
def doctor(
    repo: Path = typer.Option(Path("."), "--repo", help="Repository whose blitz.toml applies."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    model: list[str] = typer.Option(
        [],
        "--model",
        help="Also try this model (provider:model, hosted ones too); repeatable.",
    ),
    probe: bool = typer.Option(
        True, "--probe/--no-probe", help="Try the configured local models (and --model ones)."
    ),
) -> None:
    """Check git, the sandbox (bubblewrap, user namespaces), keys, agent CLIs and disk space,
    and try the configured local or OpenAI-compatible models once: do they answer, call tools,
    accept JSON schemas, and how fast. Exits with 1 when something blitz needs is missing."""
    settings = Settings()
    try:
        cfg = load_repo_config(repo.expanduser().resolve()) or RepoConfig()
    except ConfigError as exc:
        cfg = RepoConfig()
        config_problem: Check | None = Check("blitz.toml", "fail", str(exc))
    else:
        config_problem = None
    checks = [_git(), *_sandbox(cfg), *_keys(settings), _disk(settings)]
    if config_problem is not None:
        checks.insert(0, config_problem)
    for item in asyncio.run(availability(settings, cfg, tools_dir(settings, None))):
        if item.name != "scripted":
            checks.append(
                Check(f"backend {item.name}", "ok" if item.available else "warn", item.detail)
            )
    if probe:
        checks += asyncio.run(_models(settings, cfg, model))
    if json_out:
        print_json([asdict(check) for check in checks])
    else:
        table = Table(header_style="bold")
        for column in ("check", "status", "detail"):
            table.add_column(column)
        colours = {"ok": "green", "warn": "yellow", "fail": "red"}
        for check in checks:
            table.add_row(
                check.name, f"[{colours[check.status]}]{check.status}[/]", escape(check.detail)
            )
        out.print(table)
    if any(check.status == "fail" for check in checks):
        raise typer.Exit(1)


async def _models(settings: Settings, cfg: RepoConfig, named: list[str]) -> list[Check]:
    """Try each model named, or else the local and OpenAI-compatible models the agent and the
    planner are configured with (hosted ones cost money: only when named)."""
    from blitz.llm.models import COMPATIBLE, LOCAL_SERVERS, parse_model
    from blitz.llm.probe import probe_model

    # In the order blitz.app.App.model_name looks (less a goal's own and the command line's).
    configured = [
        getattr(cfg.models, role)
        or cfg.models.default
        or getattr(settings, f"{role}_model")
        or settings.model
        for role in ("agent", "planner", "recovery")
    ]
    local = (COMPATIBLE, *LOCAL_SERVERS)
    names = named or [name for name in configured if name.partition(":")[0].lower() in local]
    checks: list[Check] = []
    for name in dict.fromkeys(names):
        try:
            found = await probe_model(parse_model(name), settings.provider_config())
        except ConfigError as exc:
            checks.append(Check(f"model {name}", "fail", str(exc)))
            continue
        checks += [Check(f.name, f.status, f.detail) for f in found.findings()]
    return checks


def _git() -> Check:
    if not git.installed():
        return Check("git", "fail", "git is not installed: blitz needs it for every goal")
    return Check("git", "ok", shutil.which("git") or "git")


def _sandbox(cfg: RepoConfig) -> list[Check]:
    mode = cfg.sandbox.mode
    found = sandbox.probe()
    checks = []
    if found.ok:
        checks.append(Check("sandbox", "ok", f"mode {mode}; {found.reason}"))
    elif mode == "off":
        checks.append(
            Check("sandbox", "warn", f'mode "off": agents run unconfined ({found.reason})')
        )
    else:
        checks.append(
            Check("sandbox", "fail", f"mode {mode}, but agents cannot run: {found.reason}")
        )
    if mode == "off" and found.ok:
        checks.append(
            Check(
                "sandbox mode",
                "warn",
                '[sandbox] mode = "off": agents run unconfined although the sandbox works here',
            )
        )
    checks.append(_user_namespaces())
    return checks


def _user_namespaces() -> Check:
    for path, fix in USERNS_FILES.items():
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        closed = value == "0" if "restrict" not in path else value == "1"
        if closed:
            return Check("user namespaces", "fail", f"{path} is {value}: run `{fix}`")
    return Check("user namespaces", "ok", "unprivileged user namespaces are allowed")


def _keys(settings: Settings) -> list[Check]:
    keys = {
        "ANTHROPIC_API_KEY": settings.anthropic_api_key,
        "OPENAI_API_KEY": settings.openai_api_key,
        "GITHUB_TOKEN": settings.github_token,
    }
    return [
        Check(
            name, "ok" if value is not None else "warn", "set" if value is not None else "not set"
        )
        for name, value in keys.items()
    ]


def _disk(settings: Settings) -> Check:
    place = settings.home
    while not place.exists() and place != place.parent:
        place = place.parent  # not made yet: the disk it will be on
    try:
        free = shutil.disk_usage(place).free
    except OSError as exc:
        return Check("disk", "warn", f"cannot measure free space at {place}: {exc}")
    shown = f"{free / 1024**3:.1f} GiB free at {place}"
    if free < LOW_DISK:
        return Check("disk", "warn", f"only {shown}: worktrees and the store need room")
    return Check("disk", "ok", shown)
