"""Replaying a task's commit onto a moved goal branch without a worktree.

What ``git rebase --empty=keep --onto ONTO BASE`` does for one commit whose parent is ``BASE``,
done in the object store alone: ``git merge-tree --write-tree ONTO COMMIT`` merges (their merge
base is ``BASE``: ``COMMIT``'s only parent, an ancestor of ``ONTO``), and ``git commit-tree``
makes the new commit on ``ONTO`` with the commit's message (its trailers) and author, this
repository's committer. No files are checked out: a commit made elsewhere (a remote worker's)
lands on a moved branch without a worktree of the daemon's, and one is made only when the
combination has gates to run.

:func:`replay` answers None when it does not apply (not exactly one commit on ``BASE``, a
signed or re-encoded commit, a git without ``merge-tree --write-tree``): the caller rebases in
a worktree as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from blitz.git import Git

_AUTHOR_ENV = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE")
_UNSUPPORTED_HEADERS = ("encoding", "gpgsig", "gpgsig-sha256", "mergetag")


@dataclass(frozen=True, slots=True)
class Replayed:
    """The new commit (``sha``), or the files that conflict (``conflict_files``, no commit)."""

    sha: str = ""
    conflict_files: tuple[str, ...] = ()


async def replay(
    git: Git, commit: str, base: str, onto: str, identity: list[str]
) -> Replayed | None:
    """``commit`` (on ``base``) replayed onto ``onto``; None when only a worktree rebase will
    do. ``identity``: ``-c`` flags for the committer where the repository configures none."""
    parents = await git.run("rev-list", "--parents", "-n", "1", commit)
    if parents.out.split()[1:] != [base]:
        return None
    raw = await git.run("cat-file", "commit", commit)
    if "\ufffd" in raw.out:  # not UTF-8: text would not survive the round trip
        return None
    header, _, message = raw.out.partition("\n\n")
    fields = dict(line.split(" ", 1) for line in header.splitlines() if " " in line)
    if any(name in fields for name in _UNSUPPORTED_HEADERS) or "author" not in fields:
        return None
    author = _author_env(fields["author"])
    if author is None:
        return None
    merged = await git.run(
        "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", onto, commit,
        check=False,
    )  # fmt: skip
    if merged.code not in (0, 1):  # a git before 2.38 has no --write-tree: a rebase will do
        return None
    tree, *files = merged.out.split("\0")
    if merged.code == 1:  # conflicts: the tree with conflict markers, then the files
        return Replayed(conflict_files=tuple(dict.fromkeys(f for f in files if f)))
    made = await git.run(
        *identity, "commit-tree", tree.strip(), "-p", onto, "-F", "-",
        env=author, stdin=message.encode("utf-8", errors="surrogateescape"),
    )  # fmt: skip
    return Replayed(sha=made.out.strip())


def _author_env(line: str) -> dict[str, str] | None:
    """``Name <email> 1700000000 +0000`` as git's author variables (None if malformed)."""
    name, lt, rest = line.partition(" <")
    email, gt, when = rest.partition("> ")
    if not lt or not gt or not when.strip():
        return None
    return dict(zip(_AUTHOR_ENV, (name, email, f"@{when.strip()}"), strict=True))
