"""Workspace benchmark: what an attempt costs besides the agent's thinking, before and after the
warm pool, the environment set-up and gate result reuse (issue 12), each beside its baseline.

Three tables, everything real (git, bubblewrap, npm and its registry, the engine and its store):

1. **20,000-file repository** (``worktree_pool.py``): one attempt's workspace, from "attempt
   started" to "the agent may start" plus the clean-up after it, a fresh ``git worktree add`` +
   remove (before) vs a pooled worktree taken (reset, cleaned, verified) and given back.
2. **A real Node project** (package.json with express, lodash, zod and typescript; its
   package-lock.json made by npm from the registry): per attempt, a fresh worktree + ``npm ci``
   (what a fresh worktree needs before its gates can run) + removal, vs a pooled worktree whose
   ``node_modules`` is kept (``[workspace] keep``) and whose set-up (``npm ci``, run in the
   project's jail through :class:`blitz.envsetup.EnvSetup`) runs only when the lockfile changes;
   then the set-up's cost on the first attempt, on later ones, and after the lockfile changes.
3. **10-task goals** (``gate_reuse.py``): gate runs and seconds with ``[gates] reuse`` off and on,
   three goals from one base commit (the baseline runs once for all of them when on).

Run: ``uv run --extra dev python bench/workspace.py`` (``--quick`` for fewer rounds, ``--skip``
to leave a table out). Needs npm and its registry for table 2 (its packages are cached under
``~/.cache/blitz-bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gate_reuse
import worktree_pool

from blitz import sandbox
from blitz.envsetup import EnvSetup, SetupSpec
from blitz.pool import WorktreePool
from blitz.sandbox import Policy
from blitz.workspace import Workspace

IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@localhost")
CACHE = Path.home() / ".cache" / "blitz-bench"
PACKAGE = {
    "name": "bench-app",
    "version": "1.0.0",
    "private": True,
    "scripts": {"test": "node --test"},
    "dependencies": {"express": "^4.21.0", "lodash": "^4.17.21", "zod": "^3.23.0"},
    "devDependencies": {"typescript": "^5.6.0"},
}
SETUP = "npm ci --no-audit --no-fund --prefer-offline"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=600)


def node_project(root: Path) -> Path:
    """A repository with the package.json above and the package-lock.json npm makes for it (the
    lockfile is made once and cached; npm's own cache keeps the packages)."""
    repo = root / "node-app"
    repo.mkdir()
    (repo / "package.json").write_text(json.dumps(PACKAGE, indent=2) + "\n")
    lock = CACHE / "package-lock.json"
    if not lock.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"],
            cwd=repo, check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        shutil.copy(repo / "package-lock.json", lock)
    shutil.copy(lock, repo / "package-lock.json")
    (repo / "index.js").write_text("module.exports = require('lodash').chunk;\n")
    (repo / ".gitignore").write_text("node_modules/\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, *IDENTITY, "commit", "-q", "-m", "app")
    (repo / "index.js").write_text("module.exports = require('lodash').chunk; // v2\n")
    _git(repo, *IDENTITY, "commit", "-q", "-am", "one file")
    return repo


async def node_rounds(root: Path, rounds: int) -> dict[str, float]:
    repo = node_project(root)
    ws = Workspace(repo, worktrees_root=root / "wt", lock_dir=root / "locks", git_timeout=600)
    heads = [await ws.rev_parse("main~1"), await ws.rev_parse("main")]
    policy = Policy(mode="required" if sandbox.probe().ok else "off", hidden=(root / "data",))
    spec = SetupSpec(command=SETUP, keep=("node_modules",), timeout=900)
    packages = CACHE / "packages"  # the project's package cache, as blitz keeps one per project
    env = EnvSetup(spec=spec, policy=policy, cache=packages)

    # Warm npm's cache first, so both sides install from it alike.
    warm = await ws.add_worktree("warm", heads[0])
    first = await env.ensure(warm, marker=root / "warm.marker")
    assert first is not None and first.passed, first
    await ws.remove_worktree(warm)

    fresh = []
    for n in range(rounds):
        started = time.monotonic()
        path = await ws.add_worktree(f"fresh-{n}", heads[n % 2])
        done = await env.ensure(path, marker=root / f"fresh-{n}.marker")
        assert done is not None and done.passed, done
        await ws.remove_worktree(path)
        fresh.append(time.monotonic() - started)

    pool = WorktreePool(ws, size=1, keep=("node_modules",))
    setup_first, checks, pooled = 0.0, [], []
    for n in range(rounds + 1):
        started = time.monotonic()
        async with pool.worktree(heads[n % 2], purpose="bench") as taken:
            checked = time.monotonic()
            ran = await env.ensure(taken.path, marker=taken.marker)
            checked = time.monotonic() - checked
            assert (taken.path / "node_modules" / "express").is_dir()
            if n == 0:
                assert ran is not None and ran.passed
                setup_first = ran.duration
            else:
                assert ran is None, "the set-up ran again with the lockfile unchanged"
                checks.append(checked)
        if n:
            pooled.append(time.monotonic() - started)

    # The lockfile changes (the task added a package): the set-up runs again, once.
    lock = json.loads((repo / "package-lock.json").read_text())
    lock["name"] = "bench-app-renamed"
    (repo / "package-lock.json").write_text(json.dumps(lock, indent=2) + "\n")
    _git(repo, *IDENTITY, "commit", "-q", "-am", "lockfile")
    changed = await ws.rev_parse("main")
    async with pool.worktree(changed, purpose="bench") as taken:
        rerun = await env.ensure(taken.path, marker=taken.marker)
        assert rerun is not None and rerun.passed
    async with pool.worktree(changed, purpose="bench") as taken:
        assert await env.ensure(taken.path, marker=taken.marker) is None
    await pool.prune()
    return {
        "fresh_s": statistics.median(fresh),
        "pooled_s": statistics.median(pooled),
        "speed_up": statistics.median(fresh) / statistics.median(pooled),
        "setup_first_s": setup_first,
        "setup_later_s": statistics.median(checks),
        "setup_after_lockfile_s": rerun.duration,
    }


def print_node(found: dict[str, float]) -> None:
    print("\n### A real Node project (express, lodash, zod, typescript), per attempt\n")
    print("| fresh worktree + `npm ci` + remove | pooled (node_modules kept) | speed-up |")
    print("| ---: | ---: | ---: |")
    print(f"| {found['fresh_s']:.2f} s | {found['pooled_s']:.3f} s | {found['speed_up']:.0f}x |")
    print("\n| set-up (`npm ci` in the jail) | seconds |")
    print("| --- | ---: |")
    print(f"| first attempt in a worktree | {found['setup_first_s']:.2f} |")
    print(f"| later attempts, lockfile unchanged (the check only) | {found['setup_later_s']:.4f} |")
    print(f"| after the lockfile changed | {found['setup_after_lockfile_s']:.2f} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and goals")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["files", "node", "gates"],
        help="leave a table out",
    )  # fmt: skip
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    if "files" not in args.skip:
        with tempfile.TemporaryDirectory(prefix="blitz-bench-ws-", dir="/var/tmp") as tmp:
            found = await worktree_pool.measure(Path(tmp), 20_000, rounds)
        print("### 20,000-file repository, per attempt\n")
        print("| fresh worktree (add + remove) | pooled (take + give back) | speed-up |")
        print("| ---: | ---: | ---: |")
        print(f"| {found['fresh_s']:.3f} s | {found['pooled_s']:.3f} s "
              f"| {found['speed_up']:.1f}x |")  # fmt: skip
        sys.stdout.flush()
    if "node" not in args.skip:
        if shutil.which("npm") is None:
            print("\n(no npm here: the Node project's table is left out)")
        else:
            with tempfile.TemporaryDirectory(prefix="blitz-bench-node-", dir="/var/tmp") as tmp:
                print_node(await node_rounds(Path(tmp), rounds))
        sys.stdout.flush()
    if "gates" not in args.skip:
        goals = 2 if args.quick else 3
        cells = [await gate_reuse._cell("chain", reuse, goals, 0.5) for reuse in (False, True)]
        print(f"\n### 10-task goals, {goals} from one base commit (a gate of 0.5 s)\n")
        print(gate_reuse.table(cells))


if __name__ == "__main__":
    asyncio.run(main())
