"""A real ``blitz serve`` with real repositories, and Debian's chromium driven by playwright.

The daemon runs once per module with the scripted planner and backend (a scenario file), on a
free 127.0.0.1 port, in its own BLITZ_HOME and with git isolated from the machine. Each test
opens a fresh browser profile. Screenshots go to ``$BLITZ_TEST_ARTIFACTS`` (default
``tests/dashboard/artifacts/``, ignored by git).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from skipcheck import missing

from .harness import (
    CHROMIUM,
    SCENARIO,
    Daemon,
    environment,
    make_repo,
    open_page,
    refusing_remote,
    serving,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dashboard: browser tests of the web dashboard")


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest) -> Path:
    default = Path(__file__).parent / "artifacts"
    path = Path(os.environ.get("BLITZ_TEST_ARTIFACTS") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("dashboard")
    env = environment(root)
    scenario = root / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    repos = {
        "greeter": make_repo(root / "greeter", env),
        "approver": make_repo(root / "approver", env, approval=True),
        "pausable": make_repo(root / "pausable", env),
        "publisher": make_repo(root / "publisher", env, remote="origin"),
    }
    remotes = {"publisher": refusing_remote(repos["publisher"], root / "origin.git", env)}
    with serving(root, env, repos, artifacts, "--scenario", str(scenario)) as d:
        d.remotes.update(remotes)
        yield d


# -- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing(f"Chromium ({CHROMIUM})", "apt-get install chromium; playwright downloads none")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def page(
    playwright_driver: Any, daemon: Daemon, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A page in a fresh browser profile; on failure its screenshot is kept as well."""
    with open_page(playwright_driver, artifacts, request) as opened:
        yield opened


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call" and report.failed:
        item.rep_call_failed = True  # type: ignore[attr-defined]
    return report
