"""The daemon's one-time token is shown even when the first ``blitz serve`` cannot start: it is
made only once the port is the daemon's."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest
from server_helpers import blitz, serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_serve_that_finds_its_port_taken_makes_no_token_and_the_next_shows_one(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        refused = blitz(home, "serve", "--port", str(port))
        assert refused.returncode == 2, (refused.stdout, refused.stderr)
        assert "cannot listen" in refused.stderr and "Traceback" not in refused.stderr
        assert not (home / "server-token.json").exists()
        assert "token" not in refused.stdout

    daemon = serve(home, port=port)
    try:
        token = daemon.token
        assert token is not None and token.startswith("blitz_")
        answer = httpx.get(
            f"{daemon.url}/api/goals", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert answer.status_code == 200
        code, _, err = daemon.stop(signal.SIGTERM)
        assert code == 0, err
    finally:
        daemon.kill()
