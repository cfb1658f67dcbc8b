"""Code a model wrote in its message for a file, in a fenced block named after that file, and how
the embedded agent puts it in place.

Small models asked to change a file often answer in prose with the file in a fenced block (aider
calls this the "whole" edit format): Qwen2.5-Coder-1.5B, shown a failing test, answered three times
"Here's the updated code:" and a ```` ```python ```` block starting ``# test_textutil.py``, and
was re-asked each time. A block is named after its file by:

- its first line, a comment holding only the path (``# a.py``, ``// src/b.ts``, ``<!-- c.html -->``,
  ``# file: a.py``); that line is not part of the code, and such a line after a blank one further
  down starts another file's code;
- its info string (```` ```python a.py ````);
- the line before it: the path alone (```` `a.py`: ````, ``**a.py**``, ``### a.py``), or a
  sentence ending with it in backticks ("Here is the updated `a.py`:").

A Python block that imports the module its name says it is, is not that module: it is named by
the other path the line before it gives in backticks, if any, and is no file's block otherwise.

A block is put in place only when what it holds says how (:func:`placement`): every top-level
definition the file has (the whole file, written over it; a file that does not exist yet is
written), or some definitions, not all of the file's (appended: a definition the file has is
replaced by the block's, the others are kept, and imports the file has are not added again; so a
block showing one function changed, or a test file's new test under its imports, changes only
that). A block with no definition, in a file that has some, is a part of the file shown for a
person to merge: it is not put in place, and the model is told to make the change with a tool.
Unclosed blocks (an answer cut off) are never put in place. A Python definition the file has,
which a block changes and the task is not about, is kept as the file has it
(:mod:`blitz.backends.block_scope`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic_ai.exceptions import ToolFailed

from blitz.backends.block_scope import kept_note, kept_out_of_scope
from blitz.backends.embedded_session import Session, describe_call
from blitz.backends.files import holds_lines, previous_bytes
from blitz.backends.source_edits import defined_names
from blitz.backends.tools import ToolError

PATH = r"[\w.-]+(?:/[\w.-]+)*\.[A-Za-z0-9]+"
"""A relative file path with an extension (``a.py``, ``src/b.test.ts``)."""

_FENCE = re.compile(
    r"^[ \t]*(`{3,})[ \t]*([^\n`]*)\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL
)
_HEADER = re.compile(
    rf"^[ \t]*(?:#|//|--|;|/\*|<!--)[ \t]*(?:file(?:name)?:[ \t]*)?({PATH})"
    r"[ \t]*(?:\*/|-->)?[ \t]*$",
    re.IGNORECASE,
)
_ALONE = re.compile(
    rf"^(?:#+[ \t]*)?[*_`]*(?:file(?:name)?:[ \t]*)?[*_`]*({PATH})[*_`]*[ \t]*:?[ \t]*[*_]*$",
    re.IGNORECASE,
)
_ENDING = re.compile(rf"`({PATH})`[*_]*[ \t]*:?[*_]*[ \t]*$")
_INFO_PATH = re.compile(rf"^{PATH}$")

Placement = Literal["write", "append"]


@dataclass(frozen=True, slots=True)
class FileBlock:
    """A fenced block of ``code`` named after the file at ``path``."""

    path: str
    code: str


def closed_blocks(text: str) -> str:
    """``text`` up to the end of its last closed fenced block ("" when it closed none): what
    of an answer stopped part way can be put in place."""
    end = 0
    for fence in _FENCE.finditer(text):
        end = fence.end()
    return text[:end]


def file_blocks(text: str) -> list[FileBlock]:
    """The fenced blocks of ``text`` named after their file, in order (see the module)."""
    found: list[FileBlock] = []
    for fence in _FENCE.finditer(text):
        info, code = fence.group(2).split(), fence.group(3)
        path = next((word for word in info if _INFO_PATH.match(word)), None)
        first, _, rest = code.partition("\n")
        parts: list[tuple[str | None, str]] = [(path, code)]
        if (header := _HEADER.match(first)) is not None:
            parts = _split(path or header.group(1), rest.lstrip("\n"))
        for path, code in parts:
            if path is None:
                path = _named_before(text[: fence.start()])
            if path is not None and _imports_itself(path, code):
                path = _mentioned_before(text[: fence.start()], besides=path)
            if path is not None and ".." not in path.split("/") and code.strip():
                found.append(FileBlock(path, code if code.endswith("\n") else code + "\n"))
    return found


def _split(path: str, code: str) -> list[tuple[str | None, str]]:
    """A block headed by ``path``'s comment, cut where a line after a blank one is another such
    comment alone (Qwen2.5-Coder-1.5B showed a rename's two files in one block, ``# shop.py``
    first, then a blank line, ``# report.py`` and that file's code: bench run Y)."""
    parts: list[tuple[str | None, str]] = []
    lines = code.split("\n")
    start = 0
    for at in range(1, len(lines)):
        header = _HEADER.match(lines[at])
        if header is None or lines[at - 1].strip() or header.group(1) == path:
            continue
        parts.append((path, "\n".join(lines[start:at]).rstrip("\n") + "\n"))
        path, start = header.group(1), at + 1
    parts.append((path, "\n".join(lines[start:])))
    return parts


def _imports_itself(path: str, code: str) -> bool:
    """Whether Python ``code`` imports the module ``path`` names: then it is not that module.
    (Qwen2.5-Coder-1.5B wrote "Here's the updated `test_textutil.py` file:" over a block headed
    ``# textutil.py`` that began ``from textutil import shout, slugify``.)"""
    if not path.endswith(".py"):
        return False
    stem = re.escape(path.rsplit("/", 1)[-1].removesuffix(".py"))
    itself = (
        rf"^[ \t]*(?:from[ \t]+(?:[\w.]*\.)?{stem}[ \t]+import\b|import[ \t]+(?:[\w.]*\.)?{stem}\b)"
    )
    return re.search(itself, code, re.MULTILINE) is not None


def _mentioned_before(text: str, *, besides: str) -> str | None:
    """The last path other than ``besides`` that the last non-blank line of ``text`` names in
    backticks, or None."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = re.findall(rf"`({PATH})`", lines[-1]) if lines else []
    others = [path for path in named if path != besides]
    return others[-1] if others else None


def _named_before(text: str) -> str | None:
    """The path the last non-blank line of ``text`` names, alone or at its end in backticks."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    named = _ALONE.match(last) or _ENDING.search(last)
    return named.group(1) if named is not None else None


def placement(old: str | None, code: str) -> Placement | None:
    """How ``code`` goes into a file holding ``old`` (None: no such file): written over it when
    it has every top-level definition the file has, or the file is new or blank; appended when it
    has some definitions, not all the file's (those the file has are replaced by the append);
    None when it has none, in a file that has some: a part of the file."""
    if old is None or not old.strip():
        return "write"
    had, has = set(defined_names(old)), set(defined_names(code))
    if had <= has:
        return "write"
    return "append" if has else None


def _holds(old: str, code: str, how: Placement | None) -> bool:
    """Whether a file holding ``old`` has ``code`` already: as its whole content, or, for new
    code, as lines of it."""
    if how == "append":
        return holds_lines(old, code) > 0
    return old == code or old.rstrip("\n") == code.rstrip("\n")


PLACED = (
    "The code in your answer was put in place for you, as these tool calls:\n{results}\n"
    "Next time make changes with tool calls yourself. Check the change if it needs it"
    " (run_command), then call finish when the task is done."
)
"""What a model is told after the code of its answer was put in place."""

HELD = (
    "The code in your answer is what {paths} already holds: nothing changed. If the task is"
    " done, call finish; if not, make the next change with a tool call."
)
"""What a model is told whose answer shows code the files hold already (a re-ask like any
other: not a call, so a model that keeps answering so is re-asked a bounded number of times)."""

NOT_PLACED = "- {path}: not put in place ({why}); change it with a tool call"

NONE_PLACED = (
    "The code in your answer could not be put in place:\n{results}\n"
    "Make the change yourself with a tool call (append_to_file to add code to a file, edit_file"
    " to change a part of one, write_file for a new file), then call finish."
)
"""What a model is told none of whose code could be put in place, and why."""


async def put_in_place(text: str, session: Session) -> str | None:
    """Put the file blocks of ``text`` in place through the session's tools, as calls the model
    made: what to tell the model, or None when ``text`` has no file block. When none was put in
    place the model is told why, block by block (a part of a file, a path outside the worktree,
    a tool's error such as a size limit), not only that code in a message changes no file. A
    block the file holds already is no call: a model that shows the same answer again has made
    no change, and is told so (:data:`HELD`) when that is all it did
    (Qwen2.5-Coder-1.5B answered with the same two files four times, each put in place as
    "nothing changed" and counted as a call, the run going round)."""
    results: list[str] = []
    placed, held = 0, []
    scope = session.scope()  # read before the first call clears what a finish was refused with
    for block in file_blocks(text):
        try:
            real = session.tools.resolve(block.path)
        except ToolError as exc:
            results.append(NOT_PLACED.format(path=block.path, why=exc))
            continue
        before = previous_bytes(real, session.tools.limits.write_max_bytes)
        old = None if before is None else before.decode("utf-8", "replace")
        how = placement(old, block.code)
        if old is not None and _holds(old, block.code, how):
            held.append(block.path)  # an answer shown again: no change, and no call
            continue
        if how is None:
            why = "it has no definition and leaves out the code the file has: a part of the file"
            results.append(NOT_PLACED.format(path=block.path, why=why))
            continue
        code, kept = block.code, list[str]()
        if how == "write":
            if old is not None:
                code, kept = kept_out_of_scope(block.path, old, code, scope, appended=False)
            if kept and old is not None and _holds(old, code, how):
                results.append(f"- {block.path}: nothing changed" + kept_note(kept))
                continue
            name, args = "write_file", {"path": block.path, "content": code}
            work = session.tools.write_file(block.path, code)
        else:  # kept out by the tool
            name, args = "append_to_file", {"path": block.path, "text": block.code}
            work = session.tools.append_to_file(block.path, block.code, scope)
        said = describe_call(name, args)
        await session.say(f"from the answer's text: {said}")
        session.calls += 1
        try:
            result = await session.call(name, args, work)
        except ToolFailed as exc:
            results.append(f"- {said}: error: {exc.message}")
            continue
        placed += 1
        results.append(f"- {said}: {result}" + (kept_note(kept) if kept else ""))
    if placed:
        return PLACED.format(results="\n".join(results))
    if results:  # why nothing was put in place, each block's own reason or error
        results += [f"- {path}: already holds this code; nothing changed" for path in held]
        told = NONE_PLACED.format(results="\n".join(results))
        return told + (f"\n\n{session.refused}" if session.refused else "")
    return HELD.format(paths=", ".join(dict.fromkeys(held))) if held else None
