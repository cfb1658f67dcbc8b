"""git: the one place blitz runs it.

Every command runs through :func:`blitz.process.run` with a timeout, in an environment that
points it at nothing but the directory named (inherited ``GIT_DIR`` and the like are dropped),
never prompts for credentials, never opens an editor, keeps its messages in one language and
does not refresh the user's index (``GIT_OPTIONAL_LOCKS=0``). ``gc --auto`` and maintenance never
start behind blitz's back, and the hooks of the user's repository do not run, except for a push
(a pre-push hook such as git-lfs's uploads objects the remote needs).

:func:`run_git` runs one command; :class:`Git` is one repository with the named operations the
rest of blitz needs; :class:`RepoLock` is the lock over a repository's refs and worktrees.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import os
import re
import shlex
import shutil
import tempfile
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from blitz import filelock
from blitz.errors import GitError
from blitz.process import clean_env, run

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A full object name (SHA-1 or SHA-256)."""

FALLBACK_IDENTITY = (("user.name", "blitz"), ("user.email", "blitz@localhost"))

# Inherited variables that would point git at another repository or index than the one we name.
SCRUBBED_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # fail instead of waiting for a username or password
    "LC_ALL": "C",  # messages we parse or show stay in one language
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "GIT_MERGE_AUTOEDIT": "no",
    "GIT_OPTIONAL_LOCKS": "0",  # `git status` must not rewrite the user's index
}
# Every command: no surprise `gc --auto` (it prunes worktrees and repacks refs) while we work.
# No fsmonitor: a command named in a (worktree) config must never run outside the sandbox.
_ALWAYS = (
    "-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "core.fsmonitor=false",
    # A repository an agent nested in its worktree is a gitlink to blitz: never entered (its
    # config could name filters that run outside the sandbox), never fetched.
    "-c", "diff.ignoreSubmodules=all", "-c", "submodule.recurse=false",
    "-c", "protocol.file.allow=user",
)  # fmt: skip
# Local commands: the hooks of the user's repository are not ours to run unattended (a
# pre-commit hook may be interactive, slow or need tools the worktree lacks).
_NO_HOOKS = ("-c", "core.hooksPath=/dev/null", "-c", "rerere.enabled=false")


@dataclass(frozen=True, slots=True)
class GitResult:
    """What one git command did."""

    code: int | None
    out: str  # stdout (whole, or the part asked for)
    err: str  # stderr (capped tail)
    out_size: int  # bytes written to stdout, even when only part of it was read

    @property
    def ok(self) -> bool:
        return self.code == 0


def git_env(*, keep_secrets: bool = True) -> dict[str, str]:
    """The environment git runs in (``keep_secrets``: credential helpers may need them)."""
    env = clean_env(keep_secrets=keep_secrets)
    for name in SCRUBBED_ENV:
        env.pop(name, None)
    env.update(_GIT_ENV)
    return env


def installed() -> bool:
    """Whether git is on the PATH."""
    return shutil.which("git", path=os.environ.get("PATH")) is not None


async def run_git(
    cwd: Path,
    *args: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    check: bool = True,
    hooks: bool = False,
    out_limit: int | None = None,
    out_tail: int | None = None,
    keep_secrets: bool = True,
    errors: str = "replace",
) -> GitResult:
    """Run one git command in ``cwd``; stdout goes to a file of its own so stderr never mixes
    into output we parse. ``out_limit`` reads only the first characters of stdout, ``out_tail``
    only its last bytes. Raises :class:`GitError` when git cannot run, times out (retryable)
    or, with ``check``, fails."""
    argv = ["git", *_ALWAYS, *(() if hooks else _NO_HOOKS), *args]
    command = shlex.join(["git", *args])
    full_env = git_env(keep_secrets=keep_secrets)
    full_env.update(env or {})
    try:
        # An anonymous file (no name: nothing is left behind when this process is killed).
        with tempfile.TemporaryFile(prefix="blitz-git-") as fh:
            done = await run(
                argv, cwd=cwd, timeout=timeout, env=full_env, stdin=stdin, stdout=fh.fileno()
            )
            out_size = os.fstat(fh.fileno()).st_size
            fh.seek(out_size - out_tail if out_tail is not None and out_size > out_tail else 0)
            # A UTF-8 character is at most 4 bytes: that many bytes hold out_limit characters.
            data = fh.read() if out_limit is None else fh.read(4 * out_limit)
        out = data.decode("utf-8", errors=errors)
        if out_limit is not None:
            out = out[:out_limit]
    except OSError as exc:
        raise GitError(f"cannot run `{command}`: {exc}", command=command) from exc
    if done.timed_out:
        error = GitError(
            f"`{command}` timed out after {timeout:g}s", command=command, output=done.tail()
        )
        error.retryable = True
        raise error
    result = GitResult(done.exit_code, out, done.output, out_size)
    if check and not result.ok:
        message = (result.err.strip() or result.out.strip())[-2000:]
        raise GitError(
            f"`{command}` failed: {message}",
            command=command,
            output=(result.out[-4000:] + result.err).strip(),
        )
    return result


def status_entries(out: str) -> dict[str, str]:
    """Path -> status code from ``git status --porcelain=v1 -z``; a rename or copy lists its
    source path too (its code marked with ``<``)."""
    entries: dict[str, str] = {}
    parts = out.split("\0")
    i = 0
    while i < len(parts):
        entry = parts[i]
        i += 1
        if len(entry) < 4:
            continue
        code = entry[:2]
        entries[entry[3:]] = code
        if {"R", "C"} & set(code):  # the source path follows as its own entry
            if i < len(parts) and parts[i]:
                entries.setdefault(parts[i], f"{code}<")
            i += 1
    return entries


class Git:
    """One repository: git commands run in it (or in one of its worktrees) with a timeout."""

    def __init__(self, repo: Path, *, timeout: float = 120.0) -> None:
        self.repo = repo
        self.timeout = timeout

    async def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        check: bool = True,
        hooks: bool = False,
        out_limit: int | None = None,
    ) -> GitResult:
        """One git command in the repository (or ``cwd``); see :func:`run_git`."""
        return await run_git(
            cwd or self.repo,
            *args,
            timeout=self.timeout,
            env=env,
            stdin=stdin,
            check=check,
            hooks=hooks,
            out_limit=out_limit,
        )

    async def rev_parse(self, ref: str) -> str:
        """The full sha of the commit ``ref`` names; :class:`GitError` if there is none."""
        if not ref or ref.startswith("-"):
            raise GitError(f"not a revision: {ref!r}")
        found = await self.run("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
        if not found.ok:
            raise GitError(f"unknown revision {ref!r} in {self.repo}", command="git rev-parse")
        return found.out.strip()

    async def rev_parse_all(self, *refs: str) -> list[str]:
        """:meth:`rev_parse` of each of ``refs``, in one git command when they all name commits."""
        if all(ref and not ref.startswith("-") for ref in refs):
            found = await self.run("rev-parse", *(f"{r}^{{commit}}" for r in refs), check=False)
            shas = found.out.split()
            if found.ok and len(shas) == len(refs) and all(_SHA.fullmatch(s) for s in shas):
                return shas
        return [await self.rev_parse(ref) for ref in refs]  # which one is not: its own error

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        found = await self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if found.code not in (0, 1):
            raise GitError(f"git merge-base failed: {found.err.strip()}")
        return found.code == 0

    async def branches(self) -> list[str]:
        """The local branches."""
        found = await self.run("for-each-ref", "--format=%(refname)", "refs/heads/")
        return [line.removeprefix("refs/heads/") for line in found.out.splitlines() if line]

    async def status(self, cwd: Path | None = None, *, all_untracked: bool = False) -> list[str]:
        """Uncommitted paths (staged, unstaged, untracked but not ignored); a rename lists both
        of its paths."""
        untracked = ("--untracked-files=all",) if all_untracked else ()
        found = await self.run("status", "--porcelain=v1", "-z", *untracked, cwd=cwd)
        return list(status_entries(found.out))

    async def identity(self, cwd: Path) -> list[str]:
        """``-c`` flags for a fallback identity where the repo configures none (env still wins)."""
        flags: list[str] = []
        for key, fallback in FALLBACK_IDENTITY:
            found = await self.run("config", "--get", key, cwd=cwd, check=False)
            if not found.out.strip():
                flags += ["-c", f"{key}={fallback}"]
        return flags

    async def checked_out(self, ref: str) -> str:
        """The worktree where ``ref`` is checked out ("" when it is nowhere)."""
        listing = await self.run("worktree", "list", "--porcelain")
        path = ""
        for line in listing.out.splitlines():
            if line.startswith("worktree "):
                path = line.removeprefix("worktree ")
            elif line == f"branch {ref}":
                return path
        return ""

    @contextlib.asynccontextmanager
    async def _snapshot(self, worktree: Path) -> AsyncIterator[dict[str, str]]:
        """Env for a temporary index holding everything in the worktree (staged, unstaged,
        untracked); the worktree's own index is never written."""
        with tempfile.TemporaryDirectory(prefix="blitz-index-") as tmp:
            index = Path(tmp) / "index"
            found = await self.run("rev-parse", "--git-path", "index", cwd=worktree)
            real = Path(worktree) / found.out.strip()
            if real.is_file():  # a copy keeps stat data valid, so `add -A` only hashes changes
                shutil.copyfile(real, index)
            env = {"GIT_INDEX_FILE": str(index)}
            await self.run("add", "-A", cwd=worktree, env=env)
            yield env

    async def worktree_diff(self, worktree: Path, base: str, *, max_chars: int) -> str:
        """The worktree's changes (untracked files included) against ``base`` as a patch, cut
        at ``max_chars``."""
        async with self._snapshot(worktree) as env:
            found = await self.run(
                "diff", "--cached", "--no-color", "--no-ext-diff", base, "--",
                cwd=worktree, env=env, out_limit=max_chars + 1,
            )  # fmt: skip
        if len(found.out) <= max_chars:
            return found.out
        return (
            found.out[:max_chars]
            + f"\n[... diff truncated at {max_chars} characters of {found.out_size} bytes ...]\n"
        )

    async def worktree_tree(self, worktree: Path) -> str:
        """The tree id of the worktree's content (untracked files too, ignored ones not)."""
        async with self._snapshot(worktree) as env:
            return (await self.run("write-tree", cwd=worktree, env=env)).out.strip()

    async def worktree_diff_stat(self, worktree: Path, base: str) -> str:
        """``git diff --stat`` of the worktree's changes against ``base``."""
        async with self._snapshot(worktree) as env:
            found = await self.run(
                "diff", "--cached", "--no-color", "--stat=160", base, "--", cwd=worktree, env=env
            )
        return found.out

    async def remote_url(self, remote: str) -> str | None:
        """The remote's URL, or None if there is no such remote."""
        if not remote or remote.startswith("-"):
            return None
        found = await self.run("remote", "get-url", remote, check=False)
        return (found.out.strip() or None) if found.ok else None

    async def push(self, remote: str, ref: str) -> None:
        """Push ``ref`` to the same name on ``remote``, never forced; :class:`GitError` when the
        push fails (one that is not a fast-forward, say)."""
        if not remote or remote.startswith("-"):
            raise GitError(f"not a remote: {remote!r}")
        pushed = await self.run("push", remote, f"{ref}:{ref}", hooks=True, check=False)
        if not pushed.ok:
            message = (pushed.err.strip() or pushed.out.strip())[-2000:]
            raise GitError(
                f"git push of {ref.removeprefix('refs/heads/')} to {remote} failed: {message}",
                command=f"git push {remote} {ref}:{ref}",
                output=message,
            )


async def _answer(
    cwd: Path, *args: str, timeout: float, out_tail: int | None = None, keep_secrets: bool = True
) -> GitResult | None:
    """A git command's result when it succeeded; None when it failed or could not run (for
    questions whose answer may be "nothing")."""
    try:
        found = await run_git(
            cwd, *args, timeout=timeout, check=False, out_tail=out_tail, keep_secrets=keep_secrets
        )
    except GitError:
        return None
    return found if found.ok else None


async def commit_diff(repo: Path, base: str, commit: str, *, cap: int, timeout: float = 30) -> str:
    """The patch from ``base`` to ``commit``; only its last ``cap`` bytes, marked, when longer;
    "" when git cannot give it."""
    found = await _answer(
        repo, "diff", "--no-color", "--no-ext-diff", base, commit, timeout=timeout, out_tail=cap
    )
    if found is None:
        return ""
    return ("[... diff truncated ...]\n" if found.out_size > cap else "") + found.out


async def tracked_files(repo: Path, *, timeout: float) -> list[str] | None:
    """The files git tracks in ``repo``, sorted; None when it is not a repository (or git
    cannot say)."""
    found = await _answer(repo, "ls-files", "-z", timeout=timeout)
    return sorted({p for p in found.out.split("\0") if p}) if found is not None else None


async def head(worktree: Path, *, timeout: float) -> str:
    """The worktree's HEAD commit; "" when it is not a git checkout (or git is missing)."""
    if not installed():
        return ""
    found = await _answer(
        worktree, "rev-parse", "--verify", "-q", "HEAD", timeout=timeout, keep_secrets=False
    )
    return found.out.strip() if found is not None else ""


async def undo_commits(worktree: Path, before: str, *, timeout: float) -> str:
    """Move the worktree's HEAD back to ``before`` keeping the changes (``reset --soft``) if
    commits were made on it; says what it undid ("N commits", "" when HEAD did not move)."""
    after = await head(worktree, timeout=timeout)
    if not after or after == before:
        return ""
    count = await _answer(
        worktree, "rev-list", "--count", f"{before}..{after}", timeout=timeout, keep_secrets=False
    )
    done = await _answer(
        worktree, "reset", "-q", "--soft", before, timeout=timeout, keep_secrets=False
    )
    if done is None:
        return ""
    n = count.out.strip() if count is not None else "some"
    return f"{n} commit{'' if n == '1' else 's'}"


# -- refs, as the ref check sees them --------------------------------------------------------------

MAIN_HEAD = "HEAD"
"""The key of the main checkout's HEAD in :func:`refs`."""


async def refs(repo: Path, *, timeout: float) -> dict[str, str]:
    """Every ref (branches, tags, remote-tracking, notes, ``refs/blitz``...) -> its object id,
    a symbolic one -> ``ref: <target>``, and :data:`MAIN_HEAD` -> the checkout's HEAD (``ref:
    <branch>``, or its commit when detached): one ``for-each-ref`` and one ``rev-parse``."""
    fmt = "--format=%(refname)%00%(objectname)%00%(symref)"
    listing, head_of = await asyncio.gather(
        run_git(repo, "for-each-ref", fmt, timeout=timeout, keep_secrets=False),
        worktree_head(repo, timeout=timeout),
    )
    found: dict[str, str] = {}
    for line in listing.out.splitlines():
        name, _, rest = line.partition("\0")
        sha, _, target = rest.partition("\0")
        found[name] = f"ref: {target}" if target else sha
    if head_of[0]:
        found[MAIN_HEAD] = f"ref: {head_of[1]}" if head_of[1] else head_of[0]
    return found


async def set_ref(repo: Path, ref: str, new: str, old: str, *, timeout: float) -> bool:
    """Point ``ref`` at ``new`` ("": delete it) if it is still at ``old`` ("": absent), never
    through a symbolic ref; whether it did."""
    change = ("-d", ref, old) if not new else (ref, new, old or "0" * len(new))
    done = await _answer(
        repo, "update-ref", "--no-deref", "-m", "blitz: restored", *change,
        timeout=timeout, keep_secrets=False,
    )  # fmt: skip
    return done is not None


async def worktree_head(worktree: Path, *, timeout: float) -> tuple[str, str]:
    """A checkout's HEAD: its commit and its branch ("" when detached); ("", "") if unknown."""
    found = await _answer(
        worktree, "rev-parse", "HEAD", "--symbolic-full-name", "HEAD",
        timeout=timeout, keep_secrets=False,
    )  # fmt: skip
    sha, _, branch = found.out.strip().partition("\n") if found is not None else ("", "", "")
    return sha, branch if branch.startswith("refs/") else ""


async def added_lines_patch(worktree: Path, base: str, *, timeout: float) -> str:
    """The worktree's whole patch (untracked files too) against ``base``, without context
    lines, binary files as text, never cut: what the secret scan reads."""
    async with Git(worktree, timeout=timeout)._snapshot(worktree) as env:
        found = await run_git(
            worktree, "diff", "--cached", "--no-color", "--no-ext-diff", "--no-renames",
            "--text", "--unified=0", base, "--",
            timeout=timeout, env=env, keep_secrets=False,
        )  # fmt: skip
    return found.out


# -- the repository lock ------------------------------------------------------------------------


class _Hold:
    """The in-process half of a repository lock, and a token for the current hold."""

    __slots__ = ("hold", "lock")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.hold: object | None = None


# Per event loop (an asyncio.Lock belongs to one loop), then per resolved repository path.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Hold]] = (
    weakref.WeakKeyDictionary()
)
# The holds of the current context; tasks started under a hold inherit it (asyncio.wait_for and
# gather run their work in new tasks), and it stops counting once that hold is released.
_HELD: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar(
    "blitz_workspace_held", default=()
)


@contextlib.asynccontextmanager
async def repo_lock(repo: Path, lock_file: Path) -> AsyncIterator[None]:
    """One holder at a time for ``repo``, across tasks (an ``asyncio.Lock``) and processes (an
    ``flock`` on ``lock_file``). Re-entrant for the holder and the tasks it starts meanwhile."""
    locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    state = locks.setdefault(str(repo), _Hold())
    if state.hold is not None and state.hold in _HELD.get():
        yield  # re-entered by the holder
        return
    async with state.lock:
        fd = await filelock.acquire(lock_file)
        hold = state.hold = object()
        token = _HELD.set((*_HELD.get(), hold))
        try:
            yield
        finally:
            _HELD.reset(token)
            state.hold = None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
