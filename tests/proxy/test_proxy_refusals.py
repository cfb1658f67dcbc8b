"""What the model proxy refuses and what it passes through: tokens it does not know, a spent
budget, provider errors, an unreachable upstream; and the real key in no answer and no log."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from conftest import REAL_KEY, Recorded

from blitz.breaker import BreakerBoard, BreakerPolicy
from blitz.domain import BreakerState
from blitz.llm.usage import PriceTable
from blitz.proxy import ModelProxy, Upstream
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

MESSAGE = {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": []}
CHAT = {"model": "gpt-5", "messages": []}
# input 100 at $3 + output 20 at $15 per MTok
CLAUDE_COST = (100 * 3 + 20 * 15) / 1e6


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def anthropic_headers(token: str | None) -> dict[str, str]:
    headers = {"anthropic-version": "2023-06-01"}
    return {**headers, "x-api-key": token} if token is not None else headers


def openai_headers(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token is not None else {}


@pytest.mark.parametrize("token", ["unknown", "missing", "closed", "other-api"])
async def test_a_token_it_does_not_know_is_refused_in_each_apis_format(
    proxy: ModelProxy, upstream: ModelServer, http: httpx.AsyncClient, token: str
) -> None:
    anthropic_session = proxy.open("anthropic", budget_usd=None, on_usage=None)
    openai_session = proxy.open("openai", budget_usd=None, on_usage=None)
    tokens: dict[str, tuple[str | None, str | None]] = {
        "unknown": ("blitz-not-a-session", "sk-guessed-0123456789abcdef"),
        "missing": (None, None),
        "closed": (anthropic_session.token, openai_session.token),
        "other-api": (openai_session.token, anthropic_session.token),
    }
    claude_token, gpt_token = tokens[token]
    if token == "closed":
        anthropic_session.close()
        openai_session.close()

    claude = await http.post(
        f"{proxy.url}/anthropic/v1/messages", json=MESSAGE, headers=anthropic_headers(claude_token)
    )
    gpt = await http.post(
        f"{proxy.url}/openai/v1/chat/completions", json=CHAT, headers=openai_headers(gpt_token)
    )

    assert (claude.status_code, gpt.status_code) == (401, 401)
    assert claude.json()["type"] == "error"
    assert claude.json()["error"]["type"] == "authentication_error"
    assert "token" in claude.json()["error"]["message"]
    error = gpt.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert upstream.requests == []  # the upstream never saw them


async def test_the_sdks_read_a_refused_token_as_an_authentication_error(
    proxy: ModelProxy, upstream: ModelServer
) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=f"{proxy.url}/anthropic", api_key="blitz-stale", max_retries=0
    ) as claude:
        with pytest.raises(anthropic.AuthenticationError, match="unknown or expired token"):
            await claude.messages.create(**MESSAGE)
    async with openai.AsyncOpenAI(
        base_url=f"{proxy.url}/openai/v1", api_key="blitz-stale", max_retries=0
    ) as gpt:
        with pytest.raises(openai.AuthenticationError) as raised:
            await gpt.responses.create(model="gpt-5", input="hi")
    assert raised.value.code == "invalid_api_key"
    assert upstream.requests == []


async def test_a_spent_budget_refuses_further_requests_with_a_400_naming_it(
    proxy: ModelProxy, upstream: ModelServer
) -> None:
    upstream.add({"reply": {"text": "one", "usage": {"input": 100, "output": 20}}, "times": -1})
    with proxy.open("anthropic", budget_usd=0.0005, on_usage=None) as session:
        async with anthropic.AsyncAnthropic(
            base_url=session.base_url(proxy.url), api_key=session.token, max_retries=2
        ) as claude:
            await claude.messages.create(**MESSAGE)  # $0.0006: the budget is now spent
            assert not session.over_budget
            with pytest.raises(anthropic.BadRequestError) as raised:
                async with claude.messages.stream(**MESSAGE) as stream:
                    await stream.get_final_message()

    assert "this attempt's budget of $0.0005 is spent" in str(raised.value)
    assert raised.value.status_code == 400  # not retried: one request reached the upstream
    assert session.over_budget and session.requests == 1
    assert len(upstream.requests) == 1 and session.usage.cost_usd == pytest.approx(CLAUDE_COST)


async def test_a_budget_lowered_mid_run_cuts_an_openai_client_off(
    proxy: ModelProxy, upstream: ModelServer
) -> None:
    upstream.add({"reply": {"text": "one"}, "times": -1})
    with proxy.open("openai", budget_usd=1.0, on_usage=None) as session:
        async with openai.AsyncOpenAI(
            base_url=session.base_url(proxy.url), api_key=session.token, max_retries=2
        ) as gpt:
            await gpt.chat.completions.create(**CHAT)
            session.budget_usd = 0.0  # the goal's budget ran out elsewhere
            with pytest.raises(openai.BadRequestError) as raised:
                await gpt.responses.create(model="gpt-5", input="hi")

    assert raised.value.code == "budget_exceeded"
    assert "budget of $0.00 is spent" in raised.value.message
    assert session.over_budget and len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("status", "retry_after", "ok"),
    [(429, 7, False), (529, None, False), (500, None, False), (400, None, True), (404, None, True)],
)
async def test_provider_errors_pass_through_unchanged_and_feed_the_breaker(
    proxy: ModelProxy,
    upstream: ModelServer,
    recorded: Recorded,
    http: httpx.AsyncClient,
    status: int,
    retry_after: int | None,
    ok: bool,
) -> None:
    upstream.fail_next(2, status, retry_after=retry_after, message="provider says no")
    direct = await http.post(
        f"{upstream.anthropic_base_url}/v1/messages",
        json=MESSAGE,
        headers=anthropic_headers(REAL_KEY),
    )
    with proxy.open("anthropic", budget_usd=None, on_usage=None) as session:
        proxied = await http.post(
            f"{session.base_url(proxy.url)}/v1/messages",
            json=MESSAGE,
            headers=anthropic_headers(session.token),
        )

    assert proxied.status_code == direct.status_code == status
    assert without_ids(proxied.json()) == without_ids(direct.json())
    assert proxied.json()["error"]["message"] == "provider says no"
    assert proxied.headers.get("retry-after") == direct.headers.get("retry-after")
    if retry_after is not None:
        assert proxied.headers["retry-after"] == "7"
    assert proxied.headers["request-id"].startswith("req_")
    assert recorded.outcomes == [("anthropic", ok)]


@contextlib.contextmanager
def closed_port() -> Iterator[str]:
    """A loopback URL where nothing listens: its port is held (bound, never listening), so no
    other server can take it meanwhile and a connection is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def without_ids(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "request_id"}


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_an_unreachable_upstream_is_a_502_in_the_apis_format(
    http: httpx.AsyncClient, provider: str
) -> None:
    recorded = Recorded()
    with closed_port() as base:
        upstreams = {provider: Upstream(provider, base, REAL_KEY)}
        proxy = ModelProxy(upstreams, prices=PriceTable(), on_outcome=recorded.outcome)
        await proxy.start()
        with proxy.open(provider, budget_usd=None, on_usage=None) as session:
            path = "/v1/messages" if provider == "anthropic" else "/chat/completions"
            reply = await http.post(
                session.base_url(proxy.url) + path,
                json=MESSAGE,
                headers={**anthropic_headers(session.token), **openai_headers(session.token)},
            )
        await proxy.stop()

    assert reply.status_code == 502
    if provider == "anthropic":
        assert reply.json()["error"]["type"] == "api_error"
    else:
        assert reply.json()["error"]["code"] == "upstream_unreachable"
    assert "could not be reached" in reply.text and base not in reply.text
    assert recorded.outcomes == [(provider, False)]


async def test_the_real_key_is_in_no_answer_and_no_log(
    proxy: ModelProxy,
    upstream: ModelServer,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream.add({"reply": {"text": "fine"}})
    upstream.add({"reply": {"text": "streamed"}})
    upstream.fail_next(1, 401)  # the provider rejecting a key says so in its body
    replies: list[httpx.Response] = []

    def failing_usage(_: object) -> None:
        raise RuntimeError("a broken usage callback")

    with proxy.open("anthropic", budget_usd=0.0, on_usage=None) as spent:
        replies.append(await send(http, spent.base_url(proxy.url), spent.token))
    with proxy.open("anthropic", budget_usd=None, on_usage=failing_usage) as session:
        origin = session.base_url(proxy.url)
        for _ in range(3):  # 401 from upstream, fine, streamed
            replies.append(await send(http, origin, session.token, stream=len(replies) == 3))
        replies.append(await send(http, origin, "blitz-unknown"))
    with closed_port() as base:
        upstreams = {"anthropic": Upstream("anthropic", base, REAL_KEY)}
        async with ModelProxy(upstreams, prices=PriceTable()) as dead:
            with dead.open("anthropic", budget_usd=None, on_usage=None) as lost:
                replies.append(await send(http, lost.base_url(dead.url), lost.token))

    assert [r.status_code for r in replies] == [400, 401, 200, 200, 401, 502]
    for reply in replies:
        assert REAL_KEY not in reply.text and REAL_KEY not in str(reply.headers)
    assert "a broken usage callback" in caplog.text  # the logs were captured...
    assert REAL_KEY not in caplog.text  # ...and hold no key
    for record in caplog.records:
        assert REAL_KEY not in record.getMessage() and REAL_KEY not in str(record.exc_text)
    assert REAL_KEY not in repr(proxy.upstreams) and REAL_KEY not in repr(session)


async def send(
    http: httpx.AsyncClient, origin: str, token: str, *, stream: bool = False
) -> httpx.Response:
    return await http.post(
        f"{origin}/v1/messages",
        json={**MESSAGE, "stream": stream},
        headers=anthropic_headers(token),
    )


async def test_a_rate_limited_upstream_opens_its_breaker_and_the_proxy_says_when_to_return(
    upstream: ModelServer, http: httpx.AsyncClient
) -> None:
    clock = ManualClock()
    board = BreakerBoard(clock, default=BreakerPolicy(threshold=2, cooldown=60))
    upstreams = {"anthropic": Upstream("anthropic", upstream.anthropic_base_url, REAL_KEY)}
    proxy = ModelProxy(upstreams, prices=PriceTable(), breakers=board)
    await proxy.start()
    upstream.fail_next(2, 429, retry_after=7)
    upstream.add({"reply": {"text": "back"}})
    try:
        with proxy.open("anthropic", budget_usd=None, on_usage=None) as session:
            origin = session.base_url(proxy.url) + "/v1/messages"
            headers = anthropic_headers(session.token)
            limited = [await http.post(origin, json=MESSAGE, headers=headers) for _ in range(2)]
            # The breaker opened for the 7 s the provider asked: the proxy answers for it.
            refused = await http.post(origin, json=MESSAGE, headers=headers)
            clock.advance(7)
            back = await http.post(origin, json=MESSAGE, headers=headers)
    finally:
        await proxy.stop()

    assert [r.status_code for r in limited] == [429, 429]
    assert limited[0].headers["retry-after"] == "7"  # the provider's own, passed on
    assert refused.status_code == 503 and refused.headers["retry-after"] == "7"
    assert refused.json()["error"]["type"] == "overloaded_error"
    assert "circuit breaker" in refused.text
    assert back.status_code == 200
    assert len(upstream.requests) == 3  # the refused request never reached it
    # Every move of the breaker is kept on the board for the engine to announce and persist.
    moves = [(c.key, c.new) for c in board.drain()]
    assert moves == [
        ("provider:anthropic", BreakerState.OPEN),
        ("provider:anthropic", BreakerState.HALF_OPEN),
        ("provider:anthropic", BreakerState.CLOSED),
    ]
