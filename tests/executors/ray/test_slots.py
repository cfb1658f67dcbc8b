"""A node's attempt repositories (blitz.executors.ray.slots): one attempt per slot at a time,
kept between attempts, no ref of an earlier attempt left in one, remade when it no longer borrows
the cache's objects. Real git, real flocks."""

from __future__ import annotations

from pathlib import Path

from engine_helpers import git

from blitz.executors.ray import slots


def cache_of(tmp_path: Path, git_repo: Path) -> tuple[Path, str]:
    cache = tmp_path / "cache"
    git(tmp_path, "clone", "-q", "--bare", str(git_repo), str(cache))
    return cache, git(cache, "rev-parse", "refs/heads/main")


async def test_a_slot_is_one_attempts_at_a_time_and_kept_for_the_next(
    tmp_path: Path, git_repo: Path
) -> None:
    cache, head = cache_of(tmp_path, git_repo)
    root = tmp_path / "node"
    async with slots.slot(root, cache, "p-1", "first") as first:
        async with slots.slot(root, cache, "p-1", "second") as second:
            assert first != second  # held: the other attempt gets a slot of its own
        # It borrows the cache's objects: the cache's commit is there without a fetch.
        assert git(first, "cat-file", "-t", head) == "commit"
        git(first, "update-ref", "refs/heads/blitz/goal", head)
        git(first, "update-ref", "refs/blitz/out/a-1", head)
        (first / "kept").write_text("the same repository\n")
    async with slots.slot(root, cache, "p-1", "third") as again:
        assert again == first  # free again: kept, not made anew
        assert (again / "kept").exists()
        assert git(again, "for-each-ref") == ""  # no ref of the earlier attempt
    async with slots.slot(root, cache, "p-2", "another project") as other:
        assert other.parent != first.parent


async def test_a_slot_that_borrows_another_cache_is_made_anew(
    tmp_path: Path, git_repo: Path
) -> None:
    cache, _ = cache_of(tmp_path, git_repo)
    root = tmp_path / "node"
    async with slots.slot(root, cache, "p-1", "first") as first:
        (first / "objects" / "info" / "alternates").write_text("/elsewhere/objects\n")
        (first / "stale").write_text("x\n")
    async with slots.slot(root, cache, "p-1", "second") as again:
        assert again == first and not (again / "stale").exists()
        assert (again / "objects" / "info" / "alternates").read_text() == f"{cache / 'objects'}\n"
