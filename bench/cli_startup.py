"""CLI start-up benchmark: how long ``blitz --help``, ``blitz status`` and ``blitz events`` take,
beside ``python -c pass`` measured in the same run (the interpreter's own start-up on this
machine, now).

Each command runs as a user runs it (the installed console script, a process of its own) on a
home of its own holding one finished scripted goal, so ``status`` and ``events`` read a real
store, with its modules' bytecode compiled once and kept (as an installed blitz has it, whatever
``PYTHONDONTWRITEBYTECODE`` says here). Runs are interleaved round by round, so a load that
comes and goes hits every command alike. It prints, per command, the median and best wall time
and the median CPU time (user + system of the child), and the median over ``python -c pass``,
with the load average before and after. Target: 0.3 s wall for each command.

Run: ``uv run --extra dev python bench/cli_startup.py`` (``--runs``, ``--json``; ``--compare
PATH`` times another install's ``blitz`` in the same run, e.g. a checkout of an older commit).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BLITZ = str(Path(sys.executable).with_name("blitz"))
TARGET_S = 0.3

PLAN = """summary: Greet
tasks:
  - {id: hello, title: Write hello}
"""
SCENARIO = """agent:
  hello:
    - - write: {path: hello.txt, content: "hello\\n"}
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def prepare(root: Path) -> tuple[dict[str, str], str]:
    """A home with one finished goal on a small repository; the environment and the goal id."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# bench\n")
    (repo / "blitz.toml").write_text('[project]\nbase_branch = "main"\n\n[sandbox]\nmode = "off"\n')
    git(repo, "add", "-A")
    git(
        repo,
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.com",
        "commit",
        "-q",
        "-m",
        "init",
    )
    (root / "plan.yaml").write_text(PLAN)
    (root / "scenario.yaml").write_text(SCENARIO)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLITZ_")}
    # Compiled bytecode, as an installed blitz has it: an environment that sets
    # PYTHONDONTWRITEBYTECODE (this machine's does) would otherwise have every run compile
    # every module from source, most of its time. The .pyc files go to the run's own directory.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        PYTHONPYCACHEPREFIX=str(root / "pycache"),
        BLITZ_HOME=str(root / "home"),
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
    )
    files = ["--plan", str(root / "plan.yaml"), "--scenario", str(root / "scenario.yaml")]
    done = subprocess.run(
        [BLITZ, "run", "Greet", "--repo", str(repo), *files, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the benchmark's goal failed:\n{done.stdout}\n{done.stderr}")
    return env, json.loads(done.stdout)["goal"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (the child's user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, timeout=120, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--compare",
        default="",
        help="another install's blitz (e.g. a checkout of an older commit): timed in the same run",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="blitz-bench-") as tmp:
        env, goal = prepare(Path(tmp))
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "blitz --help": [BLITZ, "--help"],
            "blitz status": [BLITZ, "status"],
            "blitz status GOAL": [BLITZ, "status", goal],
            "blitz events": [BLITZ, "events"],
        }
        if args.compare:
            for name, argv in list(commands.items())[1:]:
                commands[f"{name} ({args.compare})"] = [args.compare, *argv[1:]]
        for argv in commands.values():  # warm the page cache and write the .pyc files
            timed(argv, env)
        load_before = os.getloadavg()[0]
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                wall, cpu = timed(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        load = (load_before, os.getloadavg()[0])
    rows = [
        {
            "command": name,
            "median_s": statistics.median(walls[name]),
            "best_s": min(walls[name]),
            "cpu_s": statistics.median(cpus[name]),
        }
        for name in commands
    ]
    if args.json:
        report = {"cores": os.cpu_count(), "runs": args.runs, "load": load, "rows": rows}
        print(json.dumps(report, indent=2))
        return
    print(
        f"{args.runs} runs each, interleaved; {os.cpu_count()} cores; load average (1 min) "
        f"{load[0]:.2f} before, {load[1]:.2f} after; target {TARGET_S} s\n"
    )
    print("| command | median wall | best wall | median CPU |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| `{row['command']}` | {row['median_s']:.3f} s | {row['best_s']:.3f} s "
            f"| {row['cpu_s']:.3f} s |"
        )
    over = [r["command"] for r in rows[1:5] if r["median_s"] > TARGET_S]
    print("\nall within the target" if not over else f"\nover the target: {', '.join(over)}")


if __name__ == "__main__":
    main()
