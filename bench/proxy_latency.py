"""Model proxy benchmark: the latency the proxy adds to one model request.

A scripted model server on 127.0.0.1 (blitz.testing.ModelServer) is the upstream. The same
httpx client sends Anthropic Messages requests to it directly (the baseline) and through a
running :class:`blitz.proxy.ModelProxy` session (token check, key swap, forwarding, metering),
interleaved one by one so drift hits both alike. Two measures per request:

* non-streaming: request sent to the whole JSON body read;
* streaming: request sent to the first body byte of the SSE stream (time to first byte).

It prints the median and p95 of each, direct and proxied, and the difference. Target: <= 2 ms
added per request. ``bench/sandbox.py`` runs it too, beside the sandbox's figures.

Run: ``uv run --extra dev python bench/proxy_latency.py`` (``--n``, ``--warmup``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler

import httpx

from blitz.llm.usage import PriceTable
from blitz.proxy import ModelProxy, Upstream
from blitz.proxy.server import NO_DELAY
from blitz.testing.model_server import ModelServer

KEY = "sk-ant-bench-0123456789abcdef"
TARGET_MS = 2.0
BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 64,
    "system": "You are a benchmark.",
    "messages": [{"role": "user", "content": "Say something short. " * 20}],
}
REPLY = {"text": "A short answer, streamed in a few deltas like a real one.", "usage": {}}


class FastModelServer(ModelServer):
    """The scripted server with Nagle's algorithm off, as real servers run: otherwise its
    separate header and body writes meet the client's delayed ACK and every direct request
    waits 40 ms, which would hide the proxy's cost instead of measuring it."""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        class Handler(super().handler()):  # type: ignore[misc]
            disable_nagle_algorithm = True

        return Handler


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def whole(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    """Seconds to the whole non-streamed answer."""
    start = time.perf_counter()
    reply = await client.post(url, json=BODY, headers=headers)
    reply.raise_for_status()
    return time.perf_counter() - start


async def first_byte(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    """Seconds to the first byte of a streamed answer (the rest is read, untimed)."""
    start = time.perf_counter()
    async with client.stream("POST", url, json={**BODY, "stream": True}, headers=headers) as r:
        r.raise_for_status()
        chunks = r.aiter_raw()
        await anext(chunks)
        elapsed = time.perf_counter() - start
        async for _ in chunks:
            pass
    return elapsed


Probe = Callable[[httpx.AsyncClient, str, dict[str, str]], Awaitable[float]]


async def measure(
    probe: Probe,
    client: httpx.AsyncClient,
    routes: dict[str, tuple[str, dict[str, str]]],
    n: int,
    warmup: int,
) -> dict[str, list[float]]:
    """``n`` timings per route, in milliseconds, after ``warmup`` untimed rounds."""
    times: dict[str, list[float]] = {name: [] for name in routes}
    for round_ in range(warmup + n):
        for name, (url, headers) in routes.items():
            elapsed = await probe(client, url, headers)
            if round_ >= warmup:
                times[name].append(elapsed * 1000)
    return times


Row = tuple[str, list[float], list[float]]  # kind of request, direct ms, proxied ms


async def latencies(n: int, warmup: int) -> list[Row]:
    """Direct and proxied timings for each kind of request."""
    with FastModelServer(api_key=KEY, fallback=REPLY) as upstream:
        upstreams = {"anthropic": Upstream("anthropic", upstream.anthropic_base_url, KEY)}
        async with ModelProxy(upstreams, prices=PriceTable()) as proxy:
            session = proxy.open("anthropic", budget_usd=None, on_usage=None, label="bench")
            version = {"anthropic-version": "2023-06-01"}
            routes = {
                "direct": (
                    f"{upstream.anthropic_base_url}/v1/messages",
                    {**version, "x-api-key": KEY},
                ),
                "proxied": (
                    f"{session.base_url(proxy.url)}/v1/messages",
                    {**version, "x-api-key": session.token},
                ),
            }
            rows: list[Row] = []
            # The client as the SDKs run theirs; no Nagle on either route, as in the proxy.
            transport = httpx.AsyncHTTPTransport(socket_options=NO_DELAY)
            async with httpx.AsyncClient(transport=transport, timeout=30) as client:
                for label, probe in (("non-streaming", whole), ("stream, first byte", first_byte)):
                    times = await measure(probe, client, routes, n, warmup)
                    rows.append((label, times["direct"], times["proxied"]))
            session.close()
            assert session.requests == 2 * (n + warmup), session.requests
            assert session.usage.output_tokens > 0
    return rows


def report(rows: list[Row], n: int, warmup: int) -> float:
    """Print the table; returns the worst added median, in milliseconds."""
    print(f"model proxy: added latency per request (N={n} after {warmup} warm-up, interleaved)")
    header = (
        "| request | direct p50 | direct p95 | proxied p50 | proxied p95 | added p50 | added p95 |"
    )
    print(header)
    print("|" + "---|" * 7)
    worst = 0.0
    for label, direct, proxied in rows:
        d50, d95 = statistics.median(direct), percentile(direct, 0.95)
        p50, p95 = statistics.median(proxied), percentile(proxied, 0.95)
        worst = max(worst, p50 - d50)
        print(
            f"| {label} | {d50:.2f} ms | {d95:.2f} ms | {p50:.2f} ms | {p95:.2f} ms "
            f"| {p50 - d50:+.2f} ms | {p95 - d95:+.2f} ms |"
        )
    return worst


async def main(n: int, warmup: int) -> int:
    worst = report(await latencies(n, warmup), n, warmup)
    verdict = "met" if worst <= TARGET_MS else "MISSED"
    print(f"target: <= {TARGET_MS:.0f} ms added (median): {verdict} ({worst:.2f} ms)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="timed requests per route and kind")
    parser.add_argument("--warmup", type=int, default=30, help="untimed rounds first")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.n, args.warmup)))
