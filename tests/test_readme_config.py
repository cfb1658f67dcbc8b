"""The blitz.toml the README shows is blitz.toml blitz reads: every ``toml`` block of it (but the
one for Codex's own config) is valid, so a setting the README names exists and is spelt right."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from blitz.config import RepoConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_blitz_toml_block_of_the_readme_is_valid() -> None:
    blocks = re.findall(r"^```toml\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    checked = 0
    for block in blocks:
        settings = tomllib.loads(block)
        if "mcp_servers" in settings:  # Codex's ~/.codex/config.toml, not blitz's
            continue
        RepoConfig.model_validate(settings)
        checked += 1
    assert checked >= 5
    small = next(block for block in blocks if "stuck_repeats = 2" in block)
    assert tomllib.loads(small)["agent"]["draft"] is True
