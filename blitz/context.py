"""What a planner is shown of a repository: a summary that fits a token budget.

:func:`repo_context` gathers, in priority order, the project's validation commands, its file tree,
the head of its README, its manifests and the heads of the files that look relevant to the goal,
trimming each part to the budget that is left. Tokens are estimated at four characters each; the
text never exceeds the budget, and the same repository, goal and budget always give the same text.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from blitz import git

CHARS_PER_TOKEN = 4

GIT_TIMEOUT = 30.0
"""Seconds ``git ls-files`` may take before the file tree is read from the filesystem."""

MAX_FILES = 100_000
"""Files considered at all; a larger repository is seen through its first ones."""

MAX_SCANNED = 2_000
"""Files whose contents are read to score their relevance (those whose paths match go first)."""

SCAN_BYTES = 32_768
"""Bytes read from the start of a file, to score it and to show its head."""

MAX_FILE_BYTES = 1_000_000
"""Larger files are neither scored nor shown: they are data or generated, rarely worth a look."""

RELEVANT_FILES = 5
"""How many of the best-scoring files are shown at most."""

MIN_BLOCK = 600
"""Characters a relevant file's block should have at least: a tight budget shows fewer files
rather than a few lines of each."""

# Shares of the whole budget that a part may take at most; what a part leaves goes to the next.
TREE_SHARE = 0.30
README_SHARE = 0.15
MANIFEST_SHARE = 0.15

SKIP_DIRS = frozenset(
    {
        ".git",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
    }
)
"""Directories the filesystem walk (used without git) does not enter."""

MANIFESTS = ("pyproject.toml", "package.json", "Cargo.toml", "go.mod", "setup.cfg")
"""Root files that say how the project is built; ``requirements*.txt`` follow them."""

_README = re.compile(r"readme(\.(md|markdown|rst|txt))?", re.IGNORECASE)
_REQUIREMENTS = re.compile(r"requirements[\w.-]*\.txt")

_NOT_SOURCE = frozenset(
    """
    png jpg jpeg gif bmp ico webp svg pdf zip gz tgz bz2 xz 7z tar jar war whl egg so dylib dll
    exe bin o a pyc pyo class woff woff2 ttf otf eot mp3 mp4 wav ogg mov avi db sqlite sqlite3
    lock map min.js min.css
    """.split()  # noqa: SIM905 - a word list reads best as words
)
"""Suffixes of files that are never relevant source: binaries, media, lock files, minified code."""

STOP_WORDS = frozenset(
    """
    the and for with that this from into onto over under about after before than then them they
    their there these those when where which while what who whom whose why how all any are was
    were has have had not but can could should would will shall may might must also each every
    its our your you use used using make makes made add adds added new get set via per out off
    let lets like just more most some such only other same very too here both own few many much
    does did doing done being been out please want need needs able sure instead etc
    implement implements implemented support supports create creates update updates change
    changes changed remove removes fix fixes fixed ensure allow allows way ways thing things
    code file files project repo repository
    """.split()  # noqa: SIM905 - a word list reads best as words
)
"""Goal words that say nothing about which files matter."""

_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "ed", "s")
_MIN_STEM = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoContext:
    """The repository as the planner's prompt shows it.

    ``text`` is the prompt section; ``files`` the paths whose contents it includes (README,
    manifests, relevant files); ``tokens`` its estimated size (characters / 4, rounded up).
    """

    text: str
    files: tuple[str, ...] = ()
    tokens: int = 0


async def repo_context(
    repo: Path, *, goal: str, gates: Mapping[str, str], budget_tokens: int = 12_000
) -> RepoContext:
    """Summarise ``repo`` for planning ``goal`` in at most ``budget_tokens`` tokens."""
    if budget_tokens < 0:
        raise ValueError(f"budget_tokens must not be negative, not {budget_tokens}")
    total = budget_tokens * CHARS_PER_TOKEN
    if total == 0:
        return RepoContext(text="")
    paths = await _list_files(repo)
    out = _Writer(total)
    out.add(_gates_section(gates, out.room))
    out.add(_tree_section(paths, min(out.room, int(total * TREE_SHARE))))
    root_files = sorted(p for p in paths if "/" not in p)
    shown: list[str] = []
    readme = _readme(root_files)
    if readme is not None:
        text = await asyncio.to_thread(_read_head, repo, readme)
        if text is not None:
            section = _file_section(
                f"{readme} (head)", text, min(out.room, int(total * README_SHARE))
            )
            if out.add(section):
                shown.append(readme)
    manifests = [m for m in MANIFESTS if m in root_files]
    manifests += [p for p in root_files if _REQUIREMENTS.fullmatch(p)]
    manifest_room = min(out.room, int(total * MANIFEST_SHARE))
    for index, name in enumerate(manifests):
        text = await asyncio.to_thread(_read_head, repo, name)
        if text is None:
            continue
        room = min(out.room, manifest_room // (len(manifests) - index))
        section = _file_section(name, text, room)
        if out.add(section):
            shown.append(name)
            manifest_room -= len(section) + len(_SEPARATOR)
    keywords = goal_keywords(goal)
    if keywords and out.room > 0:
        candidates = [p for p in paths if p not in shown and _may_be_source(p)]
        scored = await asyncio.to_thread(_relevant, repo, candidates, keywords)
        blocks = _relevant_section(scored, out.room)
        if out.add(blocks.text):
            shown.extend(blocks.files)
    text = out.text()
    return RepoContext(text=text, files=tuple(shown), tokens=math.ceil(len(text) / CHARS_PER_TOKEN))


def goal_keywords(goal: str) -> tuple[str, ...]:
    """The stems of the goal's words of three or more letters, stop words left out, in order.

    ``RateLimiter`` and ``rate_limiter`` give ``rate``, ``limit``; ``limiting`` gives ``limit``.
    """
    found: dict[str, None] = {}
    for token in re.findall(r"[A-Za-z]+", goal):
        for word in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", token):
            lowered = word.lower()
            if len(lowered) >= 3 and lowered not in STOP_WORDS:
                found.setdefault(_stem(lowered), None)
    return tuple(found)


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            return word[: -len(suffix)]
    return word


# -- assembling the text -----------------------------------------------------------------------

_SEPARATOR = "\n\n"
_TRUNCATED = "\n[... truncated ...]"


class _Writer:
    """Sections joined by blank lines, never longer than ``limit`` characters in all."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: list[str] = []
        self._used = 0

    @property
    def room(self) -> int:
        """Characters the next section may have."""
        joint = len(_SEPARATOR) if self._parts else 0
        return max(0, self._limit - self._used - joint)

    def add(self, section: str) -> bool:
        """Append ``section`` if it is not empty and fits; say whether it was appended."""
        if not section or len(section) > self.room:
            return False
        if self._parts:
            self._used += len(_SEPARATOR)
        self._parts.append(section)
        self._used += len(section)
        return True

    def text(self) -> str:
        return _SEPARATOR.join(self._parts)


def _head(text: str, room: int) -> str:
    """``text`` cut to ``room`` characters, at a line end where one is near, marked as cut."""
    if len(text) <= room:
        return text
    if room <= len(_TRUNCATED):
        return ""
    cut = text[: room - len(_TRUNCATED)]
    newline = cut.rfind("\n")
    if newline >= len(cut) // 2:
        cut = cut[:newline]
    return cut + _TRUNCATED


def _section(heading: str, body: str, room: int) -> str:
    """``## heading`` and as much of ``body`` as fits in ``room``; empty if nothing of it fits."""
    title = f"## {heading}\n"
    body = _head(body, room - len(title))
    return title + body if body else ""


def _gates_section(gates: Mapping[str, str], room: int) -> str:
    lines = [f"- {name}: `{command}`" for name, command in gates.items() if command]
    body = "\n".join(lines) if lines else "(none configured)"
    return _section("Validation commands (every task must pass them)", body, room)


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _file_block(title: str, text: str, room: int, level: str) -> str:
    """A heading and the fenced head of ``text`` in at most ``room`` characters, or ''."""
    heading = f"{level} {title}\n"
    fence = _fence(text)
    body = _head(text.rstrip(), room - len(heading) - 2 * len(fence) - 2)
    return f"{heading}{fence}\n{body}\n{fence}" if body.strip() else ""


def _file_section(title: str, text: str, room: int) -> str:
    return _file_block(title, text, room, "##")


# -- the file tree -----------------------------------------------------------------------------


async def file_tree(repo: Path, room: int) -> str:
    """The repository's files as the planner sees them (``## Files (N)`` and the paths, collapsed
    to directories when they do not fit in ``room`` characters); "" for an empty repository."""
    return _tree_section(await _list_files(repo), room)


def _tree_section(paths: Sequence[str], room: int) -> str:
    """Every path, or (when too long) the paths collapsed to directories with their file counts
    at the deepest level that fits, or (when even that is too long) the first top-level
    entries."""
    title = f"## Files ({len(paths)})\n"
    room -= len(title)
    if room <= 0 or not paths:
        return ""
    full = "\n".join(paths)
    if len(full) <= room:
        return title + full
    deepest = max(p.count("/") for p in paths)
    for depth in range(deepest, 0, -1):
        collapsed = "\n".join(_collapsed(paths, depth))
        if len(collapsed) <= room:
            return title + collapsed
    lines = _collapsed(paths, 1)
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        rest = f"... and {len(lines) - index} more entries"
        if used + len(line) + 1 + len(rest) > room:
            if used + len(rest) <= room:
                kept.append(rest)
            break
        kept.append(line)
        used += len(line) + 1
    return title + "\n".join(kept) if kept else ""


def _collapsed(paths: Sequence[str], depth: int) -> list[str]:
    """Paths with at most ``depth`` directories kept; deeper files counted under their
    directory at that depth (``src/pkg/ (12 files)``)."""
    counts: dict[str, int] = {}
    for path in paths:
        parts = path.split("/")
        key = path if len(parts) <= depth else "/".join(parts[:depth]) + "/"
        counts[key] = counts.get(key, 0) + 1
    return [
        key if not key.endswith("/") else f"{key} ({n} file{'s' if n != 1 else ''})"
        for key, n in sorted(counts.items())
    ]


async def _list_files(repo: Path) -> list[str]:
    """The repository's files, sorted: git's tracked files, else a walk of the filesystem."""
    paths = await git.tracked_files(repo, timeout=GIT_TIMEOUT)
    if paths:
        return paths[:MAX_FILES]
    return await asyncio.to_thread(_walk, repo)


def _walk(repo: Path) -> list[str]:
    found: list[str] = []
    for top, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        rel = Path(top).relative_to(repo)
        for name in sorted(files):
            found.append((rel / name).as_posix())
            if len(found) >= MAX_FILES:
                return sorted(found)
    return sorted(found)


# -- reading files -----------------------------------------------------------------------------


def _readme(root_files: Sequence[str]) -> str | None:
    matches = [p for p in root_files if _README.fullmatch(p)]
    # README.md before README.rst before README: markdown reads best in a prompt.
    return min(matches, key=lambda p: (not p.lower().endswith(".md"), len(p), p), default=None)


def _read_head(repo: Path, rel: str) -> str | None:
    """The first :data:`SCAN_BYTES` of a regular text file inside ``repo``, else None."""
    path = repo / rel
    try:
        if path.is_symlink() or not path.is_file():
            return None
        if not path.resolve().is_relative_to(repo.resolve()):
            return None
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        with path.open("rb") as handle:
            data = handle.read(SCAN_BYTES)
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _may_be_source(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    parts = name.split(".")
    return not any(".".join(parts[i:]) in _NOT_SOURCE for i in range(1, len(parts)))


@dataclass(frozen=True, slots=True)
class _Scored:
    path: str
    score: int
    text: str


def _path_score(path: str, keywords: Sequence[str]) -> int:
    lowered = path.lower()
    directory, _, name = lowered.rpartition("/")
    score = 0
    for word in keywords:
        if word in name:
            score += 10
        elif word in directory:
            score += 4
    return score


def _relevant(repo: Path, paths: Sequence[str], keywords: Sequence[str]) -> list[_Scored]:
    """The files worth showing for ``keywords``, best first (ties by path).

    A keyword in a file's name counts most, in its directory less, and each occurrence in its
    contents (up to ten per keyword) a little.
    """
    by_path = {p: _path_score(p, keywords) for p in paths}
    order = sorted(paths, key=lambda p: (by_path[p] == 0, p))[:MAX_SCANNED]
    scored: list[_Scored] = []
    for path in order:
        text = _read_head(repo, path)
        if text is None:
            continue
        lowered = text.lower()
        score = by_path[path] + sum(min(lowered.count(word), 10) for word in keywords)
        if score > 0:
            scored.append(_Scored(path, score, text))
    scored.sort(key=lambda s: (-s.score, s.path))
    return scored[:RELEVANT_FILES]


@dataclass(frozen=True, slots=True)
class _Blocks:
    text: str
    files: tuple[str, ...]


def _relevant_section(scored: Sequence[_Scored], room: int) -> _Blocks:
    """The heads of the scored files, sharing ``room`` evenly (what a short file leaves goes to
    the next)."""
    title = "## Files that look relevant to the goal"
    room -= len(title)
    scored = scored[: max(1, room // MIN_BLOCK)]
    blocks: list[str] = []
    files: list[str] = []
    for index, item in enumerate(scored):
        share = room // (len(scored) - index) - 1  # each block follows a newline
        block = _file_block(item.path, item.text, share, "###")
        if block:
            blocks.append(block)
            files.append(item.path)
            room -= len(block) + 1
    if not blocks:
        return _Blocks("", ())
    return _Blocks("\n".join([title, *blocks]), tuple(files))
