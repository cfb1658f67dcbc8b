from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from blitz.errors import ConfigError, RunError
from blitz.integrations.github import GitHubClient, open_or_find_pr, parse_github_remote
from blitz.testing.fake_github import FakeGitHub

TOKEN = "ghp_fakeTokenForTests123"
REMOTE = "git@github.com:acme/widgets.git"


class RecordingClock:
    """A clock whose sleeps return at once and are remembered, so retry waits can be checked."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return 1000.0 + sum(self.sleeps)

    def time(self) -> float:
        return 1_700_000_000.0 + sum(self.sleeps)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


@pytest.fixture
async def client(gh: FakeGitHub, clock: RecordingClock) -> AsyncIterator[GitHubClient]:
    async with GitHubClient(TOKEN, base_url=gh.url, retry_delay=0.5, clock=clock) as github:
        yield github


def _statuses(gh: FakeGitHub) -> list[tuple[str, int]]:
    return [(request.method, request.status) for request in gh.requests]


# -- remote parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/widgets", ("acme", "widgets")),
        ("https://github.com/acme/widgets.git", ("acme", "widgets")),
        ("https://github.com/acme/widgets/", ("acme", "widgets")),
        ("https://x-access-token:secret@github.com/acme/widgets.git", ("acme", "widgets")),
        ("http://GitHub.com/acme/widgets", ("acme", "widgets")),
        ("git@github.com:acme/widgets.git", ("acme", "widgets")),
        ("git@github.com:acme/widgets", ("acme", "widgets")),
        ("github.com:acme/widgets.git", ("acme", "widgets")),
        ("ssh://git@github.com/acme/widgets.git", ("acme", "widgets")),
        ("ssh://git@github.com:22/acme/widgets.git", ("acme", "widgets")),
        ("  https://github.com/acme/my.repo_2-x.git\n", ("acme", "my.repo_2-x")),
        ("https://github.com/acme/.github", ("acme", ".github")),
        ("https://gitlab.com/acme/widgets.git", None),
        ("git@gitlab.com:acme/widgets.git", None),
        ("https://github.com.evil.example/acme/widgets", None),
        ("https://github.com/acme", None),
        ("https://github.com/acme/widgets/tree/main", None),
        ("https://github.com/acme/.git", None),
        ("https://github.com/acme/widgets?x=1", None),
        ("ftp://github.com/acme/widgets", None),
        ("/srv/git/widgets.git", None),
        ("../widgets", None),
        ("C:/repos/widgets", None),
        ("", None),
    ],
)
def test_parse_github_remote(url: str, expected: tuple[str, str] | None) -> None:
    assert parse_github_remote(url) == expected


def test_parse_github_remote_on_an_enterprise_host() -> None:
    url = "git@ghe.example.com:team/widgets.git"
    assert parse_github_remote(url) is None
    assert parse_github_remote(url, host="ghe.example.com") == ("team", "widgets")


# -- the client against the fake ------------------------------------------------------------------


async def test_create_then_find(gh: FakeGitHub, client: GitHubClient) -> None:
    url = await client.create_pr(
        "acme",
        "widgets",
        title="blitz: x",
        body="the body",
        head="blitz/x",
        base="main",
        draft=True,
    )

    assert url == "https://github.com/acme/widgets/pull/1"
    [pull] = gh.pulls
    assert (pull["title"], pull["body"], pull["draft"]) == ("blitz: x", "the body", True)
    assert (pull["head"]["ref"], pull["base"]["ref"]) == ("blitz/x", "main")
    assert await client.find_open_pr("acme", "widgets", "blitz/x") == url
    assert await client.find_open_pr("acme", "widgets", "blitz/other") is None
    assert await client.find_open_pr("acme", "gadgets", "blitz/x") is None
    sent = gh.requests[0].headers
    assert sent["accept"] == "application/vnd.github+json"
    assert sent["x-github-api-version"] == "2022-11-28"
    assert sent["user-agent"] == "blitz"
    assert "head=acme%3Ablitz%2Fx" in gh.requests[1].query


async def test_open_or_find_pr_opens_one_pull_request_only(
    gh: FakeGitHub, client: GitHubClient
) -> None:
    first = await open_or_find_pr(
        client, remote_url=REMOTE, title="blitz: x", body="b", head="blitz/x", base="main"
    )
    # A resumed process, with a client of its own, finds the same pull request.
    async with GitHubClient(TOKEN, base_url=gh.url) as other:
        second = await open_or_find_pr(
            other,
            remote_url="https://github.com/acme/widgets.git",
            title="blitz: x (again)",
            body="b2",
            head="blitz/x",
            base="main",
        )

    assert first == second == "https://github.com/acme/widgets/pull/1"
    assert len(gh.pulls) == 1
    assert gh.pulls[0]["title"] == "blitz: x"
    assert [r.method for r in gh.requests] == ["GET", "POST", "GET"]


async def test_open_or_find_pr_rejects_a_remote_that_is_not_github(client: GitHubClient) -> None:
    with pytest.raises(ConfigError) as info:
        await open_or_find_pr(
            client,
            remote_url="https://bob:hunter2@gitlab.com/acme/widgets.git",
            title="t",
            body="b",
            head="blitz/x",
            base="main",
        )

    assert "not a repository on github.com" in str(info.value)
    assert "hunter2" not in str(info.value)


async def test_rejected_token_is_a_config_error_without_the_token(gh: FakeGitHub) -> None:
    wrong = "ghp_wrongSecretValue987"
    async with GitHubClient(wrong, base_url=gh.url, retry_delay=0) as client:
        with pytest.raises(ConfigError) as info:
            await client.create_pr("acme", "widgets", title="t", body="b", head="h", base="main")

    message = str(info.value)
    assert "rejected the token" in message and "Bad credentials" in message
    assert "Pull requests" in message  # says how to fix it
    assert wrong not in message and TOKEN not in message
    assert wrong not in repr(client)
    assert _statuses(gh) == [("POST", 401)]  # never retried
    assert gh.pulls == []


async def test_forbidden_is_a_config_error(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.fail_next(status=403, message="Resource not accessible by personal access token")

    with pytest.raises(ConfigError, match="Resource not accessible"):
        await client.create_pr("acme", "widgets", title="t", body="b", head="h", base="main")
    assert _statuses(gh) == [("POST", 403)]


async def test_unknown_repository_is_a_config_error(clock: RecordingClock) -> None:
    with FakeGitHub(token=TOKEN, repos=["acme/widgets"]) as gh:
        async with GitHubClient(TOKEN, base_url=gh.url, clock=clock) as client:
            with pytest.raises(ConfigError, match="does not exist or the token cannot see it"):
                await client.find_open_pr("acme", "gadgets", "blitz/x")


async def test_duplicate_pull_request_is_a_final_run_error(
    gh: FakeGitHub, client: GitHubClient
) -> None:
    await client.create_pr("acme", "widgets", title="t", body="b", head="blitz/x", base="main")

    with pytest.raises(RunError) as info:
        await client.create_pr("acme", "widgets", title="t", body="b", head="blitz/x", base="main")

    assert not info.value.retryable
    assert "A pull request already exists for acme:blitz/x" in str(info.value)
    assert _statuses(gh) == [("POST", 201), ("POST", 422)]


async def test_server_errors_are_retried_with_backoff(
    gh: FakeGitHub, client: GitHubClient, clock: RecordingClock
) -> None:
    gh.fail_next(2, status=502)

    url = await client.create_pr("acme", "widgets", title="t", body="b", head="h", base="main")

    assert url.endswith("/pull/1")
    assert _statuses(gh) == [("POST", 502), ("POST", 502), ("POST", 201)]
    assert clock.sleeps == [0.5, 1.0]
    assert len(gh.pulls) == 1


async def test_rate_limit_waits_as_long_as_retry_after_says(
    gh: FakeGitHub, client: GitHubClient, clock: RecordingClock
) -> None:
    gh.fail_next(status=429, retry_after=7)

    assert await client.find_open_pr("acme", "widgets", "blitz/x") is None

    assert _statuses(gh) == [("GET", 429), ("GET", 200)]
    assert clock.sleeps == [7.0]


async def test_primary_rate_limit_403_waits_for_the_reset(
    gh: FakeGitHub, client: GitHubClient, clock: RecordingClock
) -> None:
    reset = int(clock.time()) + 12
    gh.fail_next(
        status=403,
        message="API rate limit exceeded",
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )

    assert await client.find_open_pr("acme", "widgets", "blitz/x") is None

    assert _statuses(gh) == [("GET", 403), ("GET", 200)]
    assert clock.sleeps == [12.0]


async def test_retry_after_beyond_the_limit_fails_at_once(
    gh: FakeGitHub, client: GitHubClient, clock: RecordingClock
) -> None:
    gh.fail_next(status=429, retry_after=3600)

    with pytest.raises(RunError, match="wait 3600 s") as info:
        await client.find_open_pr("acme", "widgets", "blitz/x")

    assert info.value.retryable
    assert clock.sleeps == []
    assert len(gh.requests) == 1


async def test_retries_are_bounded(
    gh: FakeGitHub, client: GitHubClient, clock: RecordingClock
) -> None:
    gh.fail_next(10, status=503)

    with pytest.raises(RunError) as info:
        await client.create_pr("acme", "widgets", title="t", body="b", head="h", base="main")

    assert info.value.retryable
    assert "HTTP 503" in str(info.value) and "tried 4 times" in str(info.value)
    assert _statuses(gh) == [("POST", 503)] * 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert gh.pulls == []


async def test_timeouts_are_retried_then_reported_as_retryable(clock: RecordingClock) -> None:
    connections = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            await reader.read()  # never answer; the client gives up and closes
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with GitHubClient(
            TOKEN, base_url=f"http://127.0.0.1:{port}", timeout=0.05, clock=clock
        ) as client:
            with pytest.raises(RunError, match=r"no answer within 0\.05 s") as info:
                await client.find_open_pr("acme", "widgets", "blitz/x")
    finally:
        server.close()
        await server.wait_closed()

    assert info.value.retryable
    assert isinstance(info.value.__cause__, Exception)
    assert len(clock.sleeps) == 3
    assert connections == 4


def test_a_missing_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no GitHub token"):
        GitHubClient("  ")


async def test_open_or_find_pr_when_the_answer_to_opening_was_lost(
    gh: FakeGitHub, client: GitHubClient
) -> None:
    # GitHub opens the pull request but its answer never arrives; the retry then finds it exists.
    gh.fail_next(status=502, after=True, method="POST")

    url = await open_or_find_pr(
        client, remote_url=REMOTE, title="t", body="b", head="blitz/x", base="main"
    )

    assert url == "https://github.com/acme/widgets/pull/1"
    assert len(gh.pulls) == 1
    assert _statuses(gh) == [("GET", 200), ("POST", 502), ("POST", 422), ("GET", 200)]
