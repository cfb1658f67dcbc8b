"""The repository travels with git: bundles, and what each node already has.

No shared disk and no git server are assumed. The daemon sends a worker node what it lacks of a
goal branch as a git bundle (the first time the whole history, afterwards only the commits since
what the node is known to hold; nothing when it holds the head already), and the node sends the
attempt's commit back as a bundle of ``base..commit``. Bundles are bytes: they travel through
Ray's object store, never through a file system both sides see.

:class:`Known` is the daemon's memory of which commits each (node, project) holds: asked of the
node once (the refs of its cache repository), then kept up to date from what was sent and what
came back. A node that restarts is a new Ray node id, so it is asked again.

With a project's ``[executor] sync = "fetch"``, a node first fetches the project's base branch
from the project's git remote (:class:`Upstream`, the remote's address without any credentials in
it: the node uses its own), and the bundle leaves out what that brings: a large history is then
fetched from the remote once per node, never sent by the daemon.

Every git command goes through :class:`blitz.git.Git` (timeouts, no prompts, no hooks).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from blitz.errors import RunError
from blitz.git import Git, run_git

BUNDLE_TIMEOUT = 300.0
"""Seconds a bundle's creation or fetch may take (a first sync of a large history)."""


_OBJECT_NAME = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A full object name, SHA-1 or SHA-256."""

UPSTREAM_REF = "refs/blitz/upstream"
"""Where a node's cache repository keeps the base branch fetched from the project's remote."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where a node fetches the project's base branch: ``url`` (no credentials), ``ref`` (the
    branch there) and ``sha`` (the daemon's last view of it, which the bundle leaves out)."""

    url: str
    ref: str
    sha: str


def public_url(url: str) -> str:
    """``url`` without a user or password (``https://token@host/x`` -> ``https://host/x``): what
    may travel to a node, which authenticates with its own credentials."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url  # a path, or scp-like ``git@host:path`` (a user name, no secret)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


async def upstream(git: Git, remote: str, branch: str) -> Upstream | None:
    """The project's base ``branch`` on its git ``remote``, as the daemon's repository last saw
    it; None when the remote or its tracking ref is missing."""
    url = await git.run("remote", "get-url", remote, check=False)
    sha = await git.run(
        "rev-parse", "--verify", "-q", f"refs/remotes/{remote}/{branch}^{{commit}}", check=False
    )
    if not url.ok or not sha.ok or not url.out.strip() or not sha.out.strip():
        return None
    return Upstream(public_url(url.out.strip()), f"refs/heads/{branch}", sha.out.strip())


class FetchFailed(RunError):
    """A node could not fetch the project's base branch from its remote: the daemon sends the
    attempt again with a full bundle."""


async def fetch_upstream(git: Git, up: Upstream) -> None:
    """Fetch ``up`` into the node's cache (unless it holds the commit already); a
    :class:`FetchFailed` naming the remote when that does not bring the commit."""
    if await present(git, [up.sha]):
        return
    done = await run_git(
        git.repo, "fetch", "-q", "--no-write-fetch-head", up.url, f"+{up.ref}:{UPSTREAM_REF}",
        timeout=BUNDLE_TIMEOUT, check=False,
    )  # fmt: skip
    if not await present(git, [up.sha]):
        said = done.err.strip().splitlines()[-1:] if not done.ok else []
        why = said[0] if said else "the remote does not have it"
        raise FetchFailed(f"fetching {up.ref} from {up.url} did not bring {up.sha[:10]}: {why}")


class Known:
    """Commits each (node, project) is known to hold."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], set[str]] = {}

    def asked(self, node: str, project: str) -> bool:
        return (node, project) in self._held

    def add(self, node: str, project: str, shas: Iterable[str]) -> None:
        self._held.setdefault((node, project), set()).update(s for s in shas if s)

    def held(self, node: str, project: str) -> set[str]:
        return set(self._held.get((node, project), ()))

    def has_project(self, node: str, project: str) -> bool:
        """Whether the node holds some of the project's history (placement prefers it)."""
        return bool(self._held.get((node, project)))

    def forget_node(self, node: str) -> None:
        for key in [k for k in self._held if k[0] == node]:
            del self._held[key]


async def present(git: Git, shas: Iterable[str]) -> set[str]:
    """Those of ``shas`` that are commits in ``git``'s repository (a bundle can only exclude
    commits its maker has): one ``git cat-file --batch-check`` however many are asked. What is
    not a full hexadecimal object name (a node's report is not trusted) is not present."""
    asked = sorted({sha for sha in shas if _OBJECT_NAME.fullmatch(sha)})
    if not asked:
        return set()
    lines = "".join(f"{sha}^{{commit}}\n" for sha in asked).encode()
    done = await git.run("cat-file", "--batch-check=%(objecttype)", stdin=lines)
    said = done.out.splitlines()
    return {sha for sha, kind in zip(asked, said, strict=False) if kind.strip() == "commit"}


async def bundle(git: Git, ref: str, head: str, exclude: Iterable[str]) -> bytes | None:
    """A bundle of ``ref`` (at ``head``) without what ``exclude`` reaches; None when that is
    nothing (the receiver holds ``head`` already)."""
    excluded = sorted(await present(git, exclude))
    if head in excluded:
        return None
    count = await git.run("rev-list", "--count", head, "--not", *excluded, "--")
    if int(count.out.strip() or "0") == 0:
        return None
    with tempfile.TemporaryDirectory(prefix="blitz-bundle-") as tmp:
        path = Path(tmp) / "b.bundle"
        # A bundle names refs, not bare commits: the ref must point at head (the caller's ref).
        await git.run(
            "bundle", "create", "-q", str(path), ref, *(f"^{sha}" for sha in excluded),
            env={"GIT_TERMINAL_PROMPT": "0"},
        )  # fmt: skip
        return path.read_bytes()


async def fetch(git: Git, data: bytes, ref: str, into: str) -> str:
    """Fetch ``ref`` from the bundle ``data`` into the ref ``into`` (forced); its commit."""
    with tempfile.TemporaryDirectory(prefix="blitz-bundle-") as tmp:
        path = Path(tmp) / "b.bundle"
        path.write_bytes(data)
        await git.run("fetch", "-q", "--no-write-fetch-head", str(path), f"+{ref}:{into}")
    return await git.rev_parse(into)


async def heads(git: Git) -> list[str]:
    """The commits every ref of ``git``'s repository points at (what a node's cache holds)."""
    done = await git.run("for-each-ref", "--format=%(objectname)")
    return [line.strip() for line in done.out.splitlines() if line.strip()]


async def set_ref(git: Git, ref: str, sha: str) -> None:
    await git.run("update-ref", "--no-deref", ref, sha)


async def delete_ref(git: Git, ref: str) -> None:
    await git.run("update-ref", "-d", ref, check=False)
