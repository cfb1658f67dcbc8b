"""The model proxy in front of the scripted model server, driven by the real Anthropic and OpenAI
SDKs: the token is swapped for the real key, answers pass through, and every response is metered
into the session as it happens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from conftest import REAL_KEY, Recorded
from proxy_helpers import ANTHROPIC_EVENTS, HeldUpstream, event

from blitz.domain import Usage
from blitz.llm.usage import PriceTable
from blitz.proxy import ModelProxy, ProxySession, Upstream
from blitz.testing.model_server import ModelServer

CLAUDE = "claude-sonnet-4-6"  # $3 in, $15 out, $0.30 cache read, $3.75 cache write per MTok
GPT = "gpt-5"  # $1.25 in, $10 out, $0.125 cache read per MTok


def ask(text: str) -> Any:
    return [{"role": "user", "content": text}]


@pytest.fixture
async def claude_session(
    proxy: ModelProxy,
) -> AsyncIterator[tuple[ProxySession, list[Usage], anthropic.AsyncAnthropic]]:
    seen: list[Usage] = []
    with proxy.open("anthropic", budget_usd=None, on_usage=seen.append, label="t1") as session:
        async with anthropic.AsyncAnthropic(
            base_url=session.base_url(proxy.url), api_key=session.token, max_retries=0
        ) as client:
            yield session, seen, client


@pytest.fixture
async def gpt_session(
    proxy: ModelProxy,
) -> AsyncIterator[tuple[ProxySession, list[Usage], openai.AsyncOpenAI]]:
    seen: list[Usage] = []
    with proxy.open("openai", budget_usd=None, on_usage=seen.append, label="t2") as session:
        async with openai.AsyncOpenAI(
            base_url=session.base_url(proxy.url), api_key=session.token, max_retries=0
        ) as client:
            yield session, seen, client


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_messages_pass_through_with_the_real_key_and_are_metered(
    upstream: ModelServer,
    recorded: Recorded,
    claude_session: tuple[ProxySession, list[Usage], anthropic.AsyncAnthropic],
    stream: bool,
) -> None:
    session, seen, claude = claude_session
    text = "A reply long enough to be streamed in several deltas."
    usage = {"input": 7, "output": 3, "cached": 5, "cache_write": 2}
    upstream.add({"reply": {"text": text, "usage": usage}})

    if stream:
        async with claude.messages.stream(model=CLAUDE, max_tokens=50, messages=ask("hi")) as s:
            pieces = [piece async for piece in s.text_stream]
            message = await s.get_final_message()
        assert len(pieces) > 1
    else:
        message = await claude.messages.create(model=CLAUDE, max_tokens=50, messages=ask("hi"))

    assert message.content[0].text == text  # type: ignore[union-attr]
    assert message.usage.input_tokens == 7 and message.usage.cache_read_input_tokens == 5
    [request] = upstream.requests
    # The scripted server demands REAL_KEY: a 200 means the proxy sent it, as x-api-key.
    assert (request.status, request.api_key_header, request.stream) == (200, "x-api-key", stream)
    cost = (7 * 3 + 5 * 0.3 + 2 * 3.75 + 3 * 15) / 1e6
    expected = Usage(input_tokens=14, output_tokens=3, cached_tokens=5, cost_usd=cost)
    assert seen == [expected]
    assert session.usage == expected and session.requests == 1
    assert recorded.outcomes == [("anthropic", True)]


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_chat_completions_pass_through_and_are_metered(
    upstream: ModelServer,
    recorded: Recorded,
    gpt_session: tuple[ProxySession, list[Usage], openai.AsyncOpenAI],
    stream: bool,
) -> None:
    session, seen, gpt = gpt_session
    text = "A reply long enough to be streamed in several chunks."
    upstream.add({"reply": {"text": text, "usage": {"input": 10, "output": 4, "cached": 6}}})

    if stream:
        async with gpt.chat.completions.stream(
            model=GPT, messages=ask("hi"), stream_options={"include_usage": True}
        ) as s:
            pieces = [e.delta async for e in s if e.type == "content.delta"]
            completion = await s.get_final_completion()
        assert len(pieces) > 1
    else:
        completion = await gpt.chat.completions.create(model=GPT, messages=ask("hi"))

    assert completion.choices[0].message.content == text
    [request] = upstream.requests
    assert (request.path, request.status, request.api_key_header) == (
        "/v1/chat/completions",
        200,
        "authorization",
    )
    cost = (10 * 1.25 + 6 * 0.125 + 4 * 10) / 1e6
    assert seen == [Usage(input_tokens=16, output_tokens=4, cached_tokens=6, cost_usd=cost)]
    assert session.usage == seen[0]
    assert recorded.outcomes == [("openai", True)]


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_responses_pass_through_and_are_metered(
    upstream: ModelServer,
    gpt_session: tuple[ProxySession, list[Usage], openai.AsyncOpenAI],
    stream: bool,
) -> None:
    session, seen, gpt = gpt_session
    upstream.add({"reply": {"text": "Done.", "usage": {"input": 10, "output": 4, "cached": 6}}})

    if stream:
        async with gpt.responses.stream(model=GPT, input="go") as s:
            async for _ in s:
                pass
            response = await s.get_final_response()
    else:
        response = await gpt.responses.create(model=GPT, input="go")

    assert response.output_text == "Done."
    assert upstream.requests[0].path == "/v1/responses"
    cost = (10 * 1.25 + 6 * 0.125 + 4 * 10) / 1e6
    assert seen == [Usage(input_tokens=16, output_tokens=4, cached_tokens=6, cost_usd=cost)]
    assert session.usage == seen[0]


async def test_count_tokens_and_model_listings_pass_through_unmetered(
    upstream: ModelServer,
    claude_session: tuple[ProxySession, list[Usage], anthropic.AsyncAnthropic],
    gpt_session: tuple[ProxySession, list[Usage], openai.AsyncOpenAI],
) -> None:
    session, seen, claude = claude_session
    gpt_seen, gpt = gpt_session[1], gpt_session[2]

    counted = await claude.messages.count_tokens(model=CLAUDE, messages=ask("x" * 400))
    claude_models = await claude.models.list()
    gpt_models = await gpt.models.list()

    assert counted.input_tokens == 100
    assert CLAUDE in [model.id for model in claude_models.data]
    assert "gpt-5" in [model.id for model in gpt_models.data]
    assert [r.path for r in upstream.requests] == [
        "/v1/messages/count_tokens",
        "/v1/models",
        "/v1/models",
    ]
    assert all(r.status == 200 for r in upstream.requests)
    assert seen == gpt_seen == [] and session.usage == Usage() and session.requests == 2


async def test_client_headers_pass_through_but_its_credential_and_hop_headers_do_not() -> None:
    async with HeldUpstream() as held:
        upstreams = {"openai": Upstream("openai", f"{held.url}/v1", REAL_KEY)}
        async with ModelProxy(upstreams, prices=PriceTable()) as proxy:
            with proxy.open("openai", budget_usd=None, on_usage=None) as session:
                url = f"{session.base_url(proxy.url)}/responses?trace=1"
                headers = {
                    "authorization": f"Bearer {session.token}",
                    "openai-beta": "responses=experimental",
                    "x-custom": "kept",
                    "connection": "keep-alive, x-hop",
                    "x-hop": "dropped",
                    "accept-encoding": "br",
                }
                async with httpx.AsyncClient() as client:
                    request = client.build_request("POST", url, headers=headers, json={})
                    response = await client.send(request, stream=True)
                    held.end()
                    await response.aread()
                    await response.aclose()

    [seen] = held.requests
    assert (seen["method"], seen["path"]) == ("POST", "/v1/responses?trace=1")
    sent = seen["headers"]
    assert sent["authorization"] == f"Bearer {REAL_KEY}"
    assert sent["openai-beta"] == "responses=experimental" and sent["x-custom"] == "kept"
    assert "x-hop" not in sent and "br" not in sent.get("accept-encoding", "")
    assert session.token not in str(sent)
    assert response.status_code == 200 and response.headers["x-upstream"] == "held"


async def test_anthropic_headers_pass_and_an_oauth_key_goes_as_a_bearer_with_its_beta() -> None:
    oauth_key = "sk-ant-oat01-REAL-oauth-token-0123456789"
    async with HeldUpstream() as held:
        upstreams = {"anthropic": Upstream("anthropic", held.url, oauth_key)}
        async with ModelProxy(upstreams, prices=PriceTable()) as proxy:
            with proxy.open("anthropic", budget_usd=None, on_usage=None) as session:
                async with anthropic.AsyncAnthropic(
                    base_url=session.base_url(proxy.url),
                    auth_token=session.token,
                    max_retries=0,
                    default_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
                ) as claude:
                    held.release(*(event(name) for name in ANTHROPIC_EVENTS))
                    held.end()
                    async with claude.messages.stream(
                        model=CLAUDE, max_tokens=5, messages=ask("hi")
                    ) as stream:
                        message = await stream.get_final_message()

    assert message.content[0].text == "Hi"  # type: ignore[union-attr]
    assert session.usage.input_tokens == 1500 and session.usage.output_tokens == 200
    sent = held.requests[0]["headers"]
    assert held.requests[0]["path"] == "/v1/messages"
    assert sent["authorization"] == f"Bearer {oauth_key}" and "x-api-key" not in sent
    assert sent["anthropic-beta"] == "interleaved-thinking-2025-05-14,oauth-2025-04-20"
    assert "anthropic-version" in sent


async def test_a_stream_that_does_not_ask_for_its_usage_is_metered_all_the_same(
    upstream: ModelServer,
    gpt_session: tuple[ProxySession, list[Usage], openai.AsyncOpenAI],
) -> None:
    _, seen, gpt = gpt_session
    upstream.add(
        {"reply": {"text": "streamed, usage not asked", "usage": {"input": 7, "output": 3}}}
    )
    stream = await gpt.chat.completions.create(model=GPT, messages=ask("hi"), stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "streamed, usage not asked"
    [request] = upstream.requests
    assert request.body["stream_options"] == {"include_usage": True}  # the proxy asked for it
    assert [(u.input_tokens, u.output_tokens) for u in seen] == [(7, 3)]
