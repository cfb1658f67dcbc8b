"""The repository context a planner is shown: bounded, relevant, deterministic, git or not."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blitz.context import RepoContext, goal_keywords, repo_context

GATES = {"test": "pytest -q", "lint": "ruff check ."}


def git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.test",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.test",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=30)


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def commit_all(repo: Path) -> None:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")


SAMPLE: dict[str, str | bytes] = {
    "README.md": "# Shop\n\n" + "A web shop with a cart and checkout.\n" * 400,
    "pyproject.toml": '[project]\nname = "shop"\ndependencies = ["fastapi"]\n' + "# pad\n" * 300,
    "package.json": '{"name": "shop-ui", "scripts": {"test": "vitest"}}\n',
    "requirements-dev.txt": "pytest\nruff\n",
    "src/shop/cart.py": "class Cart:\n    def add(self, item): ...\n" * 50,
    "src/shop/checkout.py": "def checkout(cart):\n    return cart.total()\n" * 50,
    "src/shop/limits.py": "RATE = 10  # requests per second for the rate limiter\n" * 30,
    "src/shop/fences.md": "Some ```code``` and ````more```` backticks.\n" * 20,
    "tests/test_cart.py": "from shop.cart import Cart\n\ndef test_add(): Cart().add(1)\n" * 30,
    "assets/logo.png": b"\x89PNG\r\n\x1a\n\0\0\0binary",
    **{f"src/shop/models/m{i:03}.py": f"class Model{i}:\n    table = 'm{i}'\n" for i in range(120)},
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("sample")
    write(repo, SAMPLE)
    commit_all(repo)
    return repo


def context(repo: Path, goal: str, budget: int, gates: dict[str, str] = GATES) -> RepoContext:
    return asyncio.run(repo_context(repo, goal=goal, gates=gates, budget_tokens=budget))


@settings(max_examples=80, deadline=None)
@given(
    budget=st.integers(min_value=0, max_value=6_000),
    goal=st.one_of(
        st.sampled_from(
            ["add rate limiting to checkout", "Refactor the Cart model", "fix the README", ""]
        ),
        st.text(max_size=60),
    ),
)
def test_the_budget_is_never_exceeded(sample: Path, budget: int, goal: str) -> None:
    ctx = context(sample, goal, budget)
    assert len(ctx.text) <= budget * 4
    assert ctx.tokens == math.ceil(len(ctx.text) / 4) <= budget
    for path in ctx.files:
        assert path in SAMPLE
        assert f"# {path}" in ctx.text  # every file it names is shown under its own heading


async def test_parts_come_in_priority_order_and_trimmed(sample: Path) -> None:
    ctx = await repo_context(sample, goal="add rate limiting", gates=GATES, budget_tokens=3_000)
    text = ctx.text
    order = [
        text.index("## Validation commands"),
        text.index("## Files ("),
        text.index("## README.md (head)"),
        text.index("## pyproject.toml"),
        text.index("## package.json"),
        text.index("## requirements-dev.txt"),
        text.index("## Files that look relevant to the goal"),
    ]
    assert order == sorted(order)
    assert "- test: `pytest -q`" in text and "- lint: `ruff check .`" in text
    assert "[... truncated ...]" in text  # the long README was cut, not dropped
    assert ctx.files[:4] == ("README.md", "pyproject.toml", "package.json", "requirements-dev.txt")
    assert "assets/logo.png" not in ctx.files  # binaries are never shown


async def test_the_same_inputs_give_the_same_text(sample: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sample, copy)
    first = await repo_context(sample, goal="rate limiting", gates=GATES, budget_tokens=2_000)
    again = await repo_context(sample, goal="rate limiting", gates=GATES, budget_tokens=2_000)
    moved = await repo_context(copy, goal="rate limiting", gates=GATES, budget_tokens=2_000)
    assert first == again == moved


async def test_a_long_tree_is_collapsed_to_directories_with_counts(sample: Path) -> None:
    ctx = await repo_context(sample, goal="", gates={}, budget_tokens=600)
    assert "## Files (130)" in ctx.text
    assert "src/shop/models/ (120 files)" in ctx.text
    assert "src/shop/models/m001.py" not in ctx.text
    big = await repo_context(sample, goal="", gates={}, budget_tokens=20_000)
    assert "src/shop/models/m001.py" in big.text  # room enough: every path


async def test_relevance_picks_the_file_named_for_the_goal(sample: Path) -> None:
    ctx = await repo_context(
        sample, goal="Add rate limiting to checkout", gates=GATES, budget_tokens=4_000
    )
    relevant = ctx.files[4:]
    assert relevant[:2] == ("src/shop/limits.py", "src/shop/checkout.py")
    assert "RATE = 10" in ctx.text


async def test_relevance_reads_contents_too(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.py": "def unrelated(): ...\n",
            "b.py": "class TokenBucket:\n    '''refills tokens at a fixed rate'''\n",
            "c.py": "def other(): ...\n",
        },
    )
    commit_all(tmp_path)
    ctx = await repo_context(
        tmp_path, goal="Use the TokenBucket in the server", gates={}, budget_tokens=2_000
    )
    assert ctx.files == ("b.py",)


async def test_works_without_git(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "README": "plain readme\n",
            "go.mod": "module example.test/shop\n",
            "server/throttle.go": "package server // throttle requests\n",
            "server/main.go": "package main\n",
            ".venv/lib/site.py": "throttle throttle throttle\n",
            "node_modules/x/index.js": "throttle()\n",
        },
    )
    (tmp_path / ".git").mkdir()  # a broken repository: git fails, the walk takes over
    ctx = await repo_context(tmp_path, goal="throttle requests", gates={}, budget_tokens=2_000)
    assert "## Files (4)" in ctx.text
    assert ".venv" not in ctx.text and "node_modules" not in ctx.text
    assert ctx.files == ("README", "go.mod", "server/throttle.go")
    assert "(none configured)" in ctx.text


async def test_git_lists_tracked_files_only(tmp_path: Path) -> None:
    write(tmp_path, {"kept.py": "x = 1\n"})
    commit_all(tmp_path)
    write(tmp_path, {"scratch.py": "y = 2\n"})
    ctx = await repo_context(tmp_path, goal="", gates={}, budget_tokens=1_000)
    assert "kept.py" in ctx.text and "scratch.py" not in ctx.text


async def test_files_outside_the_repository_are_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, {"secret.py": "limiter secret: hunter2\n"})
    repo = tmp_path / "repo"
    write(repo, {"app.py": "print('hi')\n"})
    (repo / "limiter.py").symlink_to(outside / "secret.py")
    ctx = await repo_context(repo, goal="add a limiter", gates={}, budget_tokens=2_000)
    assert "limiter.py" in ctx.text  # listed in the tree
    assert "hunter2" not in ctx.text and "limiter.py" not in ctx.files


def test_goal_keywords_drop_stop_words_and_share_stems() -> None:
    assert goal_keywords("Add rate limiting to the API") == ("rate", "limit", "api")
    assert goal_keywords("use RateLimiter in rate_limiter.py") == ("rate", "limit")
    assert goal_keywords("fix it, or do so") == ()


async def test_a_negative_budget_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await repo_context(tmp_path, goal="x", gates={}, budget_tokens=-1)
