"""The scripted model server's modules import one way: the script at the bottom, the wire
formats on it, the HTTP server on top, and no cycle among them."""

from __future__ import annotations

import ast
from pathlib import Path

import blitz.testing

TESTING = Path(blitz.testing.__file__).parent
ALLOWED = {
    "turns": set(),
    "wire": {"turns"},
    "anthropic_api": {"turns", "wire"},
    "openai_api": {"turns", "wire"},
    "responses_api": {"turns", "wire", "openai_api"},
    "model_server": {"loopback", "turns", "wire", "anthropic_api", "openai_api", "responses_api"},
}


def imports_of(module: str) -> set[str]:
    """The blitz.testing modules ``module`` imports, at module level or inside a function."""
    tree = ast.parse((TESTING / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "blitz.testing":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("blitz.testing."):
            found.add((node.module or "").removeprefix("blitz.testing."))
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.removeprefix("blitz.testing.")
                for alias in node.names
                if alias.name.startswith("blitz.testing.")
            }
    return found


def test_the_model_server_modules_import_only_downwards() -> None:
    assert {module: imports_of(module) for module in ALLOWED} == ALLOWED
