"""The plugins' TypeScript is strict and lint-clean: ``tsc -b`` (strict, every package; the
fixture builds with it and fails on any error) and eslint with typescript-eslint's strict,
type-checked rules over the whole workspace."""

from __future__ import annotations

from blitz.testing.openclaw import Workspace


def test_the_workspace_type_checks_strictly(openclaw_workspace: Workspace) -> None:
    checked = openclaw_workspace.run([openclaw_workspace.bin("tsc"), "-b", "--force"])
    assert checked.returncode == 0, f"tsc -b failed:\n{checked.stdout}{checked.stderr}"


def test_the_workspace_is_lint_clean(openclaw_workspace: Workspace) -> None:
    linted = openclaw_workspace.run([openclaw_workspace.bin("eslint"), "--max-warnings", "0", "."])
    assert linted.returncode == 0, f"eslint found problems:\n{linted.stdout}{linted.stderr}"
