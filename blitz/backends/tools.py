"""The tools of the embedded coding agent: read, list, search, write, append to and edit files in
one worktree, and run shell commands there. Independent of any agent framework: the embedded
backend wraps these methods as tool functions
(:mod:`blitz.backends.embedded_session`, with the descriptions the model sees).

File tools are contained. Every path goes through :meth:`AgentTools.resolve`, which resolves
symbolic links the way the kernel does and refuses absolute paths, ``..`` escapes, links that lead
outside the worktree and anything inside ``.git``. Files are then opened with ``O_NOFOLLOW`` and
must be regular files, so a link or FIFO put in the resolved place afterwards is refused as well.
Listing and searching never follow symbolic links.

``run_command`` (``/bin/sh -c`` in the worktree) is not contained by path checks: its jail is
(the sandbox's; with the sandbox off, only secrets are kept from its environment), with the
timeout and whole-tree kill of :func:`blitz.process.run`.

A :class:`ToolError` is the model's mistake, not a crash: its message says what to do instead, and
the agent loop returns it to the model as the tool's result.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from blitz import envsetup, process
from blitz.backends.block_scope import kept_note, kept_out_of_scope
from blitz.backends.confine import ToolError, describe_link, resolve
from blitz.backends.files import (
    BINARY_SNIFF,
    DEFAULT_GLOB,
    MAX_OCCURRENCES,
    SEARCH_MAX_FILE_BYTES,
    SKIPPED_DIRS,
    clip_line,
    count_lines,
    decode_line,
    glob_matcher,
    holds,
    not_found,
    occurrences,
    open_regular,
    previous_bytes,
    read_for_search,
    read_line,
    scan_dir,
    split_lines,
    walk_files,
)
from blitz.backends.source_edits import UNINDENTED, dedented, dropped, held, join
from blitz.backends.syntax_guard import SyntaxGuard
from blitz.errors import RunError
from blitz.sandbox import UNCONFINED, Policy


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolLimits:
    """Bounds on what one tool call may read, list, find, write or run."""

    read_max_chars: int = 60_000  # characters of numbered lines returned by one read_file
    list_max_entries: int = 500  # entries returned by list_dir, files by an empty-pattern search
    search_max_matches: int = 200  # matching lines returned by search
    command_timeout: float = 300.0  # seconds; also the cap on a timeout the model asks for
    output_cap: int = 32_000  # bytes of command output kept (the tail)
    write_max_bytes: int = 2_000_000  # largest file the writing tools will write


class AgentTools:
    """The file and command tools of one agent, confined to one worktree."""

    def __init__(
        self,
        worktree: Path,
        *,
        limits: ToolLimits = ToolLimits(),
        env: Mapping[str, str] | None = None,
        sandbox: Policy | None = None,
    ) -> None:
        """``sandbox``: run commands jailed under this policy (None: unconfined, secrets
        stripped from their environment)."""
        self.root = Path(os.path.realpath(worktree))
        if not self.root.is_dir():
            raise RunError(f"worktree {str(worktree)!r} is not a directory")
        self.limits = limits
        self.env = dict(env) if env is not None else process.clean_env()
        self.jail = (sandbox or UNCONFINED).jail(self.root)
        self.guard = SyntaxGuard()

    # -- paths ---------------------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` in the worktree (:func:`blitz.backends.confine.resolve`)."""
        return resolve(self.root, path)

    def _shown(self, real: Path) -> str:
        """How a resolved path is shown to the model: relative to the worktree, '/'-separated."""
        return real.relative_to(self.root).as_posix()

    # -- reading -------------------------------------------------------------------------------

    async def read_file(self, path: str, offset: int = 0, limit: int | None = None) -> str:
        """The file's lines numbered from 1 (``"  12| text"``), skipping ``offset`` lines and
        showing at most ``limit``; a note at the end says how to read on when it stops early."""
        return await asyncio.to_thread(self._read_file, path, offset, limit)

    def _read_file(self, path: str, offset: int, limit: int | None) -> str:
        if offset < 0:
            raise ToolError("offset must be 0 or more (the number of lines to skip)")
        if limit is not None and limit < 1:
            raise ToolError("limit must be at least 1 (the number of lines to show), or omitted")
        real = self.resolve(path)
        shown = self._shown(real)
        with open_regular(real, shown) as file:
            head = file.read(BINARY_SNIFF)
            if b"\x00" in head:
                size = os.fstat(file.fileno()).st_size
                raise ToolError(
                    f"{shown!r} is a binary file ({size} bytes) and read_file shows text only;"
                    f" inspect it with run_command if you must (e.g. `file {shown}`)"
                )
            file.seek(0)
            return self._numbered(file, offset, limit)

    def _numbered(self, file: BinaryIO, offset: int, limit: int | None) -> str:
        budget = self.limits.read_max_chars
        shown: list[str] = []
        used = 0
        number = 0  # lines consumed so far
        more = False  # stopped before the end of the file
        cut: int | None = None  # the number of a line shown only in part
        while True:
            raw, whole = read_line(file, budget * 4 + 8)
            if not raw:
                break
            number += 1
            if number <= offset:
                continue
            if limit is not None and number > offset + limit:
                more = True
                break
            entry = f"{number:4d}| {decode_line(raw)}"
            if used + len(entry) + 1 > budget:
                if shown:
                    more = True
                    break
                entry, whole = entry[:budget], False
            if not whole:
                cut = number
            shown.append(entry)
            used += len(entry) + 1
        if not shown:
            if number == 0:
                return "(empty file)"
            return f"(the file has {number} lines; offset {offset} is past the end)"
        last = offset + len(shown)
        notes = []
        if cut is not None:
            notes.append(
                f"[line {cut} is longer than {budget} characters and was cut; see the rest"
                " with run_command (e.g. `cut -c`)]"
            )
        if more:
            total = number + count_lines(file)
            notes.append(
                f"[showing lines {offset + 1}-{last} of {total}; call read_file with"
                f" offset={last} to read more]"
            )
        return "\n".join(shown + notes)

    # -- listing -------------------------------------------------------------------------------

    async def list_dir(self, path: str = ".", depth: int = 1) -> str:
        """The entries of a directory, ``depth`` levels deep, sorted, directories ending in '/';
        ``.git`` is left out and symbolic links are shown, never followed."""
        return await asyncio.to_thread(self._list_dir, path, depth)

    def _list_dir(self, path: str, depth: int) -> str:
        if depth < 1:
            raise ToolError("depth must be at least 1")
        real = self.resolve(path)
        shown = self._shown(real)
        if not real.is_dir():
            if real.exists():
                raise ToolError(f"{shown!r} is a file, not a directory; use read_file to read it")
            raise ToolError(f"{shown!r} does not exist; list its parent directory to see what does")
        cap = self.limits.list_max_entries
        found: list[tuple[tuple[str, ...], str]] = []  # (sort key, line)
        level = [(real, "")]
        capped = False
        try:
            for current in range(1, depth + 1):
                deeper: list[tuple[Path, str]] = []
                for directory, prefix in level:
                    for entry in scan_dir(directory, strict=directory == real):
                        if len(found) >= cap:
                            capped = True
                            break
                        name = prefix + entry.name
                        line = name
                        if entry.is_symlink():
                            line += describe_link(self.root, entry.path)
                        elif entry.is_dir(follow_symlinks=False):
                            line += "/"
                            if current < depth:
                                if entry.name in SKIPPED_DIRS:
                                    line += " (not expanded)"
                                else:
                                    deeper.append((Path(entry.path), name + "/"))
                        found.append((tuple(name.split("/")), line))
                    if capped:
                        break
                if capped:
                    break
                level = deeper
        except OSError as exc:
            raise ToolError(f"cannot list {shown!r}: {exc.strerror}") from exc
        if not found:
            return "(empty directory)"
        lines = [line for _, line in sorted(found)]
        if capped:
            lines.append(
                f"[stopped at {cap} entries; list a subdirectory or use a smaller depth to see"
                " the rest]"
            )
        return "\n".join(lines)

    # -- searching -----------------------------------------------------------------------------

    async def search(
        self, pattern: str, *, glob: str = DEFAULT_GLOB, regex: bool = False, path: str = "."
    ) -> str:
        """Lines containing ``pattern`` (a literal string, or a Python regular expression with
        ``regex``) as ``file:line: text``, in the files under ``path`` that match ``glob``; with
        an empty pattern, the matching files themselves."""
        return await asyncio.to_thread(self._search, pattern, glob, regex, path)

    def _search(self, pattern: str, glob: str, regex: bool, path: str) -> str:
        compiled: re.Pattern[str] | None = None
        if regex and pattern:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ToolError(
                    f"invalid regular expression {pattern!r}: {exc}; fix it, or search for the"
                    " literal text with regex=false"
                ) from None
        wanted = glob_matcher(glob)
        real = self.resolve(path)
        shown = self._shown(real)
        files: Iterator[tuple[str, Path]]
        if real.is_dir():
            prefix = "" if shown == "." else shown + "/"
            files = (
                (prefix + relative, Path(entry.path))
                for relative, entry in walk_files(real)
                if wanted(relative)
            )
        elif real.is_file():
            files = iter([(shown, real)])
        else:
            raise ToolError(f"{shown!r} does not exist; search '.' or a directory that does")

        if not pattern:
            return self._list_files(files, glob, shown)
        matches: list[str] = []
        cap = self.limits.search_max_matches
        searched = binary = large = 0
        for name, file in files:
            data = read_for_search(file)
            if data is None:
                large += 1
                continue
            if b"\x00" in data[:BINARY_SNIFF]:
                binary += 1
                continue
            searched += 1
            for number, line in enumerate(split_lines(data), 1):
                if compiled.search(line) if compiled else pattern in line:
                    matches.append(f"{name}:{number}: {clip_line(line)}")
                    if len(matches) >= cap:
                        break
            if len(matches) >= cap:
                matches.append(
                    f"[stopped at {cap} matches; narrow the pattern, glob or path to see the rest]"
                )
                break
        if not matches:
            where = f"under {shown!r}" + ("" if glob == DEFAULT_GLOB else f" matching {glob!r}")
            matches.append(f"no matches for {pattern!r} in {searched} files {where}")
        if binary or large:
            matches.append(
                f"[skipped {binary} binary files and {large} files over"
                f" {SEARCH_MAX_FILE_BYTES // 1_000_000} MB]"
            )
        return "\n".join(matches)

    def _list_files(self, files: Iterator[tuple[str, Path]], glob: str, shown: str) -> str:
        cap = self.limits.list_max_entries
        names: list[str] = []
        for name, _ in files:
            if len(names) >= cap:
                names.append(f"[stopped at {cap} files; narrow the glob or path to see the rest]")
                break
            names.append(name)
        return "\n".join(names) or f"no files matching {glob!r} under {shown!r}"

    # -- writing -------------------------------------------------------------------------------

    async def write_file(self, path: str, content: str) -> str:
        """Create or overwrite a file with ``content``, creating missing parent directories."""
        return await asyncio.to_thread(self._write_file, path, content)

    def _write_file(self, path: str, content: str) -> str:
        real = self.resolve(path)
        shown = self._shown(real)
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ToolError(f"content cannot be written as UTF-8: {exc}") from None
        flat = dedented(shown, content)
        if flat is not None:
            content, data = flat, flat.encode("utf-8")
        if holds(real, data):
            # Said plainly: a small model that wrote a file tends to write it again and again.
            return (
                f"{shown} already has exactly this content; nothing changed (call finish if"
                " the task is done)"
            )
        before = previous_bytes(real, self.limits.write_max_bytes)
        old = None if before is None else before.decode("utf-8", "surrogateescape")
        note = self.guard.check(shown, old, content)
        self._write_bytes(real, shown, data)
        said = f"wrote {len(data)} bytes to {shown}" + (UNINDENTED if flat is not None else "")
        return said + dropped(before, data) + note

    def _write_bytes(self, real: Path, shown: str, data: bytes) -> None:
        if len(data) > self.limits.write_max_bytes:
            raise ToolError(
                f"the new content of {shown!r} is {len(data)} bytes, over the limit of"
                f" {self.limits.write_max_bytes}; produce files that large with a command"
                " (run_command) instead"
            )
        if real == self.root:
            raise ToolError("'.' is the repository root, a directory; give a file path")
        try:
            real.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ToolError(
                f"cannot create the directory of {shown!r}: {exc.strerror}"
                " (is a part of the path an existing file?)"
            ) from exc
        try:
            mode = os.lstat(real).st_mode
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ToolError(f"cannot write {shown!r}: {exc.strerror}") from exc
        else:
            if stat.S_ISDIR(mode):
                raise ToolError(f"{shown!r} is a directory; give the path of a file inside it")
            if not stat.S_ISREG(mode):
                raise ToolError(f"{shown!r} is not a regular file and cannot be written")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(real, flags, 0o666)
        except OSError as exc:
            raise ToolError(f"cannot write {shown!r}: {exc.strerror}") from exc
        with os.fdopen(fd, "wb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ToolError(f"{shown!r} is not a regular file and cannot be written")
            file.write(data)

    async def append_to_file(
        self, path: str, text: str, scope: frozenset[str] | None = None
    ) -> str:
        """Add ``text`` at the end of a file, keeping what it holds (a new file if there is none);
        a definition appended to a file that ends in code is set apart by a blank line (two in
        Python, as its style asks). With ``scope``, the task's words, a Python definition the
        file has that ``text`` would replace, and the task is not about, is kept
        (:mod:`blitz.backends.block_scope`)."""
        return await asyncio.to_thread(self._append_to_file, path, text, scope)

    def _append_to_file(self, path: str, text: str, scope: frozenset[str] | None) -> str:
        if not text.strip():
            raise ToolError("text is empty; give the code to add at the end of the file")
        real = self.resolve(path)
        shown = self._shown(real)
        before = previous_bytes(real, self.limits.write_max_bytes)
        if before is None and real.exists():
            raise ToolError(
                f"{shown!r} cannot be appended to (not a regular file, or over"
                f" {self.limits.write_max_bytes} bytes); use run_command"
            )
        if before is not None and b"\x00" in before[:BINARY_SNIFF]:
            raise ToolError(f"{shown!r} is a binary file; append_to_file adds to text files only")
        old = (before or b"").decode("utf-8", "surrogateescape")
        kept: list[str] = []
        if scope is not None and before is not None:
            text, kept = kept_out_of_scope(shown, old, text, scope, appended=True)
        if kept and not text.strip():
            return f"nothing appended to {shown}" + kept_note(kept)
        if said := held(shown, old, text):
            return said + (kept_note(kept) if kept else "")
        joined = join(shown, old, text)
        note = self.guard.check(shown, None if before is None else old, joined.content)
        note += kept_note(kept) if kept else ""
        self._write_bytes(real, shown, joined.content.encode("utf-8", "surrogateescape"))
        if before is None:
            return f"created {shown} with {joined.added} line(s){joined.note}{note}"
        total = joined.content.count("\n")
        return (
            f"appended {joined.added} line(s) to {shown}; it now has {total} lines"
            f"{joined.note}{note}"
        )

    async def edit_file(self, path: str, old: str, new: str) -> str:
        """Replace the one occurrence of ``old`` in a file with ``new``; a ToolError quoting the
        closest text when ``old`` is not found, or saying where it is when it is found twice."""
        return await asyncio.to_thread(self._edit_file, path, old, new)

    def _edit_file(self, path: str, old: str, new: str) -> str:
        if not old:
            raise ToolError(
                "old must not be empty; to create a file or replace all of it use write_file"
            )
        real = self.resolve(path)
        shown = self._shown(real)
        with open_regular(real, shown) as file:
            data = file.read(self.limits.write_max_bytes + 1)
        if len(data) > self.limits.write_max_bytes:
            raise ToolError(
                f"{shown!r} is over {self.limits.write_max_bytes} bytes, too large to edit;"
                " change it with a command (run_command)"
            )
        if b"\x00" in data[:BINARY_SNIFF]:
            raise ToolError(f"{shown!r} is a binary file; edit_file changes text files only")
        # surrogateescape keeps bytes that are not UTF-8 exactly as they were.
        text = data.decode("utf-8", "surrogateescape")
        starts = occurrences(text, old)
        if not starts:
            raise ToolError(not_found(shown, text, old))
        if len(starts) > 1:
            lines = sorted({text.count("\n", 0, start) + 1 for start in starts})
            where = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
            count = f"{len(starts)}+" if len(starts) >= MAX_OCCURRENCES else str(len(starts))
            raise ToolError(
                f"old text matches {count} times in {shown!r} (at lines {where}); include more"
                " of the surrounding lines in old so that it matches exactly once"
            )
        start = starts[0]
        edited = text[:start] + new + text[start + len(old) :]
        note = self.guard.check(shown, text, edited)
        self._write_bytes(real, shown, edited.encode("utf-8", "surrogateescape"))
        line = text.count("\n", 0, start) + 1
        removed, added = old.count("\n") + 1, new.count("\n") + 1
        return (
            f"edited {shown}: replaced {removed} line(s) at line {line} with {added} line(s)" + note
        )

    # -- commands ------------------------------------------------------------------------------

    async def run_command(self, command: str, timeout: float | None = None) -> str:
        """Run ``command`` with ``/bin/sh -c`` in the worktree, without secrets in its
        environment; the exit code (or the timeout) and the tail of its output."""
        if not command.strip():
            raise ToolError("command is empty; give a shell command to run")
        ceiling = self.limits.command_timeout
        seconds = ceiling if timeout is None else min(timeout, ceiling)
        if not seconds > 0:  # also refuses NaN
            raise ToolError("timeout must be a positive number of seconds")
        done = await self.execute(command, seconds)
        output = done.tail(self.limits.output_cap) or "(no output)"
        if done.timed_out:
            return (
                f"timed out after {seconds:g}s (the command and its children were stopped)\n"
                f"{output}"
            )
        code = done.exit_code if done.exit_code is not None else -1
        status = f"exit code {code}" + (f" (killed by signal {-code})" if code < 0 else "")
        return f"{status}\n{output}"

    async def execute(self, command: str, seconds: float) -> process.Completed:
        """Run ``command`` as :meth:`run_command` does, and its outcome as it is: in the
        worktree's own environment (its ``.venv``, its ``node_modules``), as the gates are."""
        path = {"CI": "true", "PATH": os.environ.get("PATH", os.defpath)}
        env = envsetup.worktree_env(self.root, path if self.jail.confined else self.env)
        return await self.jail.run(command, timeout=seconds, env=env, cap=self.limits.output_cap)
