"""Whether a backend can do a run here: everything the run will need, checked before it starts.

Each backend is checked for what its runs use, from the same :class:`BackendOptions` a run builds
it from: the agent CLI and its version, the key it authenticates with, the model and the server
that answers for it. Claude Code and Codex run apart from the user's own logins (a temporary
``CLAUDE_CONFIG_DIR`` / ``CODEX_HOME``), so a login does not make them usable; a key blitz passes
in does (for Claude Code, an API key or the token ``claude setup-token`` prints). A hosted
provider is not called (a key is taken at its word); a server of one's own (a local shorthand, or
any on this machine) is asked to list its models.

``scripted`` plays a scenario (the demo's, a test's): without one it is no agent at all.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from blitz.backends import local_servers, registry
from blitz.backends.install import INSTALL_HINT, check_version, find_codex
from blitz.backends.options import BackendOptions
from blitz.errors import ConfigError

OAUTH_PREFIX = "sk-ant-oat"
"""Anthropic OAuth tokens (``claude setup-token``) start so: good for Claude Code only."""

CLAUDE_KEY = (
    "set ANTHROPIC_API_KEY to an API key, or to the token `claude setup-token` prints (a "
    "Claude subscription)"
)
SERVER_TIMEOUT = 5.0
"""Seconds a model server of one's own has to list its models before a run is refused."""

LOGGED_IN = "; you are logged in to Claude Code, but blitz runs it apart from your own login"


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a backend can run here; ``detail`` says with what, or what it needs."""

    name: str
    available: bool
    detail: str


def claude_logged_in(home: Path) -> bool:
    """Whether the user has logged in to Claude Code (its credentials under ``home``)."""
    if (home / ".claude" / ".credentials.json").is_file():
        return True
    try:
        state = json.loads((home / ".claude.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and bool(state.get("oauthAccount"))


async def check_all(
    options: BackendOptions, *, logged_in: bool | None = None
) -> list[Availability]:
    """Every backend the registry and ``options.commands`` know, checked."""
    return [
        await check(name, options, logged_in=logged_in) for name in registry.names(options.commands)
    ]


async def check(
    name: str, options: BackendOptions, *, logged_in: bool | None = None
) -> Availability:
    """Whether backend ``name`` can do a run with ``options``; ``logged_in``: the user is logged
    in to Claude Code (said when its key is missing; None: look in the home directory)."""
    if name == "scripted":
        if options.scenario is not None:
            return Availability(name, True, "plays the given scenario (tests and the demo)")
        return Availability(
            name, False, "plays a scenario (--scenario), for tests and the demo: not an agent"
        )
    if name == "embedded":
        return await _embedded(options)
    if name == "claude-code":
        return await _claude_code(options, logged_in)
    if name == "codex":
        return await _codex(options)
    if name in options.commands:
        return _command(name, options)
    return Availability(name, False, f"unknown; known: {', '.join(registry.names())}")


async def require(name: str, options: BackendOptions, *, logged_in: bool | None = None) -> None:
    """Build backend ``name`` as a run would (a ConfigError if it cannot be made), then check
    that it can run here: a ConfigError saying what is missing otherwise, before anything
    starts. ``logged_in`` None: look for a Claude Code login when its key is missing."""
    registry.create_backend(name, options)
    found = await check(name, options, logged_in=logged_in)
    if not found.available:
        raise ConfigError(
            f"the {name} backend cannot run here: {found.detail}.\n"
            "`blitz backends list` shows which can; choose one with --backend or "
            "[project] backend in blitz.toml (`blitz init --force` picks one)."
        )


async def _embedded(options: BackendOptions) -> Availability:
    name = "embedded"
    if not options.model:
        return Availability(
            name, False, "needs a model: set BLITZ_MODEL (provider:model) or [models] in blitz.toml"
        )
    from blitz.llm.models import COMPATIBLE, LOCAL_SERVERS, OPENAI_URL, parse_model

    try:
        spec = parse_model(options.model)
    except ConfigError as exc:
        return Availability(name, False, str(exc).splitlines()[0])
    providers = options.providers
    model = str(spec)
    if spec.provider == "anthropic":
        key = providers.anthropic_api_key if providers else ""
        if not key:
            return Availability(name, False, f"model {model} needs ANTHROPIC_API_KEY")
        if key.startswith(OAUTH_PREFIX):
            return Availability(
                name,
                False,
                f"model {model} needs an Anthropic API key: ANTHROPIC_API_KEY holds a Claude "
                "subscription token, which only Claude Code takes (--backend claude-code)",
            )
        return Availability(name, True, f"model {model}, key from ANTHROPIC_API_KEY")
    if spec.provider == "openai":
        base = spec.base_url or (providers.openai_base_url if providers else "")
        other_server = bool(base) and urlsplit(base).hostname != urlsplit(OPENAI_URL).hostname
        if not (providers and providers.openai_api_key) and not other_server:
            return Availability(name, False, f"model {model} needs OPENAI_API_KEY")
        return Availability(name, True, f"model {model}")
    url = spec.base_url or (providers.compatible_base_url if providers else "")
    if not url:
        return Availability(
            name, False, f"model {model} needs its server's URL: {COMPATIBLE}:{spec.name}@URL"
        )
    if spec.provider not in LOCAL_SERVERS and not _loopback(url):
        return Availability(name, True, f"model {model} (a server elsewhere: not asked)")
    listed = await local_servers.listed_models(url, timeout=SERVER_TIMEOUT)
    if listed is None:
        return Availability(
            name, False, f"model {model}: no server answers at {url}; start it, or set another"
        )
    if (
        spec.provider == "ollama"
        and listed
        and spec.name not in listed
        and (f"{spec.name}:latest" not in listed)
    ):
        return Availability(
            name,
            False,
            f"model {model}: Ollama at {url} does not have it (`ollama pull {spec.name}`); it has "
            + ", ".join(listed[:5]),
        )
    where = "" if url == LOCAL_SERVERS.get(spec.provider) else f" at {url}"
    return Availability(name, True, f"model {model}, server answering{where}")


def _loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


async def _claude_code(options: BackendOptions, logged_in: bool | None) -> Availability:
    name = "claude-code"
    try:
        from blitz.backends.claude_code import _cli_path, check_cli
    except ImportError as exc:
        return Availability(name, False, f"cannot be loaded: {exc}")
    configured = options.claude_code.cli_path if options.claude_code else ""
    path = _cli_path(configured)
    problem = await check_cli(path)
    if problem:
        return Availability(name, False, problem)
    key = options.env.get("ANTHROPIC_API_KEY", "")
    if not key:
        if logged_in is None:
            logged_in = claude_logged_in(Path.home())
        return Availability(name, False, CLAUDE_KEY + (LOGGED_IN if logged_in else ""))
    kind = "a Claude subscription token" if key.startswith(OAUTH_PREFIX) else "an API key"
    return Availability(name, True, f"{path}; ANTHROPIC_API_KEY holds {kind}")


async def _codex(options: BackendOptions) -> Availability:
    name = "codex"
    binary = find_codex(options.codex, options.tools_dir)
    if binary is None:
        if options.codex is not None and options.codex.binary:
            why = f"[codex] binary = {options.codex.binary!r} was not found"
        else:
            why = f"the codex CLI is not installed: run `{INSTALL_HINT}`"
        return Availability(name, False, why)
    problem = await check_version(binary)
    if problem:
        return Availability(name, False, problem)
    if not options.env.get("OPENAI_API_KEY") and not options.env.get("OPENAI_BASE_URL"):
        return Availability(
            name, False, f"{binary} needs OPENAI_API_KEY (blitz runs it apart from a codex login)"
        )
    return Availability(name, True, str(binary))


def _command(name: str, options: BackendOptions) -> Availability:
    command = options.commands[name].command
    program = command[0] if command else ""
    if program and (shutil.which(program) or Path(program).expanduser().is_file()):
        return Availability(name, True, " ".join(command))
    return Availability(name, False, f"{program or '(empty command)'} was not found")
