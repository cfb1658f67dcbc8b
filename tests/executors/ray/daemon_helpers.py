"""`blitz serve` processes on the test cluster (tests/ray_cluster.py): started, given a goal
through the API, waited on. (tests/server/server_helpers.py is the same for the local executor;
its directory is not on the path of these tests.)"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from blitz_process import add_test_gate, git, start

PLAN: dict[str, Any] = {
    "summary": "Greet the world",
    "tasks": [
        {"id": "hello", "title": "Write hello"},
        {"id": "world", "title": "Append world", "depends_on": ["hello"]},
    ],
}
AGENT: dict[str, Any] = {
    "agent": {
        "hello": [[{"write": {"path": "hello.txt", "content": "hello\n"}}]],
        "world": [[{"append": {"path": "hello.txt", "content": "world\n"}}]],
    }
}
DONE = ("succeeded", "failed", "cancelled")


def make_repo(root: Path, toml: str = "") -> Path:
    """A committed repository with a passing unittest gate and the scripted backend."""
    repo = root / "repo"
    add_test_gate(repo, '[project]\nbase_branch = "main"\nbackend = "scripted"\n' + toml)
    (repo / "README.md").write_text("# repo\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial commit")
    return repo


def hold_first(agent: dict[str, Any], task: str, hold: Path) -> dict[str, Any]:
    """``agent`` with ``task`` waiting for ``hold`` to disappear before it does its work."""
    copy: dict[str, Any] = json.loads(json.dumps(agent))
    wait = {"run": f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done"}
    copy["agent"][task][0].insert(0, wait)
    return copy


def committed_tasks(repo: Path, branch: str) -> list[str]:
    log = git(repo, "log", "--reverse", "--format=%(trailers:key=Blitz-Task,valueonly)", branch)
    return [line.strip() for line in log.splitlines() if line.strip()]


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    token: str

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def submit(self, repo: Path, plan: dict[str, Any], title: str = "Greet") -> str:
        project = self.api("POST", "/api/projects", json={"path": str(repo)}).json()
        made = self.api("POST", "/api/goals", json={"project": project["id"], "title": title,
                        "plan": plan})  # fmt: skip
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def wait_state(self, goal_id: str, limit: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + limit
        while True:
            goal = self.api("GET", f"/api/goals/{goal_id}").json()
            if goal["state"] in DONE:
                return dict(goal)
            assert time.monotonic() < deadline, f"goal {goal_id} still {goal['state']}"
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> tuple[int, str]:
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # What it is waiting for: its threads' stacks (the daemon dumps them on SIGUSR1).
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            stacks = err[-8000:]
            raise AssertionError(f"the daemon did not stop in {timeout:g} s:\n{stacks}") from None
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


def serve(home: Path, *args: str | Path, token: str = "", **env: str) -> Served:
    """Start `blitz serve` on 127.0.0.1 and wait until it listens (``token``: the one a previous
    start of this home printed)."""
    proc = start(home, "serve", "--host", "127.0.0.1", "--port", "0", *args, **env)
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < 2:
        line = proc.stdout.readline()
        if not line:
            out, err = proc.communicate(timeout=10)
            raise AssertionError(f"blitz serve exited {proc.returncode}: {lines} {out} {err}")
        lines.append(line.rstrip("\n"))
    assert lines[0].startswith("blitz daemon listening on http://127.0.0.1:"), lines
    made = lines[1].split()[1] if "kept hashed" not in lines[1] else token
    return Served(proc=proc, url=lines[0].split()[4], token=made)


def commands() -> dict[int, str]:
    """Every process of this machine: pid -> its command line (as it shows it)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
                line = raw.replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # it ended meanwhile
                continue
            found[int(entry.name)] = line.strip()
    return found


def holding(hold: Path) -> list[int]:
    """The processes waiting on ``hold`` (a scripted agent's loop)."""
    return [pid for pid, line in commands().items() if str(hold) in line]


def until(condition: Callable[[], Any], why: str, limit: float = 120) -> Any:
    deadline = time.monotonic() + limit
    while not (found := condition()):
        assert time.monotonic() < deadline, why
        time.sleep(0.1)
    return found


def remote_attempts() -> list[int]:
    """Ray worker processes running an attempt (Ray titles them after the task's function)."""
    return [pid for pid, line in commands().items() if line.startswith("ray::attempt_stream")]
