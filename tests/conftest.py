"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from engine_helpers import isolated_git  # noqa: F401 - the fixture, for every test
from hypothesis import HealthCheck, settings

from blitz import redact, sandbox

if TYPE_CHECKING:
    from blitz.app import App

pytest_plugins = ["skipcheck", "workers", "local_model", "ray_cluster", "speech_service"]
"""A skip for want of something fails a strict run (BLITZ_TEST_STRICT or CI): tests/skipcheck.py."""

settings.register_profile("blitz", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("blitz")
"""No property test races the clock: on a loaded machine (CI, several runs sharing two cores) an
example doing file I/O can take longer than Hypothesis's 200 ms deadline, and generating examples
longer than its "too slow" health check allows; neither says anything about the code. A test that
sets its own ``suppress_health_check`` adds to ``settings.default.suppress_health_check``.
Tests still end at pytest-timeout's limit."""

_OUTSIDE_SETTINGS = ("BLITZ_", "ANTHROPIC_", "OPENAI_", "GITHUB_TOKEN", "CLAUDE_")
"""Environment variables that would point blitz (or an SDK) at real providers or real state."""


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own keys, models and BLITZ_HOME out of every test (and of the blitz
    processes tests start): tests reach only 127.0.0.1 and their own temporary state."""
    for name in list(os.environ):
        if name.startswith(_OUTSIDE_SETTINGS) and not name.startswith("BLITZ_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _secrets_registered_in_the_test_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget after each test the values it (or an app it made) registered for redaction: the
    store redacts every string, so one left over ("12345678") would change what later tests
    store."""
    monkeypatch.setattr(redact, "_secrets", redact.registered())


@pytest.fixture
def git_repo(tmp_path: Path, isolated_git: None) -> Path:  # noqa: F811
    """A git repository at ``tmp_path / "repo"`` with one commit (``README.md``) on ``main``.

    Git is isolated from the machine (``isolated_git``): an empty global config, no system
    config, no inherited GIT_DIR and friends, and the identity set through the environment.
    """
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "README.md").write_text("# demo\n")
    git("add", "README.md", cwd=repo)
    git("commit", "-q", "-m", "Initial commit", cwd=repo)
    return repo


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture
async def apps(tmp_path: Path) -> AsyncIterator[Callable[..., App]]:
    """Makes apps on fresh homes under tmp_path, following a scenario (the scripted planner and
    backend); closes them all at the end."""
    from engine_helpers import make_app

    made: list[App] = []

    def make(scenario: dict[str, Any], *, home: str = "home", **settings: Any) -> App:
        app = make_app(tmp_path / home, scenario, **settings)
        made.append(app)
        return app

    yield make
    for app in made:
        await app.aclose()


@pytest.fixture(scope="session")
def tools_dir() -> Path:
    """Where the real codex CLI is installed, once per session (npm; a failure fails the test)."""
    import asyncio

    from blitz.backends.install import install_codex

    configured = os.environ.get("BLITZ_TEST_TOOLS_DIR", "")
    directory = Path(configured) if configured else Path.home() / ".cache" / "blitz-test-tools"
    asyncio.run(install_codex(directory.expanduser().resolve()))
    return directory.expanduser().resolve()


@pytest.fixture
def bubblewrap() -> None:
    """Tests that run agents or gates in the sandbox: bubblewrap must work here (a skip on a
    developer's machine without it, a failure in a strict run)."""
    from skipcheck import missing  # here: pytest_plugins must import it first, to rewrite it

    found = sandbox.probe()
    if not found.ok:
        missing("a working bubblewrap", found.reason)


@pytest.fixture
def hold_file() -> Iterator[Path]:
    """A path for a file a test removes to let a scripted agent (or gate) go on. It lies under
    ``/var/tmp``, which the sandbox shows read-only, so a jailed ``while [ -e hold ]`` sees it go;
    ``tmp_path`` is hidden from jails as every ``/tmp`` is."""
    import uuid

    root = Path("/var/tmp/blitz-test-holds")
    root.mkdir(parents=True, exist_ok=True)
    path = root / uuid.uuid4().hex
    yield path
    path.unlink(missing_ok=True)
