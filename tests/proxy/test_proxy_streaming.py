"""Streams through the model proxy, timed by a held upstream: every event reaches the client as
the upstream sends it, usage is charged the moment its event passes (before the stream ends), a
client that hangs up mid-stream stops the upstream and is still charged for what was said; and
the proxy answers on its unix socket as on its port."""

from __future__ import annotations

import asyncio
import stat
import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from conftest import REAL_KEY
from proxy_helpers import HeldUpstream, event

from blitz.domain import Usage
from blitz.llm.usage import PriceTable
from blitz.proxy import ModelProxy, Upstream
from blitz.testing.model_server import ModelServer

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 5, "stream": True, "messages": []}


@pytest.fixture
async def held() -> AsyncIterator[HeldUpstream]:
    async with HeldUpstream() as upstream:
        yield upstream


@pytest.fixture
async def held_proxy(held: HeldUpstream) -> AsyncIterator[ModelProxy]:
    upstreams = {"anthropic": Upstream("anthropic", held.url, REAL_KEY)}
    async with ModelProxy(upstreams, prices=PriceTable()) as proxy:
        yield proxy


async def read_until(chunks: AsyncIterator[bytes], marker: bytes) -> bytes:
    """Read the client's stream until ``marker`` has arrived (or fail after 5 s)."""
    got = b""
    async with asyncio.timeout(5):
        while marker not in got:
            got += await anext(chunks)
    return got


async def test_events_pass_as_they_arrive_and_usage_is_charged_mid_stream(
    held: HeldUpstream, held_proxy: ModelProxy
) -> None:
    seen: list[Usage] = []
    with held_proxy.open("anthropic", budget_usd=None, on_usage=seen.append) as session:
        url = f"{session.base_url(held_proxy.url)}/v1/messages"
        async with (
            httpx.AsyncClient() as client,
            client.stream("POST", url, json=BODY, headers={"x-api-key": session.token}) as reply,
        ):
            chunks = reply.aiter_raw()
            held.release(event("start"))
            # The client has the first event while the upstream holds back the rest.
            assert b"message_start" in await read_until(chunks, b"message_start")
            assert seen == []
            held.release(event("block"), event("delta"), event("end"))
            await read_until(chunks, b"message_delta")
            # Charged before the stream has ended: the upstream still holds message_stop.
            cost = (1000 * 3 + 500 * 0.3 + 200 * 15) / 1e6  # input_tokens is uncached
            charged = Usage(input_tokens=1500, output_tokens=200, cached_tokens=500, cost_usd=cost)
            assert seen == [charged] and session.usage == charged
            held.release(event("stop"))
            held.end()
            rest = b"".join([chunk async for chunk in chunks])
    assert b"message_stop" in rest and seen == [charged]
    assert reply.status_code == 200 and reply.headers["content-type"] == "text/event-stream"


async def test_a_client_hanging_up_stops_the_upstream_and_is_charged_for_what_was_said(
    held: HeldUpstream, held_proxy: ModelProxy
) -> None:
    seen: list[Usage] = []
    with held_proxy.open("anthropic", budget_usd=None, on_usage=seen.append) as session:
        url = f"{session.base_url(held_proxy.url)}/v1/messages"
        async with httpx.AsyncClient() as client:
            async with client.stream(
                "POST", url, json=BODY, headers={"x-api-key": session.token}
            ) as reply:
                held.release(event("start"), event("block"))
                await read_until(reply.aiter_raw(), b"content_block_start")
            # The client is gone (a cancelled best-of-N candidate, say): the proxy hangs up on
            # the upstream at once, though the upstream has not sent another byte.
            async with asyncio.timeout(5):
                await held.closed.wait()
    # Anthropic's message_start counted the input: that spend is recorded.
    assert seen == [session.usage]
    assert (session.usage.input_tokens, session.usage.output_tokens) == (1500, 1)


async def test_the_unix_socket_serves_like_the_port(tmp_path: Path, upstream: ModelServer) -> None:
    upstream.add({"reply": {"text": "Hello!", "usage": {"input": 7, "output": 3}}})
    upstreams = {"anthropic": Upstream("anthropic", upstream.anthropic_base_url, REAL_KEY)}
    path = tmp_path / "proxy.sock"
    proxy = ModelProxy(upstreams, prices=PriceTable())
    await proxy.start(socket_path=path)
    await proxy.start(socket_path=path)  # idempotent
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and proxy.socket_path == path
        with proxy.open("anthropic", budget_usd=None, on_usage=None) as session:
            transport = httpx.AsyncHTTPTransport(uds=str(path))
            async with httpx.AsyncClient(transport=transport) as client:
                reply = await client.post(
                    f"{session.base_url('http://sandbox')}/v1/messages",
                    json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []},
                    headers={"x-api-key": session.token, "anthropic-version": "2023-06-01"},
                )
        assert reply.status_code == 200 and reply.json()["content"][0]["text"] == "Hello!"
        assert session.usage.output_tokens == 3 and session.usage.cost_usd == (7 + 15) / 1e6
    finally:
        await proxy.stop()
        await proxy.stop()  # idempotent
    assert not path.exists()


async def test_a_reply_is_not_held_back_by_nagle(
    held: HeldUpstream, held_proxy: ModelProxy
) -> None:
    """The proxy's headers and body go in separate writes; with Nagle's algorithm on, the body
    waited for the client's delayed ACK, 40 ms a reply on loopback."""
    times: list[float] = []
    with held_proxy.open("anthropic", budget_usd=None, on_usage=None) as session:
        url = f"{session.base_url(held_proxy.url)}/v1/messages"
        async with httpx.AsyncClient() as client:
            # One kept-alive connection: past its first few replies, Linux delays ACKs.
            for _ in range(12):
                held.release(event("start"))
                held.end()
                started = asyncio.get_running_loop().time()
                await client.post(url, json=BODY, headers={"x-api-key": session.token})
                times.append(asyncio.get_running_loop().time() - started)
    assert statistics.median(times) < 0.02
