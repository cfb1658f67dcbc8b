"""A task's acceptance check may only look at the change: one that changes the worktree fails,
and what it changed is put back. Qwen2.5-Coder-1.5B planned a rename with the checks
``sed -i 's/compute_total/sum_prices/g' shop.py`` (bench/local_model.py, session 23): they did the
rename the agent had not, and passed. Real git, real commands."""

from __future__ import annotations

import sys
from pathlib import Path

from engine_helpers import git

from blitz.domain import Check, Gates
from blitz.look_only import looking
from blitz.process import run
from blitz.validation import Validator

SHOP = "def compute_total(prices):\n    return sum(prices)\n"


def _repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "shop.py").write_text(SHOP)
    (repo / "old.txt").write_text("old\n")
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "shop")
    # The change being judged: a tracked file changed, an untracked one added.
    (repo / "shop.py").write_text(SHOP.replace("compute_total", "sum_prices"))
    (repo / "report.py").write_text("from shop import compute_total\n")
    return repo


async def test_what_a_command_changes_is_put_back_and_named(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    before = {path: (repo / path).read_text() for path in ("shop.py", "report.py", "old.txt")}
    command = (
        "sed -i 's/compute_total/sum_prices/g' report.py && rm old.txt && echo x > new.txt"
        " && chmod +x shop.py && mkdir -p build && echo o > build/out"
    )
    async with looking(repo) as changed:
        done = await run(command, cwd=repo, timeout=30)
    assert done.ok
    assert sorted(changed) == ["old.txt", "report.py", "shop.py"]
    assert {path: (repo / path).read_text() for path in before} == before
    assert not os_executable(repo / "shop.py")
    # What it created is left: a build's output, a later check's input.
    assert (repo / "new.txt").read_text() == "x\n"
    assert (repo / "build" / "out").exists()  # ignored: not compared either
    (repo / "new.txt").unlink()
    # The index is the worktree's own, untouched: the change is still uncommitted and unstaged.
    assert git(repo, "diff", "--cached", "--name-only") == ""
    assert git(repo, "diff", "--name-only") == "shop.py"
    assert git(repo, "ls-files", "--others", "--exclude-standard") == "report.py"


async def test_a_command_that_only_looks_changes_nothing_and_nothing_is_said(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path)
    (repo / "test_shop.py").write_text("from shop import sum_prices\n\n\ndef test_it():\n"
                                       "    assert sum_prices([1, 2]) == 3\n")  # fmt: skip
    # A test run (what it writes, created, is no change).
    command = f"grep -q sum_prices shop.py && {sys.executable} -m pytest -q test_shop.py"
    async with looking(repo) as changed:
        done = await run(command, cwd=repo, timeout=60)
    assert done.ok, done.output
    assert changed == []
    # Outside a git worktree there is nothing to compare with.
    bare = tmp_path / "plain"
    bare.mkdir()
    async with looking(bare) as changed:
        (bare / "made.txt").write_text("x")
    assert changed == [] and (bare / "made.txt").exists()


async def test_an_acceptance_check_that_makes_the_change_fails(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    checks = [
        Check(kind="command", command="sed -i 's/compute_total/sum_prices/g' report.py"),
        Check(kind="command", command="! grep -q compute_total report.py"),
    ]

    sed, grep = await Validator(Gates()).run_checks(repo, checks)

    assert not sed.passed and sed.exit_code == 0
    assert sed.output_tail == (
        "[the check changed files (report.py): an acceptance check may only look at the change,"
        " not make it; what it changed was put back]"
    )
    assert not grep.passed  # judged on the change as the agent left it
    assert (repo / "report.py").read_text() == "from shop import compute_total\n"


def os_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)
