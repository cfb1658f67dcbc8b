"""The worktree's files as the embedded agent's tools read them: regular files only (a link or a
special file put in place is refused), lines and files capped so nothing fills memory, directory
walks that never follow a symbolic link, globs, and the excerpts shown when an edit's text is not
found."""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from blitz.backends.confine import ToolError

BINARY_SNIFF = 8192
"""Bytes at the start of a file checked for a NUL byte: a file with one is binary."""

SEARCH_MAX_FILE_BYTES = 1_000_000
"""Files larger than this are skipped by search (generated or data files, not source)."""

SEARCH_LINE_CHARS = 300
"""A matching line is shown up to this many characters."""

EXCERPT_LINES = 12
"""Lines of the closest text quoted when an edit's old text is not found."""

SKIPPED_DIRS = frozenset(
    {"node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
"""Dependency and cache directories: search does not descend into them (unless asked to search
inside one) and list_dir does not expand them, so they do not drown the project's own files."""

DEFAULT_GLOB = "**/*"


# -- helpers ------------------------------------------------------------------------------------


def open_regular(real: Path, shown: str) -> BinaryIO:
    """``real`` opened for reading, refusing a symbolic link, a directory or a special file."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ToolError(
            f"{shown!r} does not exist; use list_dir or search to find the right path"
        ) from None
    except OSError as exc:
        raise ToolError(f"cannot open {shown!r}: {exc.strerror}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ToolError(f"{shown!r} is a directory; use list_dir to see what it contains")
        raise ToolError(f"{shown!r} is not a regular file and cannot be read")
    return os.fdopen(fd, "rb")


def read_line(file: BinaryIO, cap: int) -> tuple[bytes, bool]:
    """The next line, at most ``cap`` bytes of it, and whether it is whole; the rest of a longer
    line is skipped so that a file without newlines cannot fill memory."""
    raw = file.readline(cap)
    if len(raw) < cap or raw.endswith(b"\n"):
        return raw, True
    while chunk := file.readline(cap):
        if chunk.endswith(b"\n"):
            break
    return raw, False


def count_lines(file: BinaryIO) -> int:
    """The lines left in ``file`` from where it is."""
    count = 0
    last = b"\n"
    while chunk := file.read(1 << 20):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (last != b"\n")


def decode_line(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").removesuffix("\n").removesuffix("\r")


def split_lines(data: bytes) -> list[str]:
    """Lines split on '\\n' only, numbered the way read_file numbers them."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def clip_line(line: str) -> str:
    line = line.strip()
    return line if len(line) <= SEARCH_LINE_CHARS else line[:SEARCH_LINE_CHARS] + " [...]"


def scan_dir(directory: Path, *, strict: bool = False) -> list[os.DirEntry[str]]:
    """The entries of a directory sorted by name, without ``.git``; an unreadable directory
    below the one asked for is passed over (``strict`` raises instead)."""
    try:
        with os.scandir(directory) as entries:
            found = [entry for entry in entries if entry.name.casefold() != ".git"]
    except OSError:
        if strict:
            raise
        return []
    return sorted(found, key=lambda entry: entry.name)


def walk_files(start: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Regular files under ``start`` with their paths relative to it, depth first in name
    order, never following a symbolic link and skipping ``.git`` and :data:`SKIPPED_DIRS`."""
    stack: list[tuple[Path, str]] = [(start, "")]
    while stack:
        directory, prefix = stack.pop()
        subdirectories: list[tuple[Path, str]] = []
        for entry in scan_dir(directory):
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIPPED_DIRS:
                    subdirectories.append((Path(entry.path), f"{prefix}{entry.name}/"))
            elif entry.is_file(follow_symlinks=False):
                yield prefix + entry.name, entry
        stack.extend(reversed(subdirectories))


def read_for_search(file: Path) -> bytes | None:
    """The bytes of a regular file, None when it is over the search size limit; unreadable
    files read as empty."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        data = handle.read(SEARCH_MAX_FILE_BYTES + 1)
    return None if len(data) > SEARCH_MAX_FILE_BYTES else data


def glob_matcher(glob: str) -> Callable[[str], bool]:
    """A predicate on '/'-separated relative paths. A glob without '/' matches file names at
    any depth; one with '/' matches the whole path, where '**' spans directories."""
    try:
        compiled = re.compile(glob_regex(glob or DEFAULT_GLOB) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise ToolError(f"invalid glob {glob!r}: {exc}") from None
    if "/" in glob:
        return lambda relative: compiled.match(relative) is not None
    return lambda relative: compiled.match(relative.rpartition("/")[2]) is not None


def glob_regex(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (end := glob.find("]", i + 2)) != -1:
            # fnmatch knows the corners of character sets ('!', '^', '&&', ...).
            out.append(fnmatch.translate(glob[i : end + 1]).removesuffix(r"\Z"))
            i = end + 1
        elif char == "{" and (end := glob.find("}", i)) != -1:
            options = glob[i + 1 : end].split(",")
            out.append("(?:" + "|".join(glob_regex(option) for option in options) + ")")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


MAX_OCCURRENCES = 1000


def occurrences(text: str, old: str) -> list[int]:
    """Where ``old`` starts in ``text``, overlapping occurrences included (up to a bound)."""
    starts: list[int] = []
    start = text.find(old)
    while start != -1 and len(starts) < MAX_OCCURRENCES:
        starts.append(start)
        start = text.find(old, start + 1)
    return starts


def not_found(shown: str, text: str, old: str) -> str:
    """Why an edit's old text was not found, quoting the closest lines of the file."""
    if not text:
        return f"old text not found: {shown!r} is empty; use write_file to give it content"
    lines = text.split("\n")
    wanted = old.strip("\n").split("\n")
    size = min(len(wanted), len(lines))
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2("\n".join(wanted))  # the matcher caches what it learns about seq2
    best, best_at = 0.0, 0
    for at in range(len(lines) - size + 1):
        matcher.set_seq1("\n".join(lines[at : at + size]))
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_at = ratio, at
    message = f"old text not found in {shown!r}."
    if " ".join(old.split()) in " ".join(text.split()):
        message += (
            " The text is there with different whitespace or indentation: copy it exactly,"
            " including leading spaces or tabs."
        )
    if best < 0.3:
        return message + " Nothing in the file is close to it; read_file to see what it contains."
    shown_lines = lines[best_at : best_at + min(size, EXCERPT_LINES)]
    excerpt = "\n".join(
        f"{best_at + 1 + n:4d}| {clip_excerpt(line)}" for n, line in enumerate(shown_lines)
    )
    more = "\n     ..." if size > EXCERPT_LINES else ""
    last = best_at + size
    where = f"line {best_at + 1}" if size == 1 else f"lines {best_at + 1}-{last}"
    return (
        f"{message} The closest text is at {where}:\n{excerpt}{more}\n"
        "Copy the exact current text into old (without the line-number prefixes) and retry."
    )


def clip_excerpt(line: str) -> str:
    line = line.removesuffix("\r")
    return line if len(line) <= SEARCH_LINE_CHARS else line[:SEARCH_LINE_CHARS] + " [...]"


def holds_lines(old: str, text: str) -> int:
    """The line where ``old`` already has the whole lines of ``text`` (trailing blanks aside),
    else 0."""
    wanted = "\n".join(line.rstrip() for line in text.strip("\n").splitlines())
    lines = [line.rstrip() for line in old.splitlines()]
    at = ("\n" + "\n".join(lines) + "\n").find("\n" + wanted + "\n")
    return 0 if not wanted.strip() or at < 0 else "\n".join(lines)[:at].count("\n") + 1


def previous_bytes(real: Path, cap: int) -> bytes | None:
    """The bytes of the regular file ``real`` before a write (None: no such file, or too big)."""
    try:
        if real.is_file() and not real.is_symlink() and real.stat().st_size <= cap:
            return real.read_bytes()
    except OSError:
        pass
    return None


def holds(real: Path, data: bytes) -> bool:
    """Whether ``real`` is a regular file (not a link) whose bytes are ``data``."""
    try:
        if not real.is_file() or real.is_symlink() or real.stat().st_size != len(data):
            return False
        return real.read_bytes() == data
    except OSError:
        return False
