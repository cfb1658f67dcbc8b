"""GitHub pull requests over the REST API.

The client translates GitHub's answers into blitz errors at this edge: a rejected token or a
repository it cannot see is a :class:`~blitz.errors.ConfigError` (the user must act; never retried),
a validation failure a non-retryable :class:`~blitz.errors.RunError`, and rate limits, server
errors and timeouts are retried a bounded number of times before a retryable ``RunError``. The
token never appears in a message, a repr or a URL this module builds.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from blitz.clock import Clock, SystemClock
from blitz.errors import ConfigError, RunError

DEFAULT_BASE_URL = "https://api.github.com"
API_VERSION = "2022-11-28"

_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_REPO = re.compile(r"^[A-Za-z0-9._-]+$")
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^/\s].*)$")
"""scp-like git addresses: ``git@github.com:owner/repo.git``."""
_SCHEMES = frozenset({"https", "http", "ssh", "git", "git+ssh", "ssh+git"})

_TOKEN_HELP = (
    "Create a token with read and write access to pull requests (fine-grained: 'Pull requests: "
    "Read and write' and 'Contents: Read' on the repository; classic: the 'repo' scope) and "
    "set it as GITHUB_TOKEN (or BLITZ_GITHUB_TOKEN) where blitz runs."
)


def parse_github_remote(url: str, *, host: str = "github.com") -> tuple[str, str] | None:
    """``(owner, repo)`` of a git remote URL on ``host``, or None if it is not one.

    Understands ``https://github.com/o/r(.git)``, ``git@github.com:o/r(.git)`` and
    ``ssh://git@github.com(:port)/o/r(.git)``; credentials in the URL are ignored. Pass the
    host of a GitHub Enterprise server as ``host``.
    """
    url = url.strip()
    if "://" in url:
        try:
            parts = urlsplit(url)
            hostname = parts.hostname or ""
        except ValueError:
            return None
        if parts.scheme.lower() not in _SCHEMES or parts.query or parts.fragment:
            return None
        path = parts.path
    else:
        match = _SCP.match(url)
        if match is None:
            return None
        hostname, path = match["host"].lower(), match["path"]
    if hostname != host.lower():
        return None
    segments = path.strip("/").split("/")
    if len(segments) != 2:
        return None
    owner, repo = segments[0], segments[1].removesuffix(".git")
    if not _OWNER.match(owner) or not _REPO.match(repo) or repo in (".", ".."):
        return None
    return owner, repo


class GitHubClient:
    """An async client for the few GitHub REST endpoints blitz needs.

    ``base_url`` is ``https://api.github.com`` or a GitHub Enterprise API root
    (``https://ghe.example.com/api/v3``). Transient failures are retried at most ``max_retries``
    times, waiting ``retry_delay * 2**n`` seconds or as long as GitHub's ``Retry-After`` asks,
    unless that is longer than ``max_wait``. Sleeping goes through ``clock`` so tests need not wait.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        max_wait: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        if not token.strip():
            raise ConfigError(
                f"no GitHub token is configured, so blitz cannot open pull requests. {_TOKEN_HELP}"
            )
        self._token = token
        self._base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._max_wait = max_wait
        self._clock: Clock = clock or SystemClock()
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "blitz",
            },
        )

    def __repr__(self) -> str:
        return f"GitHubClient(base_url={self._base_url!r})"

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def find_open_pr(self, owner: str, repo: str, head_branch: str) -> str | None:
        """The URL of an open pull request from ``head_branch`` of ``owner/repo``, if any."""
        pull = await self.find_open_pull(owner, repo, head_branch)
        return str(pull["html_url"]) if pull else None

    async def find_open_pull(
        self, owner: str, repo: str, head_branch: str
    ) -> dict[str, Any] | None:
        """The open pull request from ``head_branch`` of ``owner/repo`` (GitHub's JSON), if any."""
        pulls = await self._request(
            "GET",
            _pulls_path(owner, repo),
            what=f"list pull requests of {owner}/{repo}",
            params={"head": f"{owner}:{head_branch}", "state": "open", "per_page": "100"},
        )
        if not isinstance(pulls, list):
            raise RunError(
                f"GitHub answered the pull request list of {owner}/{repo} with "
                f"something that is not a list"
            )
        for pull in pulls:
            if isinstance(pull, dict) and pull.get("html_url"):
                return pull
        return None

    async def edit_pr_body(self, owner: str, repo: str, number: int, body: str) -> None:
        """Replace the description of pull request ``number`` of ``owner/repo``."""
        await self._request(
            "PATCH",
            f"{_pulls_path(owner, repo)}/{number}",
            what=f"update the description of pull request #{number} of {owner}/{repo}",
            json={"body": body},
        )

    async def create_pr(
        self,
        owner: str,
        repo: str,
        *,
        title: str,
        body: str,
        head: str,
        base: str,
        draft: bool = False,
    ) -> str:
        """Open a pull request from branch ``head`` into ``base``; return its URL."""
        pull = await self._request(
            "POST",
            _pulls_path(owner, repo),
            what=f"open a pull request on {owner}/{repo} from {head} into {base}",
            json={"title": title, "body": body, "head": head, "base": base, "draft": draft},
        )
        if not isinstance(pull, dict) or not pull.get("html_url"):
            raise RunError(f"GitHub opened a pull request on {owner}/{repo} but did not say where")
        return str(pull["html_url"])

    # -- transport ---------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request, retrying transient failures; return the decoded JSON body."""
        retries = 0
        while True:
            cause: Exception | None = None
            wait: float | None = None
            try:
                response = await self._http.request(method, path, params=params, json=json)
            except httpx.TimeoutException as exc:
                problem, cause = f"no answer within {self._timeout:g} s", exc
            except httpx.TransportError as exc:
                problem, cause = f"cannot reach GitHub ({type(exc).__name__}: {exc})", exc
            else:
                if response.is_success:
                    return self._decode(response, what)
                if not _transient(response):
                    raise self._error(response, what)
                problem = f"HTTP {response.status_code}: {self._message(response)}"
                wait = self._requested_wait(response)
            if retries >= self._max_retries:
                raise RunError(
                    self._scrub(f"could not {what}: {problem} (tried {retries + 1} times)"),
                    retryable=True,
                ) from cause
            delay = wait if wait is not None else self._retry_delay * 2**retries
            if delay > self._max_wait:
                raise RunError(
                    self._scrub(
                        f"could not {what}: {problem}; GitHub asks to wait "
                        f"{delay:.0f} s before trying again"
                    ),
                    retryable=True,
                ) from cause
            retries += 1
            await self._clock.sleep(delay)

    def _requested_wait(self, response: httpx.Response) -> float | None:
        """Seconds GitHub asks us to wait (``Retry-After``, or the rate limit reset), if any."""
        retry_after = response.headers.get("retry-after", "").strip()
        if retry_after:
            if retry_after.isdigit():
                return float(retry_after)
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                return None
            return max(0.0, when.timestamp() - self._clock.time())
        reset = response.headers.get("x-ratelimit-reset", "")
        if response.headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
            return max(0.0, float(reset) - self._clock.time())
        return None

    def _decode(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise RunError(f"could not {what}: GitHub's answer is not JSON") from exc

    def _error(self, response: httpx.Response, what: str) -> Exception:
        """The blitz error for a final, non-transient failure."""
        status, message = response.status_code, self._message(response)
        if status == 401:
            return ConfigError(
                f"GitHub rejected the token (401: {message}) when trying to {what}: it is "
                f"mistyped, expired or revoked. {_TOKEN_HELP}"
            )
        if status == 403:
            return ConfigError(
                f"GitHub refused to let the token {what} (403: {message}): it lacks permission "
                f"on the repository. {_TOKEN_HELP}"
            )
        if status == 404:
            return ConfigError(
                f"GitHub could not {what} (404: {message}): the repository does not exist or the "
                f"token cannot see it. Check the remote URL, the GitHub API URL "
                f"({self._base_url}) and that the token has access to the repository."
            )
        if status == 422:
            return RunError(f"GitHub refused to {what}: {message}", retryable=False)
        return RunError(f"could not {what}: GitHub answered HTTP {status}: {message}")

    def _message(self, response: httpx.Response) -> str:
        """GitHub's error message with its per-field details, short and without the token."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            text = response.text.strip() or response.reason_phrase
            return self._scrub(" ".join(text.split())[:300])
        parts = [str(data.get("message") or response.reason_phrase)]
        for error in data.get("errors") or ():
            if isinstance(error, dict):
                detail = error.get("message") or " ".join(
                    str(error[k]) for k in ("resource", "field", "code") if error.get(k)
                )
                if detail:
                    parts.append(str(detail))
            elif isinstance(error, str):
                parts.append(error)
        return self._scrub("; ".join(parts)[:500])

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***")


async def open_or_find_pr(
    client: GitHubClient,
    *,
    remote_url: str,
    title: str,
    body: str,
    head: str,
    base: str,
    host: str = "github.com",
) -> str:
    """The URL of the open pull request from ``head``, opening it only if there is none.

    Idempotent, so a resumed process never opens a second pull request for the same goal: it
    looks first, and if opening fails because one appeared meanwhile (another process, or a
    request whose answer was lost), it returns that one.
    """
    owner, repo = _owner_repo(remote_url, host)
    existing = await client.find_open_pr(owner, repo, head)
    if existing:
        return existing
    try:
        return await client.create_pr(owner, repo, title=title, body=body, head=head, base=base)
    except RunError as exc:
        if exc.retryable:
            raise
        existing = await client.find_open_pr(owner, repo, head)
        if existing:
            return existing
        raise


async def update_open_pr(
    client: GitHubClient,
    *,
    remote_url: str,
    head: str,
    body: Callable[[str], str],
    host: str = "github.com",
) -> str | None:
    """The URL of the open pull request from ``head``, its description replaced by
    ``body(description as it is)``; None (and nothing changed) when there is none."""
    owner, repo = _owner_repo(remote_url, host)
    pull = await client.find_open_pull(owner, repo, head)
    if pull is None:
        return None
    number = pull.get("number")
    if not isinstance(number, int):
        raise RunError(f"GitHub listed a pull request of {owner}/{repo} without its number")
    await client.edit_pr_body(owner, repo, number, body(str(pull.get("body") or "")))
    return str(pull["html_url"])


def _owner_repo(remote_url: str, host: str) -> tuple[str, str]:
    parsed = parse_github_remote(remote_url, host=host)
    if parsed is None:
        raise ConfigError(
            f"cannot open a pull request: the remote {_redact(remote_url)!r} is not a repository "
            f"on {host} (expected https://{host}/OWNER/REPO or git@{host}:OWNER/REPO.git)"
        )
    return parsed


def _pulls_path(owner: str, repo: str) -> str:
    return f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/pulls"


def _transient(response: httpx.Response) -> bool:
    """Whether trying again later may help: rate limits and server errors."""
    if response.status_code == 429 or response.status_code >= 500:
        return True
    # GitHub signals its primary and secondary rate limits with 403 as well as 429.
    return response.status_code == 403 and (
        response.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in response.headers
    )


def _redact(url: str) -> str:
    """``url`` without any credentials it carries (``https://user:token@host/...``)."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    netloc = "***@" + parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=netloc))
