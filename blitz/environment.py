"""What a command that only reads the store needs of the settings, read without pydantic: where
blitz keeps its state (the home and the database) and the secrets set, to redact.

:class:`blitz.settings.Settings` is the one settings tree; importing pydantic-settings costs a
third of a second, more than ``blitz status`` may take in all. The names and defaults of these
few settings live here and ``Settings`` takes them from here, so the two read the same variables
alike: ``BLITZ_*`` and the aliases below, case-insensitively, an empty variable unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "BLITZ_"

SECRETS: dict[str, tuple[str, ...]] = {
    "github_token": ("BLITZ_GITHUB_TOKEN", "GITHUB_TOKEN"),
    "anthropic_api_key": (
        "BLITZ_ANTHROPIC_API_KEY",
        "ANTHROPIC_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
    ),
    "openai_api_key": ("BLITZ_OPENAI_API_KEY", "OPENAI_API_KEY"),
    # The others are read from their own name: BLITZ_ and the field's name.
    **{
        f"{kind}_api_key": (f"{ENV_PREFIX}{kind.upper()}_API_KEY",)
        for kind in ("compatible", "stt", "tts", "speech")
    },
}
"""Each secret setting and the variables it is read from, the first one set winning."""


def default_home() -> Path:
    import platformdirs  # only when BLITZ_HOME is unset

    return Path(platformdirs.user_data_dir("blitz", appauthor=False))


def absolute_home(home: Path) -> Path:
    return home.expanduser().resolve()


def database_url(home: Path, url: str) -> str:
    """The store's URL: ``url`` (any SQLAlchemy URL), else SQLite at ``<home>/blitz.db``."""
    return url or f"sqlite:///{home / 'blitz.db'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """The home, the store's URL and the secrets set, as :class:`~blitz.settings.Settings` has
    them."""

    home: Path
    database_url: str
    secrets: tuple[str, ...]


def read_environment(environ: Mapping[str, str] | None = None) -> Environment:
    """Read ``environ`` (the process's environment by default) as the settings do."""
    found = {k.lower(): v for k, v in (os.environ if environ is None else environ).items() if v}

    def setting(*names: str) -> str:
        return next((found[n.lower()] for n in names if n.lower() in found), "")

    given = setting(f"{ENV_PREFIX}HOME")
    home = absolute_home(Path(given) if given else default_home())
    secrets = tuple(s for names in SECRETS.values() if (s := setting(*names)))
    url = database_url(home, setting(f"{ENV_PREFIX}DATABASE_URL"))
    return Environment(home=home, database_url=url, secrets=secrets)
