"""Commands that may only look: a task's acceptance check judges the change, it does not make it.

A planner writes the checks, and a small one writes them as it would the work: Qwen2.5-Coder-1.5B
planned "rename compute_total to sum_prices" with the checks ``sed -i 's/compute_total/sum_prices/g'
shop.py`` and the same for ``report.py``. They "passed", did the rename the agent had not, and the
commit took it. So the worktree's content is recorded before such a command and compared after
it; the files it changed or deleted are put back as they were, and the command is said to have
changed them (the caller fails it, or does not believe it). Files it created are left: a build's
output or a test run's cache is no change to the work, and a later check may need it.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from blitz.git import Git, GitError

SHOWN_PATHS = 5
"""Changed paths named in what is said."""


@contextlib.asynccontextmanager
async def looking(worktree: Path) -> AsyncIterator[list[str]]:
    """Run the block as a command that may only look at ``worktree``: the list given is filled,
    when the block has ended, with the files it had that the block changed or deleted, and
    those are put back as they were. Files it creates are left alone (a build's output, a test
    run's ``__pycache__``; a later check may need them); ignored files are not compared. Outside
    a git worktree nothing is compared."""
    git = Git(worktree)
    changed: list[str] = []
    try:
        before = await git.worktree_tree(worktree)
    except GitError:
        yield changed
        return
    yield changed
    after = await git.worktree_tree(worktree)
    if after == before:
        return
    found = await git.run("diff-tree", "-r", "-z", "--name-status", before, after, cwd=worktree)
    fields = found.out.split("\0")
    pairs = zip(fields[::2], fields[1::2], strict=False)
    changed.extend(path for status, path in pairs if path and status != "A")
    if not changed:
        return
    with tempfile.TemporaryDirectory(prefix="blitz-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        await git.run("read-tree", before, cwd=worktree, env=env)
        await git.run("checkout-index", "-f", "-z", "--stdin", cwd=worktree, env=env,
                      stdin="\0".join(changed).encode())  # fmt: skip


def said(changed: list[str]) -> str:
    """What a command that changed ``changed`` is told it did."""
    shown = ", ".join(changed[:SHOWN_PATHS]) + (
        f" and {len(changed) - SHOWN_PATHS} more" if len(changed) > SHOWN_PATHS else ""
    )
    return (
        f"the check changed files ({shown}): an acceptance check may only look at the change,"
        " not make it; what it changed was put back"
    )
