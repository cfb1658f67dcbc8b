"""The environment set-up and the worktree's own environment: real commands in real bubblewrap
jails of real git worktrees, a real HTTP server on 127.0.0.1 as the package registry, real
virtual environments for the editable-install trap."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from blitz import process, sandbox
from blitz.app import App
from blitz.domain import Gates
from blitz.envsetup import (
    DEFAULT_INPUTS,
    SetupSpec,
    cache_env,
    ensure_setup,
    inputs_digest,
    worktree_env,
)
from blitz.errors import RunError
from blitz.sandbox import Policy
from blitz.settings import Settings
from blitz.validation import Validator

NEEDS_BUBBLEWRAP = pytest.mark.skipif(
    not sandbox.probe().ok and not os.environ.get("CI"),
    reason="needs bubblewrap, which CI installs (and there these tests run, and fail without it)",
)

SYSTEM_PYTHON = "/usr/bin/python3"
"""A Python that every jail sees (the system is shown read-only)."""

NEEDS_SYSTEM_PYTHON = pytest.mark.skipif(
    not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"needs {SYSTEM_PYTHON}"
)

CONFINED = pytest.param("required", marks=NEEDS_BUBBLEWRAP, id="jail")
UNCONFINED = pytest.param("off", id="unconfined")


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def blitz_home(tmp_path: Path) -> Path:
    """blitz's data directory: hidden in every jail, as the app's policy hides it."""
    return tmp_path / "blitz"


@pytest.fixture
def worktree(git_repo: Path, blitz_home: Path) -> Path:
    """A linked worktree of a repository whose main branch has a uv.lock, in blitz's data
    directory (as the pool makes them)."""
    (git_repo / "uv.lock").write_text("version = 1\n")
    git("add", "uv.lock", cwd=git_repo)
    git("commit", "-q", "-m", "lock", cwd=git_repo)
    path = blitz_home / "worktrees" / "w1"
    git("worktree", "add", "-q", "--detach", str(path), "main", cwd=git_repo)
    return path


def policy(mode: str, blitz_home: Path, *readable: Path) -> Policy:
    return Policy(mode=mode, hidden=(blitz_home,), readable=readable)


INSTALL = "mkdir -p .venv && cat uv.lock >> .venv/installed && echo installed"
"""A set-up that records, in the directory it installs into, each lockfile it installed."""


def installed(worktree: Path) -> list[str]:
    return (worktree / ".venv" / "installed").read_text().splitlines()


# -- when it runs ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [CONFINED, UNCONFINED])
async def test_the_setup_reruns_when_a_lockfile_changes_and_not_otherwise(
    mode: str, worktree: Path, blitz_home: Path
) -> None:
    spec = SetupSpec(command=INSTALL, keep=(".venv",))
    marker = blitz_home / "markers" / "w1"
    jail = policy(mode, blitz_home).jail(worktree)

    async def setup() -> bool:
        result = await ensure_setup(worktree, spec, marker=marker, jail=jail)
        assert result is None or result.passed, result
        return result is not None

    first = await ensure_setup(worktree, spec, marker=marker, jail=jail)
    assert first is not None and first.passed and first.name == "setup"
    assert first.command == INSTALL and "installed" in first.output_tail
    assert installed(worktree) == ["version = 1"]
    assert marker.is_file()

    assert not await setup()  # nothing changed
    (worktree / "README.md").write_text("# changed, but not an input\n")
    (worktree / "app.py").write_text("print('new file, not an input')\n")
    assert not await setup()
    assert installed(worktree) == ["version = 1"]

    (worktree / "uv.lock").write_text("version = 2\n")
    assert await setup()
    assert installed(worktree) == ["version = 1", "version = 2"]
    assert not await setup()

    (worktree / "requirements-dev.txt").write_text("pytest\n")  # a default input, by its glob
    assert await setup()
    assert not await setup()

    other = SetupSpec(command=INSTALL + " && true", keep=(".venv",))  # another command
    assert await ensure_setup(worktree, other, marker=marker, jail=jail) is not None
    assert await ensure_setup(worktree, other, marker=marker, jail=jail) is None
    assert installed(worktree)[-1] == "version = 2" and len(installed(worktree)) == 4


async def test_no_command_means_no_setup(worktree: Path, blitz_home: Path) -> None:
    marker = blitz_home / "markers" / "w1"
    jail = policy("off", blitz_home).jail(worktree)
    assert await ensure_setup(worktree, SetupSpec(), marker=marker, jail=jail) is None
    assert not marker.exists()


# -- when it fails -----------------------------------------------------------------------------

CHECKED_INSTALL = (
    'echo "resolving dependencies"; '
    'grep -q good uv.lock || { echo "error: package nope-1.0 not found in the registry" >&2; '
    "exit 3; }; " + INSTALL
)
"""A set-up that fails on a lockfile without ``good`` in it."""


@pytest.mark.parametrize("mode", [CONFINED, UNCONFINED])
async def test_a_failing_setup_reports_its_output_and_is_never_taken_as_done(
    mode: str, worktree: Path, blitz_home: Path
) -> None:
    spec = SetupSpec(command=CHECKED_INSTALL)
    marker = blitz_home / "markers" / "w1"
    jail = policy(mode, blitz_home).jail(worktree)

    failed = await ensure_setup(worktree, spec, marker=marker, jail=jail)
    assert failed is not None and not failed.passed and not failed.timed_out
    assert failed.name == "setup" and failed.exit_code == 3
    assert "resolving dependencies" in failed.output_tail
    assert "package nope-1.0 not found in the registry" in failed.output_tail
    assert not marker.exists()
    again = await ensure_setup(worktree, spec, marker=marker, jail=jail)
    assert again is not None and not again.passed  # it is tried again, not taken as done

    (worktree / "uv.lock").write_text("good 1\n")
    done = await ensure_setup(worktree, spec, marker=marker, jail=jail)
    assert done is not None and done.passed
    (worktree / "uv.lock").write_text("bad 2\n")
    broken = await ensure_setup(worktree, spec, marker=marker, jail=jail)
    assert broken is not None and not broken.passed
    # Back to the lockfile that was installed: the failed set-up may have half-changed the
    # installed packages, so it runs again.
    (worktree / "uv.lock").write_text("good 1\n")
    redone = await ensure_setup(worktree, spec, marker=marker, jail=jail)
    assert redone is not None and redone.passed
    assert installed(worktree) == ["good 1", "good 1"]


async def test_a_hanging_setup_is_stopped_at_its_timeout(worktree: Path, blitz_home: Path) -> None:
    spec = SetupSpec(command="echo fetching; sleep 120", timeout=1)
    marker = blitz_home / "markers" / "w1"
    result = await ensure_setup(
        worktree, spec, marker=marker, jail=policy("off", blitz_home).jail(worktree)
    )
    assert result is not None and result.timed_out and not result.passed
    assert result.exit_code is None
    assert "fetching" in result.output_tail and "the set-up was stopped" in result.output_tail
    assert not marker.exists()


@pytest.mark.parametrize("mode", [CONFINED, UNCONFINED])
async def test_the_setup_sees_no_secret_of_blitzs(
    mode: str, worktree: Path, blitz_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLITZ_TEST_API_KEY", "sk-never-in-a-setup")
    monkeypatch.setenv("NPM_TOKEN", "npm_never_in_a_setup")
    spec = SetupSpec(command='test -z "$BLITZ_TEST_API_KEY$NPM_TOKEN" && test "$CI" = true')
    jail = policy(mode, blitz_home).jail(worktree)
    result = await ensure_setup(worktree, spec, marker=blitz_home / "m", jail=jail)
    assert result is not None and result.passed, result.output_tail


async def test_a_missing_worktree_is_a_run_error(tmp_path: Path) -> None:
    jail = policy("off", tmp_path / "blitz").jail(tmp_path / "gone")
    with pytest.raises(RunError, match="gone"):
        await ensure_setup(
            tmp_path / "gone", SetupSpec(command="true"), marker=tmp_path / "m", jail=jail
        )
    assert not (tmp_path / "m").exists()


# -- network and cache -------------------------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[str]:
    """A package registry on 127.0.0.1: every path answers with a package's bytes."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"package {self.path}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


FETCH = (
    f'{SYSTEM_PYTHON} -c "import sys, urllib.request; '
    'sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())" '
)


@NEEDS_BUBBLEWRAP
@NEEDS_SYSTEM_PYTHON
async def test_the_setup_reaches_the_registry_and_fills_the_projects_cache_gates_read_it(
    worktree: Path, blitz_home: Path, registry: str
) -> None:
    cache = blitz_home / "cache" / "p1"
    command = (
        f'mkdir -p "$npm_config_cache" node_modules && {FETCH}{registry}/left-pad-1.3.0.tgz '
        '> "$npm_config_cache/left-pad.tgz" && cp "$npm_config_cache/left-pad.tgz" node_modules/ '
        '&& test "$HOME" = /tmp/home'
    )
    jail = policy("required", blitz_home).jail(worktree)
    marker = blitz_home / "markers" / "w1"
    result = await ensure_setup(
        worktree, SetupSpec(command=command), marker=marker, jail=jail, cache=cache
    )
    assert result is not None and result.passed, result.output_tail
    # Written through the jail into blitz's own cache for the project, not the user's.
    fetched = Path(cache_env(cache)["npm_config_cache"]) / "left-pad.tgz"
    assert fetched.read_text() == "package /left-pad-1.3.0.tgz\n"
    assert (worktree / "node_modules" / "left-pad.tgz").is_file()

    # Gates see the cache as the set-up left it, but have no network.
    gates = Gates(
        build='test -f "$npm_config_cache/left-pad.tgz"',
        test=f"{FETCH}{registry}/x 2>&1 | grep -q -i 'error' && echo offline",
        timeout=60,
    )
    validator = Validator(gates, sandbox=policy("required", blitz_home), packages=cache)
    build, test = await validator.run_gates(worktree)
    assert build.passed, build.output_tail
    assert test.passed and "offline" in test.output_tail, test.output_tail


# -- the worktree's own environment ------------------------------------------------------------


def _venv(path: Path, *, editable: Path) -> Path:
    """A virtual environment with ``editable``'s ``src`` installed as an editable package is
    (a .pth file naming the source directory)."""
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(path)], check=True)
    (site,) = (path / "lib").glob("python3*/site-packages")
    (site / "_editable_app.pth").write_text(f"{editable / 'src'}\n")
    return path


def _package(root: Path, where: str) -> Path:
    package = root / "src" / "app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"WHERE = {where!r}\n")
    return root


WHICH_APP = "python -c 'import app; print(\"imported from\", app.WHERE)'"


@NEEDS_SYSTEM_PYTHON
@pytest.mark.parametrize("mode", [CONFINED, UNCONFINED, pytest.param("", id="no-sandbox")])
async def test_gates_import_the_worktrees_package_not_the_users_editable_checkout(
    mode: str,
    worktree: Path,
    blitz_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The user's checkout, installed in editable mode in the virtual environment blitz runs from.
    checkout = _package(tmp_path / "checkout", "the user's checkout")
    users = _venv(tmp_path / "venv", editable=checkout)
    monkeypatch.setenv("PATH", f"{users / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VIRTUAL_ENV", str(users))
    monkeypatch.setenv("PYTHONPATH", str(checkout / "src"))
    # The trap is real: with blitz's environment, the checkout's package is what is imported.
    trapped = await process.run(WHICH_APP, cwd=worktree, timeout=30, env=process.clean_env())
    assert "imported from the user's checkout" in trapped.output

    # The worktree, set up: its own package, installed in editable mode in its own .venv.
    _package(worktree, "the worktree")
    _venv(worktree / ".venv", editable=worktree)
    # The user's environment is visible in the jail (as blitz's own is: sys.prefix is shown).
    chosen = policy(mode, blitz_home, users, checkout) if mode else None
    validator = Validator(Gates(test=WHICH_APP), sandbox=chosen)
    (result,) = await validator.run_gates(worktree)
    assert result.passed, result.output_tail
    assert "imported from the worktree" in result.output_tail


def test_worktree_env_puts_the_worktrees_programs_first_and_drops_other_environments(
    tmp_path: Path,
) -> None:
    worktree = tmp_path / "w"
    (worktree / ".venv" / "bin").mkdir(parents=True)
    (worktree / "node_modules" / ".bin").mkdir(parents=True)
    other = tmp_path / "other-venv"
    (other / "bin").mkdir(parents=True)
    (other / "pyvenv.cfg").write_text("home = /usr/bin\n")
    elsewhere = tmp_path / "elsewhere" / "node_modules" / ".bin"
    path = os.pathsep.join(
        [str(other / "bin"), str(elsewhere), "/usr/local/bin", str(Path(sys.prefix) / "bin")]
    )
    env = {
        "PATH": path + os.pathsep + "/usr/bin",
        "VIRTUAL_ENV": str(other),
        "PYTHONPATH": "/home/me/checkout/src",
        "PYTHONHOME": "/opt/python",
        "CI": "true",
    }

    out = worktree_env(worktree, env)
    entries = out["PATH"].split(os.pathsep)
    assert entries[:2] == [str(worktree / ".venv" / "bin"), str(worktree / "node_modules/.bin")]
    assert str(other / "bin") not in entries and str(elsewhere) not in entries
    assert "/usr/local/bin" in entries and "/usr/bin" in entries
    if sys.prefix != sys.base_prefix:  # the tests run in a virtual environment: blitz's own
        assert str(Path(sys.prefix) / "bin") not in entries
    assert out["VIRTUAL_ENV"] == str(worktree / ".venv")
    assert "PYTHONPATH" not in out and "PYTHONHOME" not in out
    assert out["CI"] == "true"

    bare = worktree_env(tmp_path / "bare", env)
    assert "VIRTUAL_ENV" not in bare
    assert bare["PATH"].split(os.pathsep)[0] == "/usr/local/bin"


# -- the digest --------------------------------------------------------------------------------


def test_the_inputs_digest_follows_the_inputs_content_and_nothing_else(tmp_path: Path) -> None:
    spec = SetupSpec(command="npm ci")
    empty = inputs_digest(tmp_path, spec)
    (tmp_path / "package-lock.json").write_text("")
    created = inputs_digest(tmp_path, spec)
    assert created != empty  # an empty lockfile is not a missing one
    (tmp_path / "package-lock.json").write_text('{"lockfileVersion": 3}')
    changed = inputs_digest(tmp_path, spec)
    assert changed != created
    (tmp_path / "src.js").write_text("console.log(1)\n")
    assert inputs_digest(tmp_path, spec) == changed
    assert inputs_digest(tmp_path, SetupSpec(command="npm install")) != changed
    assert inputs_digest(tmp_path, SetupSpec(command="npm ci", keep=("node_modules",))) != changed
    only_pkg = SetupSpec(command="npm ci", inputs=("package.json",))
    assert inputs_digest(tmp_path, only_pkg) == inputs_digest(tmp_path, only_pkg)
    assert "package-lock.json" in DEFAULT_INPUTS and "requirements*.txt" in DEFAULT_INPUTS


def test_a_symlinked_input_counts_as_its_target_never_read(tmp_path: Path) -> None:
    spec = SetupSpec(command="uv sync", inputs=("uv.lock",))
    os.mkfifo(tmp_path / "fifo")  # reading it would hang
    (tmp_path / "uv.lock").symlink_to(tmp_path / "fifo")
    first = inputs_digest(tmp_path, spec)
    (tmp_path / "uv.lock").unlink()
    (tmp_path / "uv.lock").symlink_to("/dev/zero")
    assert inputs_digest(tmp_path, spec) != first


# -- a real package manager, through the app ---------------------------------------------------


@pytest.fixture
def npm_registry(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A registry on 127.0.0.1 serving one package tarball: (its URL, its integrity)."""
    served = tmp_path / "registry"
    source = tmp_path / "left-pad" / "package"
    source.mkdir(parents=True)
    (source / "package.json").write_text('{"name": "left-pad", "version": "1.3.0"}\n')
    (source / "index.js").write_text("module.exports = (s, n) => String(s).padStart(n);\n")
    served.mkdir()
    tarball = served / "left-pad-1.3.0.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(source, arcname="package")
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{tarball.name}", integrity
    server.shutdown()
    server.server_close()


def _lock(url: str, integrity: str, version: str = "1.0.0") -> str:
    package = {"version": "1.3.0", "resolved": url, "integrity": integrity}
    return json.dumps(
        {
            "name": "app",
            "version": version,
            "lockfileVersion": 3,
            "requires": True,
            "packages": {
                "": {"name": "app", "version": version, "dependencies": {"left-pad": "1.3.0"}},
                "node_modules/left-pad": package,
            },
        }
    )


@NEEDS_BUBBLEWRAP
@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm")
async def test_npm_ci_through_the_app_runs_once_per_lockfile_and_gates_use_node_modules(
    git_repo: Path, tmp_path: Path, npm_registry: tuple[str, str]
) -> None:
    url, integrity = npm_registry
    test = "node -e \"console.log(require('left-pad')('x', 3))\""
    # A registry nobody listens on: npm must take what it needs from the lockfile's URLs.
    setup = "npm_config_registry=http://127.0.0.1:9/ npm ci"
    (git_repo / "blitz.toml").write_text(
        f'[gates]\ntest = """{test}"""\n[workspace]\nsetup = "{setup}"\nkeep = ["node_modules"]\n'
    )
    (git_repo / "package.json").write_text(
        '{"name": "app", "version": "1.0.0", "dependencies": {"left-pad": "1.3.0"}}\n'
    )
    (git_repo / "package-lock.json").write_text(_lock(url, integrity))
    (git_repo / ".gitignore").write_text("node_modules/\n")
    git("add", "-A", cwd=git_repo)
    git("commit", "-q", "-m", "A Node project", cwd=git_repo)
    home = tmp_path / "home"
    app = App(Settings(home=home))
    try:
        project = await app.register(git_repo)
        worktree = home / "worktrees" / "w1"
        git("worktree", "add", "-q", "--detach", str(worktree), "main", cwd=git_repo)
        env = app.env_setup(project)
        marker = home / "markers" / "w1"

        first = await env.ensure(worktree, marker=marker)
        assert first is not None and first.passed, first.output_tail
        assert "added 1 package" in first.output_tail
        assert (worktree / "node_modules" / "left-pad" / "index.js").is_file()
        # npm's cache is the project's, under blitz's data directory.
        assert any((home / "cache" / project.id / "npm").rglob("*"))
        assert await env.ensure(worktree, marker=marker) is None

        (result,) = await Validator(
            project.gates, sandbox=app.sandbox_policy(project), packages=env.cache
        ).run_gates(worktree)
        assert result.passed and "  x" in result.output_tail, result.output_tail

        (worktree / "package-lock.json").write_text(_lock(url, integrity, version="1.0.1"))
        again = await env.ensure(worktree, marker=marker)
        assert again is not None and again.passed, again.output_tail
        assert env.digest(worktree) == inputs_digest(worktree, env.spec)
    finally:
        await app.aclose()
