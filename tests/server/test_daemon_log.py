"""The log of a real ``blitz serve`` holds no secret, even where it writes an exception's text as
it is: a request that fails with a run error (``blitz.server.problems`` logs its message), and
one that fails unexpectedly (the traceback, logged by blitz and by uvicorn)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from engine_helpers import isolated_git  # noqa: F401 - a fixture
from server_helpers import PLAN, git, make_repo, serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("isolated_git"),
]

SECRET = "k7-Qb2vZr9TmW4xLp8NcYd3F"
"""An API key of no known shape: only its registration (the daemon's own key) can hide it."""

TOO_LONG = "/tmp/" + "x" * 300 + SECRET
"""A path no file system takes: checking it fails with an OSError that quotes it."""


def test_the_daemons_log_holds_no_secret_from_a_failed_request(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path)
    daemon = serve(home, ANTHROPIC_API_KEY=SECRET)
    try:
        token = daemon.token
        assert token is not None
        headers = {"Authorization": f"Bearer {token}"}
        added = httpx.post(
            f"{daemon.url}/api/projects", json={"path": str(repo)}, headers=headers, timeout=30
        )
        assert added.status_code == 201, added.text

        # A run error: git refuses the repository's config, and says the value it refused.
        git(repo, "config", "status.showUntrackedFiles", SECRET)
        failed = httpx.post(
            f"{daemon.url}/api/goals",
            json={"project": added.json()["id"], "title": "Greet", "plan": PLAN},
            headers=headers,
            timeout=30,
        )
        assert failed.status_code == 500 and failed.json()["title"] == "run error", failed.text
        assert "Invalid untracked files mode '[redacted]'" in failed.json()["detail"]

        # An unexpected error: the path is used before anything checks its length.
        broken = httpx.post(
            f"{daemon.url}/api/projects", json={"path": TOO_LONG}, headers=headers, timeout=30
        )
        assert broken.status_code == 500, broken.text
        assert broken.json()["detail"] == "the server failed; see its log"

        code, out, err = daemon.stop(signal.SIGTERM)
    finally:
        daemon.kill()
    assert code == 0, err
    log = "\n".join(daemon.lines) + out + err

    # Both failures were logged with the text that held the secret...
    assert "request POST /api/goals failed: `git status" in err, err
    assert "Invalid untracked files mode '[redacted]'" in err, err
    assert "unexpected error in POST /api/projects" in err and "Traceback" in err, err
    assert "File name too long: '/tmp/xxx" in err and "xxx[redacted]'" in err, err
    # ...and the secret itself is nowhere in what the daemon wrote, nor in its data directory.
    assert SECRET not in log
    for path in home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
