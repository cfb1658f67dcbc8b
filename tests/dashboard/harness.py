"""What the dashboard tests share: the daemon they start, its scenario, and how to start it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from blitz_process import BLITZ, add_test_gate

CHROMIUM = Path(os.environ.get("BLITZ_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATIC = Path(__file__).parents[2] / "blitz" / "server" / "static"
START_TIMEOUT = 60.0

# Every goal the daemon plans follows this plan; the agent steps sleep so that a person (and a
# test) can see tasks running before they turn green.
SCENARIO: dict[str, Any] = {
    "summary": "Greet the world",
    "tasks": [
        {"id": "hello", "title": "Write hello", "instructions": "Create hello.txt saying hello."},
        {"id": "world", "title": "Append world", "depends_on": ["hello"]},
        {"id": "shout", "title": "Shout it", "depends_on": ["hello"]},
        {
            "id": "review",
            "title": "Review the greeting",
            "depends_on": ["world", "shout"],
            "allow_empty": True,
        },
    ],
    "agent": {
        "hello": [
            [
                {"say": "writing hello.txt"},
                {"sleep": 1.5},
                {"spend": {"cost_usd": 0.02, "input": 1200, "output": 300}},
                {"write": {"path": "hello.txt", "content": "hello\n"}},
            ]
        ],
        "world": [
            [
                {"say": "appending world"},
                {"sleep": 1.0},
                {"spend": {"cost_usd": 0.01, "input": 800, "output": 100}},
                {"append": {"path": "hello.txt", "content": "world\n"}},
            ]
        ],
        "shout": [[{"sleep": 1.0}, {"write": {"path": "shout.txt", "content": "HELLO\n"}}]],
        # best of N: the second candidate of hello gives up
        "hello#2": [[{"say": "trying another way"}, {"fail": "candidate 2 gave up"}]],
        # a goal submitted with its own plan (RECOVERY_PLAN): fails once, recovery inserts prep
        "flaky": [
            [
                {"say": "trying without preparation"},
                {"sleep": 1.0},
                {"fail": "flaky.txt needs prep.txt"},
            ],
            [{"write": {"path": "flaky.txt", "content": "ok\n"}}],
        ],
        "prep": [[{"write": {"path": "prep.txt", "content": "prepared\n"}}]],
        # a goal submitted with SLOW_PLAN: long enough to act on it while it runs
        "slow": [[{"say": "taking my time"}, {"sleep": 60}]],
    },
    "recovery": {
        "flaky": [
            {
                "root_cause": "prep.txt must exist before flaky.txt",
                "action": "insert",
                "tasks": [{"id": "prep", "title": "Prepare the ground"}],
            }
        ]
    },
}

RECOVERY_PLAN: dict[str, Any] = {
    "summary": "A task that needs recovery",
    "tasks": [
        {"id": "flaky", "title": "Write flaky.txt"},
        {
            "id": "after",
            "title": "Look at the result",
            "depends_on": ["flaky"],
            "allow_empty": True,
        },
    ],
}


# -- the daemon and the page ------------------------------------------------------------------


@dataclass
class Daemon:
    url: str
    token: str
    home: Path
    log: Path
    repos: dict[str, Path] = field(default_factory=dict)
    remotes: dict[str, Path] = field(default_factory=dict)  # bare repositories pushed to

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One API call with the token; the JSON answer, or raise with the problem details."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None
        return json.loads(text) if text else None


def _git(repo: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=30)


def make_repo(path: Path, env: dict[str, str], *, approval: bool = False, remote: str = "") -> Path:
    """A committed repository with a quick passing test gate in its blitz.toml; ``remote``:
    the git remote its goals are pushed to ("" for none)."""
    path.mkdir(parents=True)
    _git(path, env, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# demo\n")
    approve = "require_plan_approval = true\n" if approval else ""
    project = f'[project]\nbase_branch = "main"\nremote = "{remote}"\n'
    add_test_gate(path, project + approve)
    _git(path, env, "add", "-A")
    _git(path, env, "commit", "-q", "-m", "A repository with a test")
    return path


def refusing_remote(repo: Path, bare: Path, env: dict[str, str]) -> Path:
    """A bare repository as ``repo``'s ``origin``, whose pre-receive hook refuses every push
    while ``<bare>/deny`` exists, saying what that file holds."""
    _git(repo, env, "init", "-q", "--bare", str(bare))
    hook = bare / "hooks" / "pre-receive"
    deny = shlex.quote(str(bare / "deny"))
    hook.write_text(f"#!/bin/sh\nif [ -e {deny} ]; then cat {deny} >&2; exit 1; fi\nexit 0\n")
    hook.chmod(0o755)
    _git(repo, env, "remote", "add", "origin", str(bare))
    return bare


def pushed(bare: Path, branch: str) -> bool:
    """Whether ``branch`` reached the bare repository."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        cwd=bare,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


def environment(root: Path) -> dict[str, str]:
    """The daemon's environment: its own home, git isolated, no keys or settings of the user."""
    outside = ("BLITZ_", "ANTHROPIC_", "OPENAI_", "GITHUB_TOKEN", "CLAUDE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(outside)}
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
        env.pop(name, None)
    gitconfig = root / "gitconfig"
    gitconfig.write_text("")
    env.update(
        BLITZ_HOME=str(root / "home"),
        GIT_CONFIG_GLOBAL=str(gitconfig),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.test",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.test",
        COLUMNS="300",
        # a refused push leaves its goal pending at once (no minutes of retries with backoff)
        BLITZ_PUBLISH_RETRY_FOR="0",
    )
    return env


def wait_for_start(proc: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    deadline = time.monotonic() + START_TIMEOUT
    url = token = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", text):
            url = m.group(1)
        if m := re.search(r"^token: (\S+)$", text, re.M):
            token = m.group(1)
        if url and token:
            return url, token
        if proc.poll() is not None:
            raise AssertionError(f"blitz serve exited {proc.returncode}:\n{text}")
        time.sleep(0.05)
    raise AssertionError(f"blitz serve did not start within {START_TIMEOUT}s:\n{log.read_text()}")


SLOW_PLAN: dict[str, Any] = {
    "summary": "A slow task and one after it",
    "tasks": [
        {"id": "slow", "title": "Take a minute"},
        {"id": "later", "title": "Run after the slow one", "depends_on": ["slow"]},
    ],
}


@contextlib.contextmanager
def serving(
    root: Path, env: dict[str, str], repos: dict[str, Path], artifacts: Path, *args: str
) -> Iterator[Daemon]:
    """A ``blitz serve --port 0`` in ``root`` with ``env``, ``repos`` added as projects; its log
    is copied to ``artifacts``, and it must not have logged a traceback."""
    if not (STATIC / "index.html").is_file():
        pytest.fail(
            f"the dashboard is not built ({STATIC} has no index.html): "
            "run `npm --prefix dashboard ci && npm --prefix dashboard run build`"
        )
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [BLITZ, "serve", "--port", "0", "--grace", "5", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url, token = wait_for_start(proc, log)
        d = Daemon(url=url, token=token, home=Path(env["BLITZ_HOME"]), log=log, repos=repos)
        for name, path in repos.items():
            d.api("POST", "/api/projects", {"path": str(path), "name": name})
        yield d
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.copyfile(log, artifacts / f"{root.name}-serve.log")
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text()


@contextlib.contextmanager
def open_page(
    driver: Any, artifacts: Path, request: pytest.FixtureRequest, *args: str
) -> Iterator[Any]:
    """A page of Chromium in a fresh profile, launched with ``args`` besides the usual ones; it
    must raise nothing, and on failure its screenshot is kept in ``artifacts``."""
    profile = tempfile.mkdtemp(prefix="blitz-chromium-")
    context = driver.chromium.launch_persistent_context(
        profile,
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, *args],
        headless=True,
        viewport={"width": 1440, "height": 1000},
    )
    errors: list[str] = []
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        assert not errors, f"the page raised: {errors}"
    finally:
        if getattr(request.node, "rep_call_failed", False):
            shot = artifacts / f"{request.node.name}-failed.png"
            with contextlib.suppress(Exception):  # the browser may be what failed
                context.pages[0].screenshot(path=str(shot), full_page=True)
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def login(page: Any, daemon: Daemon, token: str | None = None) -> None:
    """Log in with the daemon's token (or ``token``); with the daemon's, until the page keeps it:
    a page opened while the login's request is still out would show the form again."""
    page.goto(daemon.url)
    page.get_by_test_id("login-token").fill(token or daemon.token)
    page.get_by_test_id("login-submit").click()
    if token is None:
        page.get_by_test_id("login-form").wait_for(state="detached")


def submit_goal(
    page: Any, daemon: Daemon, project: str, title: str, backend: str = "scripted"
) -> None:
    project_id = daemon.api("GET", f"/api/projects/{project}")["id"]
    page.get_by_test_id(f"project-{project}").wait_for()  # the overview has loaded
    page.get_by_test_id("goal-project").select_option(value=project_id)
    page.get_by_test_id("goal-title").fill(title)
    page.get_by_test_id("goal-backend").fill(backend)
    page.get_by_test_id("goal-submit").click()
