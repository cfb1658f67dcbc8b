"""Who can reach a real ``blitz serve``: with no ``--host`` it listens on 127.0.0.1 only, and a
browser on another origin gets CORS headers only for an origin named with ``--cors-origin``."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import Served, serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LISTEN = "0A"
"""The state of a listening socket in /proc/net/tcp."""


def stopped(daemon: Served) -> None:
    code, _, err = daemon.stop(signal.SIGTERM)
    assert code == 0, err


def listening_addresses(port: int) -> list[str]:
    """The local addresses of the sockets listening on TCP ``port``, from the kernel's tables
    (hexadecimal, as /proc/net/tcp and tcp6 write them)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == LISTEN:
                found.append(address)
    return found


def reachable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        try:
            sock.connect((host, port))
        except OSError:
            return False
    return True


@pytest.fixture
def daemons() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for daemon in started:
        daemon.kill()


def test_with_no_host_the_daemon_listens_on_loopback_only(
    tmp_path: Path, daemons: list[Served]
) -> None:
    daemon = serve(tmp_path / "home", host=None)
    daemons.append(daemon)
    port = httpx.URL(daemon.url).port
    assert port is not None

    assert daemon.url == f"http://127.0.0.1:{port}"
    assert listening_addresses(port) == ["0100007F"]  # 127.0.0.1, and nothing else
    assert httpx.get(f"{daemon.url}/api/health", timeout=30).json()["status"] == "ok"
    # Every other address of the machine: 127.0.0.2 is on the loopback interface too, so it
    # answers whatever listens on all of them (0.0.0.0, or :: with IPv4 mapped).
    assert not reachable("127.0.0.2", port)
    assert not reachable("::1", port)

    # CORS is closed: no origin gets the headers a browser needs to read an answer.
    preflight = httpx.options(
        f"{daemon.url}/api/projects",
        headers={"Origin": "http://elsewhere.test", "Access-Control-Request-Method": "GET"},
        timeout=30,
    )
    assert "access-control-allow-origin" not in preflight.headers
    token = daemon.token
    assert token is not None
    read = httpx.get(
        f"{daemon.url}/api/projects",
        headers={"Origin": "http://elsewhere.test", "Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
    stopped(daemon)


def test_cors_origin_lets_the_origins_named_call_and_no_other(
    tmp_path: Path, daemons: list[Served]
) -> None:
    allowed = ("http://dashboard.test:5173", "https://ops.example.test")
    daemon = serve(
        tmp_path / "home", "--cors-origin", allowed[0], "--cors-origin", allowed[1], host=None
    )
    daemons.append(daemon)
    token = daemon.token
    assert token is not None
    url = f"{daemon.url}/api/projects"

    def preflight(origin: str, method: str = "POST") -> httpx.Response:
        return httpx.options(
            url,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type",
            },
            timeout=30,
        )

    def read(origin: str) -> httpx.Response:
        headers = {"Origin": origin, "Authorization": f"Bearer {token}"}
        return httpx.get(url, headers=headers, timeout=30)

    for origin in allowed:
        asked = preflight(origin)
        assert asked.status_code == 200, asked.text
        assert asked.headers["access-control-allow-origin"] == origin
        assert asked.headers["access-control-allow-credentials"] == "true"
        assert "POST" in asked.headers["access-control-allow-methods"]
        allowed_headers = asked.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed_headers and "content-type" in allowed_headers

        answer = read(origin)
        assert answer.status_code == 200 and answer.json() == []
        assert answer.headers["access-control-allow-origin"] == origin
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert "origin" in answer.headers.get("vary", "").lower()

    # A method the API does not take from a browser is refused, even from an allowed origin.
    put = preflight(allowed[0], "PUT")
    assert put.status_code == 400 and "PUT" not in put.headers["access-control-allow-methods"]
    for other in (
        "http://evil.test",
        "http://dashboard.test:5174",
        "https://ops.example.test.evil",
    ):
        refused = preflight(other)
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        # Without Access-Control-Allow-Origin a browser keeps the answer from the page.
        assert "access-control-allow-origin" not in read(other).headers
    stopped(daemon)
