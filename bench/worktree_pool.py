"""Worktree pool benchmark: the per-attempt workspace cost, fresh worktree vs pooled.

A generated repository of ``--files`` small files (20,000 by default) in 100 directories, two
commits one file apart. Each round is one attempt's workspace: from "attempt started" to "agent
may start" plus the clean-up after it, with what an agent leaves between rounds (a tracked file
edited, an untracked file, an ignored build directory, a kept ``node_modules``):

* fresh: ``Workspace.add_worktree`` then ``remove_worktree`` (what blitz did before the pool);
* pooled: ``WorktreePool.worktree(...)`` taken and given back (reset, clean, verified), the
  attempts alternating between the two commits.

Prints a Markdown table of medians (``--json`` for JSON). Target: pooled <= 0.3 s and >= 20x
less than fresh on the 20,000-file repository.

Run: ``uv run python bench/worktree_pool.py`` (``--rounds``, ``--files``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from blitz.pool import WorktreePool
from blitz.workspace import Workspace

IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@localhost")


def make_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    for i in range(files):
        path = repo / f"d{i % 100:03d}" / f"f{i:06d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {i}\n")
    (repo / ".gitignore").write_text("build/\nnode_modules/\n")
    for args in (
        ("init", "-q", "-b", "main"),
        ("add", "-A"),
        (*IDENTITY, "commit", "-q", "-m", "generated"),
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "d000" / "f000000.txt").write_text("changed\n")
    subprocess.run(["git", *IDENTITY, "commit", "-q", "-am", "one file"], cwd=repo, check=True)
    return repo


def mess(worktree: Path, n: int) -> None:
    """What an attempt leaves behind."""
    (worktree / "d001" / "f000001.txt").write_text(f"edited {n}\n")
    (worktree / f"untracked-{n}.txt").write_text("x\n")
    (worktree / "build").mkdir(exist_ok=True)
    (worktree / "build" / f"out-{n}.o").write_text("x\n")
    (worktree / "node_modules" / "pkg").mkdir(parents=True, exist_ok=True)
    (worktree / "node_modules" / "pkg" / "index.js").write_text("module.exports = 1\n")


async def measure(root: Path, files: int, rounds: int) -> dict[str, float]:
    repo = make_repo(root, files)
    ws = Workspace(repo, worktrees_root=root / "wt", lock_dir=root / "locks", git_timeout=600)
    heads = [await ws.rev_parse("main~1"), await ws.rev_parse("main")]
    fresh = []
    for n in range(rounds):
        started = time.monotonic()
        path = await ws.add_worktree(f"fresh-{n}", heads[n % 2])
        mess(path, n)
        await ws.remove_worktree(path)
        fresh.append(time.monotonic() - started)
    pool = WorktreePool(ws, size=1, keep=("node_modules",))
    async with pool.worktree(heads[0], purpose="warm-up") as first:
        mess(first.path, 0)
    pooled = []
    for n in range(rounds):
        started = time.monotonic()
        async with pool.worktree(heads[n % 2], purpose="bench") as taken:
            assert taken.reused and (taken.path / "node_modules" / "pkg").is_dir()
            pooled.append(time.monotonic() - started)
            mess(taken.path, n)
            started = time.monotonic()
        pooled[-1] += time.monotonic() - started  # the give-back
    await pool.prune()
    return {
        "files": files,
        "fresh_s": statistics.median(fresh),
        "pooled_s": statistics.median(pooled),
        "speed_up": statistics.median(fresh) / statistics.median(pooled),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="blitz-bench-pool-", dir="/var/tmp") as tmp:
        found = asyncio.run(measure(Path(tmp), args.files, args.rounds))
    if args.json:
        print(json.dumps(found))
        return
    print("| files | fresh worktree (add + remove) | pooled (take + give back) | speed-up |")
    print("| ---: | ---: | ---: | ---: |")
    print(
        f"| {found['files']:,} | {found['fresh_s']:.3f} s | {found['pooled_s']:.3f} s "
        f"| {found['speed_up']:.1f}x |"
    )


if __name__ == "__main__":
    main()
