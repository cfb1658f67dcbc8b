"""Sandbox benchmark: what confinement adds to a command, to an attempt and to a model request.

Everything runs for real: a git repository with a linked worktree (made with git) in a temporary
directory, a :class:`blitz.sandbox.Policy` that hides a directory, bubblewrap, and a
:class:`blitz.proxy.ModelProxy` on a unix socket. Baseline and sandboxed runs are interleaved one
by one, so drift hits both alike. Three tables:

1. per command: ``true`` and ``sh -c 'echo x'`` through :func:`blitz.process.run` unconfined vs
   ``Policy(...).jail(worktree).run(...)`` (network none), then where bubblewrap's time goes
   (its namespaces one by one, the jail's whole command line);
2. per attempt: a jail with network "proxy" (the relay to the proxy starts inside it) running
   ``true``, vs unconfined and vs a jail without network; and ``git status`` in a jail (on its
   private copy of the index) vs unconfined;
3. the model proxy's added latency per request (:mod:`proxy_latency`, beside this file).

Targets: <= 20 ms added per sandboxed command, <= 2 ms added per proxied request (medians).

Run: ``uv run --extra dev python bench/sandbox.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import proxy_latency

from blitz import process, sandbox
from blitz.llm.usage import PriceTable
from blitz.proxy import ModelProxy, Upstream

COMMAND_TARGET_MS = 20.0
TIMEOUT = 60.0

Step = Callable[[], Awaitable[process.Completed]]


@dataclass(frozen=True, slots=True)
class Place:
    """A repository, its linked worktree, and a directory the policy hides."""

    repo: Path
    worktree: Path
    hidden: Path


@contextmanager
def place() -> Iterator[Place]:
    """A real repository with one commit and a linked worktree, made with git. Outside ``/tmp``
    when it can be (``/tmp`` is a tmpfs of its own in a jail, which would hide the hidden
    directory for free)."""
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="blitz-bench-", dir=base) as tmp:
        root = Path(tmp)
        repo, worktree, hidden = root / "repo", root / "wt", root / "data"
        hidden.mkdir()
        (hidden / "store.db").write_text("not for agents\n")
        repo.mkdir()
        for name in ("a.py", "b.py", "README.md"):
            (repo / name).write_text(f"# {name}\n" * 50)

        def run_git(*args: str) -> None:
            subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

        run_git("init", "-q", "-b", "main")
        run_git("add", "-A")
        run_git("-c", "user.name=bench", "-c", "user.email=bench@example.com",
                "commit", "-q", "-m", "init")  # fmt: skip
        run_git("worktree", "add", "-q", "-b", "attempt", str(worktree))
        yield Place(repo, worktree, hidden)


def percentile(values: list[float], q: float) -> float:
    return proxy_latency.percentile(values, q)


async def timed(steps: Mapping[str, Step], n: int, warmup: int) -> dict[str, list[float]]:
    """``n`` timings per step in milliseconds, the steps interleaved, after ``warmup`` rounds.
    Every step must succeed."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(warmup + n):
        for name, step in steps.items():
            start = time.perf_counter()
            done = await step()
            elapsed = (time.perf_counter() - start) * 1000
            assert done.ok, (name, done.exit_code, done.tail(500))
            if round_ >= warmup:
                times[name].append(elapsed)
    return times


def print_pairs(title: str, pairs: list[tuple[str, list[float], list[float]]]) -> float:
    """A table of baseline vs measured per row; returns the worst added median (ms)."""
    print(title)
    print("| command | baseline p50 | baseline p95 | sandboxed p50 | sandboxed p95 | added p50 "
          "| added p95 |")  # fmt: skip
    print("|" + "---|" * 7)
    worst = 0.0
    for label, base, measured in pairs:
        b50, b95 = statistics.median(base), percentile(base, 0.95)
        m50, m95 = statistics.median(measured), percentile(measured, 0.95)
        worst = max(worst, m50 - b50)
        print(f"| {label} | {b50:.2f} ms | {b95:.2f} ms | {m50:.2f} ms | {m95:.2f} ms "
              f"| {m50 - b50:+.2f} ms | {m95 - b95:+.2f} ms |")  # fmt: skip
    print()
    return worst


def print_steps(title: str, times: dict[str, list[float]], baseline: str) -> None:
    """A table of each step's median and p95 beside the ``baseline`` step's median."""
    print(title)
    print(f"| step | p50 | p95 | vs {baseline} (p50) |")
    print("|" + "---|" * 4)
    base = statistics.median(times[baseline])
    for name, values in times.items():
        m50 = statistics.median(values)
        p95 = percentile(values, 0.95)
        print(f"| {name} | {m50:.2f} ms | {p95:.2f} ms | {m50 - base:+.2f} ms |")
    print()


async def per_command(where: Place, n: int, warmup: int) -> float:
    """Table 1 and the bubblewrap breakdown; returns the worst added median (ms)."""
    policy = sandbox.Policy(hidden=(where.hidden,))
    jail = policy.jail(where.worktree)
    assert isinstance(jail, sandbox.Bubblewrap) and jail.network == "none"
    probe = await jail.run(["ls", "-A", str(where.hidden)], timeout=TIMEOUT)
    assert str(where.hidden) not in probe.output and "store.db" not in probe.output, probe.output
    wt = where.worktree
    env = process.clean_env()

    steps: dict[str, Step] = {
        "true, unconfined": lambda: process.run(["true"], cwd=wt, timeout=TIMEOUT, env=env),
        "true, jailed": lambda: jail.run(["true"], timeout=TIMEOUT),
        "echo, unconfined": lambda: process.run("echo x", cwd=wt, timeout=TIMEOUT, env=env),
        "echo, jailed": lambda: jail.run("echo x", timeout=TIMEOUT),
    }
    times = await timed(steps, n, warmup)
    worst = print_pairs(
        f"sandbox: added start-up per command (N={n} after {warmup} warm-up, interleaved; "
        "network none, linked worktree, one hidden dir)",
        [
            ("`true`", times["true, unconfined"], times["true, jailed"]),
            ("`sh -c 'echo x'`", times["echo, unconfined"], times["echo, jailed"]),
        ],
    )

    bwrap = sandbox.require()
    bare = [bwrap, "--ro-bind", "/", "/"]
    full = jail.command(["true"])

    def raw(argv: list[str]) -> Step:
        return lambda: process.run(argv, cwd=wt, timeout=TIMEOUT, env=jail.environment())

    def without(*options: str) -> list[str]:
        return [arg for arg in full if arg not in options]

    variants: dict[str, Step] = {"true": raw(["true"]), "bwrap --ro-bind / /": raw([*bare, "true"])}
    for option in ("--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
                   "--unshare-uts", "--unshare-cgroup-try", "--unshare-all"):  # fmt: skip
        variants[f"bwrap --ro-bind / / {option}"] = raw([*bare, option, "--", "true"])
    variants["bwrap --ro-bind / / --unshare-all --proc /proc --dev /dev"] = raw(
        [*bare, "--unshare-all", "--proc", "/proc", "--dev", "/dev", "--", "true"]
    )
    variants["jail's command line"] = raw(full)
    variants["  same, without --unshare-all"] = raw(without("--unshare-all"))
    variants["  same, without --die-with-parent --new-session"] = raw(
        without("--die-with-parent", "--new-session")
    )
    variants["jail.run"] = lambda: jail.run(["true"], timeout=TIMEOUT)
    times = await timed(variants, n, warmup)
    print_steps(f"where bubblewrap's time goes (`true`, N={n}, {len(full)} args)", times, "true")
    return worst


async def per_attempt(where: Place, n: int, warmup: int) -> None:
    """Table 2: a proxy-network jail (the relay starts in it) and the index tidy."""
    with (
        proxy_latency.FastModelServer(
            api_key=proxy_latency.KEY, fallback=proxy_latency.REPLY
        ) as upstream,
        tempfile.TemporaryDirectory(prefix="bz-", dir="/tmp") as short,
    ):
        key = proxy_latency.KEY
        upstreams = {"anthropic": Upstream("anthropic", upstream.anthropic_base_url, key)}
        proxy = ModelProxy(upstreams, prices=PriceTable())
        await proxy.start(Path(short) / "proxy.sock")
        try:
            await attempt_rows(where, proxy, n, warmup)
        finally:
            await proxy.stop()


CHECK = """
import json, os, sys, urllib.request
body = json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 8,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
req = urllib.request.Request(sys.argv[1] + "/v1/messages", data=body, headers={
    "x-api-key": sys.argv[2], "anthropic-version": "2023-06-01",
    "content-type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=10))["type"])
"""


async def attempt_rows(where: Place, proxy: ModelProxy, n: int, warmup: int) -> None:
    assert proxy.socket_path is not None
    policy = sandbox.Policy(hidden=(where.hidden,), proxy_socket=proxy.socket_path)
    jail = policy.jail(where.worktree, network="proxy")
    plain = policy.jail(where.worktree)
    wt = where.worktree

    # The relay really reaches the proxy: one request from inside the jail.
    session = proxy.open("anthropic", budget_usd=None, on_usage=None, label="bench")
    origin = session.base_url(sandbox.PROXY_ORIGIN)
    done = await jail.run([sys.executable, "-I", "-S", "-c", CHECK, origin, session.token],
                          timeout=TIMEOUT)  # fmt: skip
    assert done.ok and "message" in done.output and session.requests == 1, done.tail(800)
    session.close()

    steps: dict[str, Step] = {
        "relay": lambda: jail.run(["true"], timeout=TIMEOUT),
        "unconfined": lambda: process.run(["true"], cwd=wt, timeout=TIMEOUT),
        "none": lambda: plain.run(["true"], timeout=TIMEOUT),
    }
    times = await timed(steps, n, warmup)
    relay, unconfined, none = (times[name] for name in steps)
    print_pairs(
        f"sandbox: per attempt, `true` in a jail with the proxy relay (N={n} after {warmup} "
        "warm-up, interleaved)",
        [
            ("relay jail vs unconfined", unconfined, relay),
            ("relay jail vs jail, none", none, relay),
        ],
    )

    # git in a jail works on a private copy of the worktree's index (copied as the jail starts).
    status: dict[str, Step] = {
        "unconfined": lambda: process.run(["git", "status", "--short"], cwd=wt, timeout=TIMEOUT),
        "jailed": lambda: plain.run(["git", "status", "--short"], timeout=TIMEOUT),
    }
    times = await timed(status, n, warmup)
    print_pairs(
        f"sandbox: `git status` in a jail (its private index copied in) vs unconfined (N={n})",
        [("`git status`", times["unconfined"], times["jailed"])],
    )


async def run(quick: bool) -> int:
    found = sandbox.probe()
    if not found.ok:
        print(f"sandbox unavailable: {found.reason}")
        return 2
    if shutil.which("git") is None:
        print("git is not installed")
        return 2
    commands, attempts, requests = (40, 15, 60) if quick else (200, 50, 300)
    with place() as where:
        command_added = await per_command(where, commands, 5)
        await per_attempt(where, attempts, 3)
    proxy_added = proxy_latency.report(
        await proxy_latency.latencies(requests, requests // 10), requests, requests // 10
    )
    print()
    checks = [
        (f"<= {COMMAND_TARGET_MS:.0f} ms added per sandboxed command (median)", command_added,
         COMMAND_TARGET_MS),
        (f"<= {proxy_latency.TARGET_MS:.0f} ms added per proxied request (median)", proxy_added,
         proxy_latency.TARGET_MS),
    ]  # fmt: skip
    for label, figure, target in checks:
        print(f"{'met' if figure <= target else 'NOT MET':<8} {label}: {figure:.2f} ms")
    return 0 if all(figure <= target for _, figure, target in checks) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a few seconds)")
    args = parser.parse_args()
    return asyncio.run(run(args.quick))


if __name__ == "__main__":
    sys.exit(main())
