"""Fixtures of the OpenClaw plugins' tests, one of each per run: the npm workspace
(``integrations/openclaw/``) installed with Node 24 and built with tsc, and a real ``blitz
serve`` (the scripted planner and backend) on 127.0.0.1 with projects to run goals on.

The plugins' own tests (vitest) reach that daemon through the environment :meth:`Daemon.env`
gives them (``BLITZ_URL``, ``BLITZ_TOKEN``, ``BLITZ_PROJECT``...).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from blitz_process import BLITZ, add_test_gate, blitz_env, write_yaml
from engine_helpers import GIT_IDENTITY

from blitz.proctree import send_group
from blitz.testing.fake_github import FakeGitHub
from blitz.testing.openclaw import NodeError, Workspace, install
from blitz.testing.speech_server import SpeechServer

MULTIPLY = "\n\ndef multiply(a, b):\n    return a * b\n"

SCENARIO: dict[str, Any] = {
    # The scripted planner's plan, for goals submitted without one.
    "summary": "Greet the world",
    "tasks": [
        {"id": "hello", "title": "Write hello"},
        {"id": "world", "title": "Append world", "depends_on": ["hello"]},
    ],
    # What the scripted agent does, by task id; a goal's plan picks the tasks it needs.
    "agent": {
        "hello": [[{"write": {"path": "hello.txt", "content": "hello\n"}}]],
        "world": [[{"append": {"path": "hello.txt", "content": "world\n"}}]],
        "broken": [[{"fail": "the greeting cannot be written"}]],
        "slow": [[{"sleep": 120}]],
        "costly": [[{"spend": {"cost_usd": 5.0, "input": 1000, "output": 1000}}]],
        "multiply": [[{"append": {"path": "calc.py", "content": MULTIPLY}}]],
    },
}
"""The daemon's scenario (blitz/testing/scripted.py)."""

PROJECTS = {
    "api": "",
    "gated": "require_plan_approval = true\n",
    "metered": "",
    "calc": "",
    "gated-calc": "require_plan_approval = true\n",
}
"""The projects registered with the daemon: name -> more of its blitz.toml [project] section."""

ON_GITHUB = {"calc", "gated-calc"}
"""Projects whose ``origin`` is on GitHub (the fake one): their goals open pull requests."""

GITHUB_TOKEN = "ghp_blitzOpenClawTest0123456789abcdefAB"

BUDGETS = {"metered": "\n[budget]\ngoal_usd = 1.0\n"}


TIMEOUT = 1200
"""Seconds a test here may take, its share of the session fixtures included: a cold ``npm ci``
downloads ~650 MB, and vitest runs every file of a package in one go."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.timeout(TIMEOUT))
            item.add_marker(pytest.mark.slow)


@dataclass(frozen=True, kw_only=True)
class Daemon:
    """A running ``blitz serve`` and the projects registered with it."""

    url: str
    token: str
    home: Path
    projects: dict[str, Path]
    github: FakeGitHub

    def env(self) -> dict[str, str]:
        """What the plugins' tests read to reach it."""
        return {
            "BLITZ_URL": self.url,
            "BLITZ_TOKEN": self.token,
            "BLITZ_PROJECT": "api",
            "BLITZ_GATED_PROJECT": "gated",
            "BLITZ_METERED_PROJECT": "metered",
        }

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One call of its HTTP API (``/api/...``), as the dashboard makes it; the JSON answer."""
        answer = httpx.request(
            method, f"{self.url}{path}", json=body, timeout=30,
            headers={"Authorization": f"Bearer {self.token}"},
        )  # fmt: skip
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def goal(self, goal_id: str) -> dict[str, Any]:
        """The goal as the daemon has it now (``GET /api/goals/{id}``)."""
        return dict(self.api("GET", f"/api/goals/{goal_id}"))


@dataclass(frozen=True, kw_only=True)
class VitestRun:
    """One ``vitest run`` and its JSON report: per test file, its status and failures."""

    report: dict[str, Any]
    output: str

    def assert_passed(self, root: Path, test_file: str) -> None:
        """Fail with vitest's words unless every test of ``test_file`` (relative to the
        workspace) ran and passed."""
        found = [
            r for r in self.report.get("testResults", []) if r["name"] == str(root / test_file)
        ]
        assert found, f"vitest did not run {test_file}:\n{self.output[-8000:]}"
        result = found[0]
        failures = [
            f"{' > '.join(t['ancestorTitles'] + [t['title']])}: {t['status']}\n"
            + "\n".join(t.get("failureMessages") or [])
            for t in result["assertionResults"]
            if t["status"] != "passed"
        ]
        assert result["status"] == "passed" and not failures and result["assertionResults"], (
            f"{test_file}: {result['status']} {result.get('message', '')}\n"
            + "\n\n".join(failures)[:12000]
        )


def run_vitest(ws: Workspace, paths: list[str], env: dict[str, str], out: Path) -> VitestRun:
    """``vitest run`` of ``paths`` (test files or directories of the workspace) with ``env``
    added, reporting JSON to ``out``; a run that fails still yields its report."""
    report = out / "vitest.json"
    done = ws.run(
        [ws.bin("vitest"), "run", "--reporter=json", f"--outputFile={report}",
         "--reporter=default", *paths],
        env={**os.environ, **env}, timeout=900,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert report.is_file(), f"vitest wrote no report ({done.returncode}):\n{output[-8000:]}"
    return VitestRun(report=json.loads(report.read_text()), output=output)


OFFLINE = {
    "OPENCLAW_NO_AUTO_UPDATE": "1",  # no update checks, no feature statistics
    "OPENCLAW_OFFLINE": "1",  # no downloads of helper binaries
    "OPENCLAW_NO_ONBOARD": "1",
    "OPENCLAW_NO_PROMPT": "1",
}
"""OpenClaw's environment for running offline, without asking anything."""


@dataclass(frozen=True, kw_only=True)
class OpenClawHome:
    """A real ``openclaw`` CLI on a state dir and config of its own (a temp dir): nothing of the
    machine's ``~/.openclaw`` is read or written."""

    ws: Workspace
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "openclaw.json"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **OFFLINE,
            "HOME": str(self.root / "home"),
            "OPENCLAW_STATE_DIR": str(self.root / "state"),
            "OPENCLAW_CONFIG_PATH": str(self.config_path),
        }

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.ws.run([self.ws.bin("openclaw"), *args], env=self.env(), timeout=timeout)

    def check(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (
            f"openclaw {' '.join(args)}: {done.returncode}\n{done.stdout}{done.stderr}"
        )
        return done.stdout

    def config(self) -> dict[str, Any]:
        return dict(json.loads(self.config_path.read_text()))

    def update(self, config: dict[str, Any]) -> None:
        self.config_path.write_text(json.dumps(config, indent=2))

    def install(self, package: str, plugin_id: str, settings: dict[str, Any]) -> None:
        """``openclaw plugins install --link`` of a workspace package (it is outside ClawHub:
        --force; it asks for capabilities: --accept-capabilities), then enabled with
        ``settings`` as its config (a plugin with required settings installs disabled)."""
        self.check(
            "plugins", "install", "--link", "--force", "--accept-capabilities",
            str(self.ws.root / package),
        )  # fmt: skip
        config = self.config()
        entries = config.setdefault("plugins", {}).setdefault("entries", {})
        entries[plugin_id] = {**entries.get(plugin_id, {}), "enabled": True, "config": settings}
        self.update(config)

    def inspect(self, plugin_id: str) -> dict[str, Any]:
        """``openclaw plugins inspect ID --runtime --json``: the plugin as OpenClaw loaded it."""
        return dict(json.loads(self.check("plugins", "inspect", plugin_id, "--runtime", "--json")))


@pytest.fixture(scope="session")
def openclaw_home(
    openclaw_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> OpenClawHome:
    """One OpenClaw state dir and config per run, offline (no update checks, no telemetry);
    each plugin's tests install theirs into it."""
    home = OpenClawHome(ws=openclaw_workspace, root=tmp_path_factory.mktemp("openclaw"))
    (home.root / "home").mkdir()
    home.update({"update": {"checkOnStart": False}, "telemetry": {"enabled": False}})
    return home


def _git_env(root: Path) -> dict[str, str]:
    config = root / "gitconfig"
    config.write_text("")
    return {"GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1", **GIT_IDENTITY}


def _repo(root: Path, name: str, project: str, env: dict[str, str]) -> Path:
    repo = root / name
    toml = '[project]\nbase_branch = "main"\nbackend = "scripted"\n' + project
    add_test_gate(repo, toml + BUDGETS.get(name, ""))
    (repo / "README.md").write_text(f"# {name}\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Initial"]):
        subprocess.run(
            ["git", *args], cwd=repo, env={**os.environ, **env}, check=True, timeout=30,
            capture_output=True,
        )  # fmt: skip
    if name in ON_GITHUB:  # pushed to a bare repository beside it, its pull requests faked
        bare = root / f"{name}-origin.git"
        for args in (
            ["init", "-q", "--bare", str(bare)],
            ["-C", str(repo), "remote", "add", "origin", f"https://github.com/acme/{name}.git"],
            ["-C", str(repo), "remote", "set-url", "--push", "origin", str(bare)],
        ):
            subprocess.run(
                ["git", *args], cwd=root, env={**os.environ, **env}, check=True, timeout=30,
                capture_output=True,
            )  # fmt: skip
    return repo


@pytest.fixture(scope="session")
def openclaw_workspace() -> Workspace:
    """The workspace, ``npm ci``-installed (once per lockfile and node) and built (tsc)."""
    try:
        ws = install()
    except NodeError as exc:
        pytest.fail(str(exc))
    built = ws.run([ws.bin("tsc"), "-b"])
    assert built.returncode == 0, f"tsc -b failed:\n{built.stdout}{built.stderr}"
    return ws


def _speech(server: SpeechServer) -> dict[str, str]:
    """The daemon's speech services: the run's bundled speech server, for its voice session."""
    return {
        "BLITZ_STT_URL": server.url,
        "BLITZ_TTS_URL": server.url,
        "BLITZ_STT_API_KEY": server.key,
        "BLITZ_TTS_API_KEY": server.key,
        "BLITZ_SPEECH_TIMEOUT": "120",
    }


@pytest.fixture(scope="session")
def blitz_daemon(
    tmp_path_factory: pytest.TempPathFactory, speech_server: SpeechServer
) -> Iterator[Daemon]:
    """``blitz serve --scenario`` on 127.0.0.1 (a free port), with :data:`PROJECTS` registered
    and the run's speech server as its speech services (``/api/voice``); stopped (SIGTERM,
    then its whole process group killed) at the end of the run."""
    root = tmp_path_factory.mktemp("openclaw-daemon")
    git = _git_env(root)
    repos = {name: _repo(root, name, extra, git) for name, extra in PROJECTS.items()}
    scenario = write_yaml(root / "scenario.yaml", SCENARIO)
    home = root / "home"
    github = FakeGitHub(token=GITHUB_TOKEN).start()
    git |= {"GITHUB_TOKEN": GITHUB_TOKEN, "BLITZ_GITHUB_API_URL": github.url}
    out, err = root / "serve.out", root / "serve.err"  # files: a full pipe would stall it
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [BLITZ, "serve", "--host", "127.0.0.1", "--port", "0", "--grace", "1",
             "--scenario", str(scenario)],
            env=blitz_env(home, **git, **_speech(speech_server)), stdout=stdout, stderr=stderr,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        lines = _first_lines(process, out, 2)
        url, token = lines[0].split()[4], lines[1].removeprefix("token: ")
        headers = {"Authorization": f"Bearer {token}"}
        for name, repo in repos.items():
            made = httpx.post(
                f"{url}/api/projects", json={"path": str(repo), "name": name},
                headers=headers, timeout=30,
            )  # fmt: skip
            assert made.status_code == 201, made.text
        yield Daemon(url=url, token=token, home=home, projects=repos, github=github)
    finally:
        _stop(process)
        github.stop()


def _first_lines(process: subprocess.Popen[bytes], out: Path, count: int) -> list[str]:
    """The first ``count`` lines ``blitz serve`` printed (it says where it listens, then its
    token); fails with what it said if it exits or says nothing in a minute."""
    deadline = time.monotonic() + 60
    while True:
        lines = out.read_text().splitlines()
        if len(lines) >= count and lines[0].startswith("blitz daemon listening on http://"):
            return lines[:count]
        said = f"{out.read_text()}{out.with_suffix('.err').read_text()}"
        assert process.poll() is None, f"blitz serve exited {process.returncode}: {said}"
        assert time.monotonic() < deadline, f"blitz serve did not start: {said}"
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the daemon's gentle stop), then SIGKILL to its whole group."""
    send_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=30)
    send_group(process.pid, signal.SIGKILL)
    process.communicate()


# The gateway's fixtures, defined here once for every test module of this directory: imported
# into two test modules they would be two session fixtures, and two gateways a run. Last, since
# gateway.py imports Daemon from this module.
from gateway import daemon_relay, openclaw_gateway, scripted_model  # noqa: E402, F401
