"""A worker node's cache repository for a project is made once, whoever asks first: the first
attempts of a node run in several worker processes at once."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from blitz.executors.ray import remote
from blitz.executors.ray.resources import WORKER_HOME_ENV


async def test_first_attempts_at_once_make_one_cache_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WORKER_HOME_ENV, str(tmp_path))
    made = await asyncio.gather(*(remote._repo("p-1") for _ in range(6)))
    assert set(made) == {tmp_path / "repos" / "p-1"}
    bare = subprocess.run(
        ["git", "rev-parse", "--is-bare-repository"],
        cwd=made[0],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert bare.stdout.strip() == "true"
    assert sorted(p.name for p in (tmp_path / "repos").iterdir()) == ["p-1"]  # nothing left over
    assert await remote._repo("p-1") == made[0]
