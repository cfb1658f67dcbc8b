"""What confines a project's agents, built from blitz's settings: the sandbox policy (with
blitz's own files hidden and the agent CLIs it installed shown read-only) and the model proxy
(the real keys and base URLs behind it, its provider outcomes fed to the breakers)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from blitz.config import SandboxConfig
from blitz.sandbox import Policy
from blitz.settings import Settings

if TYPE_CHECKING:
    from blitz.breaker import BreakerBoard
    from blitz.llm.usage import PriceTable
    from blitz.proxy import ModelProxy


def policy(settings: Settings, sandbox: SandboxConfig, proxy_socket: Path | None) -> Policy:
    """The sandbox policy of a project with ``[sandbox]`` set to ``sandbox``."""
    hidden = [settings.home, settings.worktrees, settings.locks]
    if (db := sqlite_path(settings.db_url)) is not None:
        hidden.append(db.parent)
    readable = [settings.home / "tools", *(Path(p).expanduser() for p in sandbox.readable)]
    return Policy(
        mode=sandbox.mode,
        network=sandbox.network,
        hidden=tuple(hidden),
        readable=tuple(readable),
        proxy_socket=proxy_socket,
    )


def model_proxy(settings: Settings, prices: PriceTable, breakers: BreakerBoard) -> ModelProxy:
    """The model proxy in front of the providers the settings name (not started yet)."""
    from blitz.proxy import ModelProxy, Upstream  # not at import: it loads pydantic-ai

    s = settings
    upstreams = {
        "anthropic": Upstream(
            provider="anthropic",
            base_url=s.anthropic_base_url or "https://api.anthropic.com",
            api_key=s.anthropic_api_key.get_secret_value() if s.anthropic_api_key else "",
        ),
        "openai": Upstream(
            provider="openai",
            base_url=s.openai_base_url or "https://api.openai.com/v1",
            api_key=s.openai_api_key.get_secret_value() if s.openai_api_key else "",
        ),
    }

    return ModelProxy(upstreams, prices=prices, breakers=breakers)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for another database, or one in memory)."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return Path(path).resolve() if path and path != ":memory:" else None
