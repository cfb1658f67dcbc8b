"""Repositories and daemons for the notification tests that run blitz as a user does."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blitz_process import add_test_gate, git, start
from receiver import Request

KEY = "webhook-signing-key-0123"

PLAN: dict[str, Any] = {
    "summary": "Greet the world",
    "tasks": [
        {"id": "hello", "title": "Write hello"},
        {"id": "review", "title": "Review", "depends_on": ["hello"], "allow_empty": True},
    ],
}
AGENT: dict[str, Any] = {
    "agent": {"hello": [[{"write": {"path": "hello.txt", "content": "hello\n"}}]]},
}
NOTIFY_TOML = """
[notify]
events = ["goal.succeeded", "goal.failed"]
webhook_url_env = "HOOK_URL"
webhook_secret_env = "HOOK_KEY"
"""


def make_repo(root: Path, toml: str = NOTIFY_TOML, name: str = "repo") -> Path:
    """A committed repository with a passing gate, the scripted backend and ``toml``."""
    repo = root / name
    add_test_gate(repo, '[project]\nbase_branch = "main"\nbackend = "scripted"\n' + toml)
    (repo / "README.md").write_text(f"# {name}\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial commit")
    return repo


def signed(request: Request, key: str = KEY) -> bool:
    """Whether ``request`` carries the right X-Blitz-Signature for its body."""
    expected = "sha256=" + hmac.new(key.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get("X-Blitz-Signature", ""), expected)


@dataclass
class Served:
    """A `blitz serve` process, its URL and (on its first start) its token."""

    proc: subprocess.Popen[str]
    url: str
    token: str

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit code and what it wrote on stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=90)
        return self.proc.returncode, err


def serve(home: Path, *args: str | Path, **env: str) -> Served:
    """Start `blitz serve` on a free port of 127.0.0.1 and wait until it listens."""
    proc = start(home, "serve", "--host", "127.0.0.1", "--port", "0", *args, **env)
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < 2:
        line = proc.stdout.readline()
        if not line:
            out, err = proc.communicate(timeout=10)
            raise AssertionError(f"blitz serve exited {proc.returncode}: {lines} {out} {err}")
        lines.append(line.rstrip("\n"))
    token = "" if "kept hashed" in lines[1] else lines[1].split()[1]
    return Served(proc=proc, url=lines[0].split()[4], token=token)
