"""A GitHub REST API on 127.0.0.1 that speaks just enough to open and find pull requests.

It is a real HTTP server in a background thread, so the client under test goes through httpx,
sockets and JSON exactly as it would against GitHub::

    with FakeGitHub(token="t") as gh:
        client = GitHubClient("t", base_url=gh.url)
        ...
        assert gh.pulls[0]["head"]["ref"] == "blitz/x"

Endpoints: ``GET /repos/{owner}/{repo}/pulls`` (``head`` and ``state`` filters),
``POST /repos/{owner}/{repo}/pulls``, ``GET`` and ``PATCH /repos/{owner}/{repo}/pulls/{number}``
(title, body, state). Every request needs ``Authorization: Bearer <token>`` (or ``token
<token>``). :meth:`FakeGitHub.fail_next` makes the next requests fail, to exercise retries.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from blitz.testing.loopback import LoopbackServer

DOCS = "https://docs.github.com/rest"

_PULLS = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pulls(?:/(?P<number>\d+))?/?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class SeenRequest:
    """A request the fake answered: what was asked and which status it got."""

    method: str
    path: str  # without the query string
    query: str
    status: int
    headers: Mapping[str, str]  # as sent, except Authorization


@dataclass(frozen=True, slots=True, kw_only=True)
class _Failure:
    status: int
    headers: Mapping[str, str]
    message: str
    after: bool  # handle the request first, then answer with the failure
    method: str  # only requests with this method; "" for any


class FakeGitHub(LoopbackServer):
    """An in-memory GitHub on ``127.0.0.1`` at a free port; see the module docstring.

    ``repos`` (``"owner/repo"`` names) limits which repositories exist; by default all do.
    ``pulls`` holds the pull requests opened, as GitHub's JSON objects; ``requests`` every request
    answered, in order.
    """

    def __init__(self, *, token: str = "t", repos: Iterable[str] | None = None) -> None:
        self.token = token
        self.repos = None if repos is None else frozenset(repos)
        self.pulls: list[dict[str, Any]] = []
        self.requests: list[SeenRequest] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        super().__init__()

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 502,
        retry_after: float | None = None,
        message: str = "",
        headers: Mapping[str, str] | None = None,
        after: bool = False,
        method: str = "",
    ) -> None:
        """Answer the next ``count`` authorized requests with ``status`` and GitHub's error body,
        plus a ``Retry-After`` header and any other ``headers`` given.

        With ``after`` the requests still take effect (a pull request is created), as when
        GitHub did the work but its answer was lost on the way. With ``method`` only requests
        with that method fail; others pass untouched.
        """
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = f"{retry_after:g}"
        failure = _Failure(
            status=status,
            headers=extra,
            message=message or _reason(status),
            after=after,
            method=method.upper(),
        )
        with self._lock:
            self._failures.extend([failure] * count)

    name = "fake-github"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(_Handler):
            github = fake

        return Handler

    # -- the API, called from the server's threads -------------------------------------------

    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """Answer one request: ``(status, extra headers, JSON body)``. Records it."""
        parts = urlsplit(target)
        authorization = ""
        sent = {}
        for name, value in headers.items():
            if name.lower() == "authorization":
                authorization = value
            else:
                sent[name.lower()] = value
        with self._lock:
            status, extra, payload = self._answer(
                method, parts.path, parts.query, authorization, body
            )
            self.requests.append(
                SeenRequest(
                    method=method, path=parts.path, query=parts.query, status=status, headers=sent
                )
            )
        return status, extra, payload

    def _answer(
        self, method: str, path: str, query: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token") or given != self.token:
            return 401, {}, _error(401, "Bad credentials")
        failure = next((f for f in self._failures if f.method in ("", method)), None)
        if failure is not None:
            self._failures.remove(failure)
            if failure.after:
                self._route(method, path, query, body)
            return failure.status, dict(failure.headers), _error(failure.status, failure.message)
        return self._route(method, path, query, body)

    def _route(
        self, method: str, path: str, query: str, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        match = _PULLS.match(path)
        if match is None:
            return 404, {}, _error(404, "Not Found")
        owner, repo, number = match["owner"], match["repo"], match["number"]
        if self.repos is not None and f"{owner}/{repo}" not in self.repos:
            return 404, {}, _error(404, "Not Found")
        if number is not None:
            if method not in ("GET", "PATCH"):
                return 404, {}, _error(404, "Not Found")
            for pull in self.pulls:
                if pull["number"] == int(number) and pull["base"]["repo"]["full_name"] == (
                    f"{owner}/{repo}"
                ):
                    return self._edit(pull, body) if method == "PATCH" else (200, {}, pull)
            return 404, {}, _error(404, "Not Found")
        if method == "GET":
            return 200, {}, self._list(owner, repo, parse_qs(query))
        if method == "POST":
            return self._create(owner, repo, body)
        return 404, {}, _error(404, "Not Found")

    def _list(self, owner: str, repo: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        state = query.get("state", ["open"])[0]
        head = query.get("head", [""])[0]
        found = []
        for pull in self.pulls:
            if pull["base"]["repo"]["full_name"] != f"{owner}/{repo}":
                continue
            if state != "all" and pull["state"] != state:
                continue
            # GitHub wants "owner:branch"; a bare branch matches the repository's own owner.
            if head and pull["head"]["label"] != (head if ":" in head else f"{owner}:{head}"):
                continue
            found.append(pull)
        return found

    def _edit(self, pull: dict[str, Any], body: bytes) -> tuple[int, dict[str, str], Any]:
        """``PATCH`` a pull request: its title, body and state, as far as given."""
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return 400, {}, _error(400, "Problems parsing JSON")
        if not isinstance(data, dict):
            return 400, {}, _error(400, "Problems parsing JSON")
        for key in ("title", "body", "state"):
            if isinstance(data.get(key), str):
                pull[key] = data[key]
        return 200, {}, pull

    def _create(self, owner: str, repo: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return 400, {}, _error(400, "Problems parsing JSON")
        if not isinstance(data, dict):
            return 400, {}, _error(400, "Problems parsing JSON")
        missing = [key for key in ("title", "head", "base") if not data.get(key)]
        if missing:
            errors = [
                {"resource": "PullRequest", "field": key, "code": "missing_field"}
                for key in missing
            ]
            return 422, {}, _error(422, "Validation Failed", errors)
        full_name = f"{owner}/{repo}"
        label = f"{owner}:{data['head']}"
        for pull in self.pulls:
            if (
                pull["base"]["repo"]["full_name"] == full_name
                and pull["state"] == "open"
                and pull["head"]["label"] == label
                and pull["base"]["ref"] == data["base"]
            ):
                errors = [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {label}.",
                    }
                ]
                return 422, {}, _error(422, "Validation Failed", errors)
        number = len(self.pulls) + 1
        pull = {
            "number": number,
            "url": f"{self.url}/repos/{full_name}/pulls/{number}",
            "html_url": f"https://github.com/{full_name}/pull/{number}",
            "state": "open",
            "title": str(data["title"]),
            "body": str(data.get("body") or ""),
            "draft": bool(data.get("draft", False)),
            "head": {"ref": data["head"], "label": label, "repo": {"full_name": full_name}},
            "base": {
                "ref": data["base"],
                "label": f"{owner}:{data['base']}",
                "repo": {"full_name": full_name},
            },
        }
        self.pulls.append(pull)
        return 201, {}, pull


class _Handler(BaseHTTPRequestHandler):
    github: FakeGitHub
    server_version = "FakeGitHub"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.github._handle(
            self.command, self.path, dict(self.headers.items()), body
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read :attr:`FakeGitHub.requests` instead."""


def _error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> Any:
    """GitHub's error body."""
    payload: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors:
        payload["errors"] = errors
    return payload


def _reason(status: int) -> str:
    if status == 429:
        return "API rate limit exceeded"
    if status >= 500:
        return "Server Error"
    return "Error"
