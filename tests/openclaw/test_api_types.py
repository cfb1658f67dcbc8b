"""The plugins' API types are generated from the daemon's OpenAPI document and never drift: the
committed ``blitz-api/openapi.json`` is what the live daemon serves, and ``blitz-api/src/
schema.ts`` is what openapi-typescript makes of it. Either differing fails with the command that
regenerates both."""

from __future__ import annotations

import difflib
from pathlib import Path

import httpx
from conftest import Daemon

from blitz.server.openapi import text
from blitz.testing.openclaw import FIX_TYPES, OPENAPI, SCHEMA, Workspace, generate_schema


def _same(committed: Path, fresh: str) -> None:
    old = committed.read_text()
    if old != fresh:
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True), fresh.splitlines(keepends=True),
                f"{committed.name} (committed)", f"{committed.name} (from the daemon)", n=1,
            )
        )  # fmt: skip
        raise AssertionError(f"{committed} is stale; regenerate it with {FIX_TYPES}\n{diff[:6000]}")


def test_the_committed_document_is_what_the_live_daemon_serves(
    blitz_daemon: Daemon, openclaw_workspace: Workspace
) -> None:
    served = httpx.get(
        f"{blitz_daemon.url}/api/openapi.json",
        headers={"Authorization": f"Bearer {blitz_daemon.token}"},
        timeout=30,
    )
    assert served.status_code == 200, served.text
    _same(openclaw_workspace.root / OPENAPI, text(served.json()))


def test_the_committed_types_are_generated_from_that_document(
    blitz_daemon: Daemon, openclaw_workspace: Workspace, tmp_path: Path
) -> None:
    served = httpx.get(
        f"{blitz_daemon.url}/api/openapi.json",
        headers={"Authorization": f"Bearer {blitz_daemon.token}"},
        timeout=30,
    )
    document = tmp_path / "openapi.json"
    document.write_text(text(served.json()))
    generate_schema(openclaw_workspace, document, tmp_path / "schema.ts")
    _same(openclaw_workspace.root / SCHEMA, (tmp_path / "schema.ts").read_text())
