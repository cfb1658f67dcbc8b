"""A client of the daemon's API for the command line (``blitz run --server``, ``blitz approve``).

Problems the daemon answers become :class:`UserError` (4xx: exit code 2) or :class:`RunError`
(5xx); a daemon that cannot be reached is a UserError naming the URL. :meth:`Client.follow`
reads a goal's event stream and reconnects with ``Last-Event-ID`` when the connection drops
(a daemon restart), so no event is missed or shown twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from blitz.errors import RunError, UserError

ENDS = frozenset({"goal.succeeded", "goal.failed", "goal.cancelled"})
"""Event kinds that end a goal."""


class Client:
    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"--server wants a URL such as http://127.0.0.1:8765, not {url!r}")
        if not token:
            raise UserError(
                "no token for the daemon: pass --token or set BLITZ_SERVER_TOKEN (it was printed "
                "when `blitz serve` first started; `blitz token` makes a new one)"
            )
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the decoded JSON answer (None for an empty one)."""
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise UserError(f"cannot reach the blitz daemon at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        if not response.content:
            return None
        return response.json()

    def follow(
        self, goal_id: str, *, after: int = 0, give_up: float = 120.0
    ) -> Iterator[dict[str, Any]]:
        """The goal's events after ``after``, as they happen, until one ends the goal.

        A dropped connection is retried (with the last id seen) for up to ``give_up`` seconds.
        """
        last = after
        failing_since: float | None = None
        delay = 0.2
        while True:
            try:
                headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last)}
                with self._http.stream(
                    "GET", "/api/events", params={"goal": goal_id}, headers=headers
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _error(response)
                    failing_since, delay = None, 0.2
                    for event in _parse(response.iter_lines()):
                        last = int(event["id"])
                        yield event
                        if event["kind"] in ENDS:
                            return
            except httpx.TransportError as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > give_up:
                    raise RunError(
                        f"lost the blitz daemon at {self.url} ({exc}); goal {goal_id} goes on "
                        "there when it is back"
                    ) from exc
            except UserError:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _parse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Server-sent events' ``data`` (JSON) from the stream's lines; comments are skipped."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield json.loads("\n".join(data))
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))


def _error(response: httpx.Response) -> Exception:
    try:
        problem = response.json()
        detail = str(problem.get("detail") or problem.get("title") or "")
    except (ValueError, AttributeError):
        detail = response.text[:500]
    status = response.status_code
    if status == 401:
        return UserError(f"the daemon refused the token: {detail}")
    if status < 500:
        return UserError(detail or f"the daemon answered {status}")
    return RunError(f"the daemon failed ({status}): {detail}", retryable=status == 503)
