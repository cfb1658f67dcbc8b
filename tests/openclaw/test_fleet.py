"""The ``fleet`` plugin and the typed client it is built on, tested by their own vitest files
against the real ``blitz serve`` of this run (one vitest run, one pytest test per file: it
fails with vitest's account of what failed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Daemon, VitestRun, run_vitest

from blitz.testing.openclaw import Workspace, workspace

PACKAGES = ("blitz-api", "fleet")
FILES = sorted(
    str(path.relative_to(workspace()))
    for package in PACKAGES
    for path in (workspace() / package / "test").glob("*.test.ts")
)


@pytest.fixture(scope="module")
def vitest(
    openclaw_workspace: Workspace, blitz_daemon: Daemon, tmp_path_factory: pytest.TempPathFactory
) -> VitestRun:
    out = tmp_path_factory.mktemp("vitest-fleet")
    return run_vitest(openclaw_workspace, [f"{p}/test" for p in PACKAGES], blitz_daemon.env(), out)


def test_every_package_has_tests() -> None:
    assert {Path(f).parts[0] for f in FILES} == set(PACKAGES), FILES


@pytest.mark.parametrize("test_file", FILES)
def test_vitest_file_passes(
    vitest: VitestRun, openclaw_workspace: Workspace, test_file: str
) -> None:
    vitest.assert_passed(openclaw_workspace.root, test_file)
