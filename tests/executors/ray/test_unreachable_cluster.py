"""A daemon pointed at a cluster that is not there stops at its start with an error naming the
address; it does not hang in Ray's connect (which retries a dead address for minutes)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from blitz_process import blitz

pytestmark = pytest.mark.timeout(120)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_on_an_unreachable_cluster_fails_at_once_naming_the_address(tmp_path: Path) -> None:
    address = f"127.0.0.1:{closed_port()}"
    # Far less than Ray's own connect (minutes) or the executor's bound on it (60 s): only the
    # probe before Ray is asked lets it end within this.
    done = blitz(
        tmp_path / "home", "serve", "--port", "0", "--executor", "ray", "--ray-address", address,
        timeout=45, RAY_AUTH_MODE="disabled",
    )  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    error = " ".join(done.stderr.split())
    assert error.startswith("error:"), error
    assert f"cannot reach the Ray cluster at {address}" in error
    assert "blitz daemon listening" not in done.stdout  # it never served
