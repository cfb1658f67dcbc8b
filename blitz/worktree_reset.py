"""Bringing a used worktree back to exactly one commit's tree, and proving it did.

A pooled worktree may hold anything an earlier attempt left: tracked edits, untracked and
ignored files, a rebase or merge half done, a branch the agent checked out, index entries marked
skip-worktree or assume-unchanged. :func:`reset` undoes all of it without moving any ref but the
worktree's own HEAD (detached first, so a branch the agent checked out stays where it was), keeps
the ignored directories the project names as caches (``[workspace] keep``), then :func:`verify`
checks the result from scratch. A worktree that does not verify is not handed out: the caller
throws it away and makes a new one.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path, PurePosixPath

from blitz.errors import ConfigError, GitError
from blitz.git import Git

IN_PROGRESS = (
    "rebase-merge",
    "rebase-apply",
    "MERGE_HEAD",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "sequencer",
    "BISECT_LOG",
    "BISECT_START",
)
"""Files in a worktree's git directory that say an operation is half done."""

_QUIT = (("rebase", "--quit"), ("am", "--quit"), ("cherry-pick", "--quit"), ("revert", "--quit"))


class NotClean(GitError):
    """A worktree could not be brought to its commit's tree; ``problems`` say what is left."""

    def __init__(self, worktree: Path, problems: list[str]) -> None:
        self.problems = problems
        listed = "; ".join(problems[:10]) + (" ..." if len(problems) > 10 else "")
        super().__init__(f"worktree {worktree} is not clean: {listed}")


def keep_patterns(keep: tuple[str, ...]) -> list[str]:
    """``keep`` entries as top-level paths ("node_modules", ".venv"): no empty, absolute or
    ``..`` entry, no ``.git``."""
    found = []
    for entry in keep:
        path = PurePosixPath(entry.strip().strip("/"))
        if not path.parts or ".." in path.parts or path.parts[0] == ".git":
            raise ConfigError(f"[workspace] keep: not a path inside the worktree: {entry!r}")
        found.append(str(path))
    return found


def _kept(path: str, keep: list[str]) -> str:
    """The keep entry ``path`` (a status path, directories with a trailing slash) lies in."""
    bare = path.rstrip("/")
    return next((k for k in keep if bare == k or bare.startswith(k + "/")), "")


def git_dir(worktree: Path) -> Path:
    """The worktree's own git directory (``.git/worktrees/<name>`` of the repository), read from
    its ``.git`` file; NotClean when it has none."""
    try:
        text = (worktree / ".git").read_text(encoding="utf-8")
    except OSError as exc:
        raise NotClean(worktree, [f"it is not a linked worktree: {exc}"]) from exc
    if not text.startswith("gitdir:"):
        raise NotClean(worktree, ["it is not a linked worktree (no gitdir in its .git file)"])
    return (worktree / text.removeprefix("gitdir:").strip()).resolve()


async def reset(git: Git, worktree: Path, sha: str, *, keep: tuple[str, ...] = ()) -> None:
    """Bring ``worktree`` to exactly ``sha``'s tree, HEAD detached at ``sha``, keeping the
    ignored ``keep`` directories; :class:`NotClean` (or GitError) when it cannot be."""
    kept = keep_patterns(keep)
    gitdir = git_dir(worktree)
    if any((gitdir / name).exists() for name in IN_PROGRESS):
        for command in _QUIT:  # forget the half-done operation; the reset below undoes its work
            await git.run(*command, cwd=worktree, check=False)
        await git.run("bisect", "reset", "HEAD", cwd=worktree, check=False)
    flags = await git.run("ls-files", "-v", "-z", cwd=worktree)
    if _flagged(flags.out):
        # Skip-worktree and assume-unchanged hide changes from a checkout: a fresh index.
        await git.run("read-tree", sha, cwd=worktree)
    # Detached, forced: every tracked file as ``sha`` has it, and a branch the agent checked
    # out stays where it is (`reset --hard` would move it).
    await git.run("checkout", "-q", "-f", "--detach", sha, cwd=worktree)
    excludes = [arg for k in kept for arg in ("-e", f"/{k}")]
    await git.run("clean", "-ffdxq", *excludes, cwd=worktree)
    problems = await verify(
        git, worktree, sha, keep=keep, gitdir=gitdir, drop_untracked=True, flags_checked=True
    )
    if problems:
        raise NotClean(worktree, problems)


async def verify(
    git: Git,
    worktree: Path,
    sha: str,
    *,
    keep: tuple[str, ...] = (),
    gitdir: Path | None = None,
    drop_untracked: bool = False,
    flags_checked: bool = False,
) -> list[str]:
    """What keeps ``worktree`` from being exactly ``sha``'s tree ([] when nothing does): HEAD
    elsewhere or on a branch, an operation in progress, flagged index entries, a tracked change,
    an untracked file, an ignored file outside ``keep``. ``drop_untracked``: a keep directory
    that is not ignored (it would show in the agent's diff) is deleted rather than reported.
    ``flags_checked``: the index was just made without flags (:func:`reset`)."""
    kept = keep_patterns(keep)
    gitdir = gitdir or git_dir(worktree)
    problems = [f"{name} in progress" for name in IN_PROGRESS if (gitdir / name).exists()]
    listed = await git.run(
        "status", "--porcelain=v2", "-z", "--branch", "--untracked-files=normal",
        "--ignored=traditional", cwd=worktree,
    )  # fmt: skip
    head: dict[str, str] = {}
    changed: list[str] = []
    items = iter(listed.out.split("\0"))
    for item in items:
        kind, _, rest = item.partition(" ")
        if kind == "#":
            key, _, value = rest.partition(" ")
            head[key] = value
        elif kind in ("?", "!"):
            if kind == "!" and _kept(rest, kept):
                continue
            if kind == "?" and drop_untracked and (entry := _kept(rest, kept)):
                await asyncio.to_thread(shutil.rmtree, worktree / entry, ignore_errors=True)
                if not (worktree / entry).exists():
                    continue
            problems.append(f"{'untracked' if kind == '?' else 'ignored'}: {rest}")
        elif kind in ("1", "2", "u"):
            fields = {"1": 8, "2": 9, "u": 10}[kind]  # the path follows these fields
            changed.append(item.split(" ", fields)[-1])
            if kind == "2":
                next(items, None)  # the rename's source path
    problems += [f"changed: {path}" for path in changed]
    if head.get("branch.oid") != sha:
        problems.append(f"HEAD is {head.get('branch.oid', 'unknown')}, not {sha}")
    if head.get("branch.head") != "(detached)":
        problems.append(f"HEAD is on branch {head.get('branch.head', 'unknown')}, not detached")
    if not flags_checked:
        flags = await git.run("ls-files", "-v", "-z", cwd=worktree)
        problems += [f"index flag on {path}" for path in _flagged(flags.out)[:5]]
    return problems


def _flagged(listing: str) -> list[str]:
    """Paths marked assume-unchanged (a lowercase tag) or skip-worktree ("S") in ``git ls-files
    -v -z`` output."""
    return [e[2:] for e in listing.split("\0") if e and (e[:1].islower() or e[:1] == "S")]
