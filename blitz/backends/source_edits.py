"""What an edit does to code: the definitions a rewrite drops (told, with their code to put
back, or taken as a rename), and how an append joins a Python file (the blank lines between,
indentation the code had as a whole, definitions and imports the file has already)."""

from __future__ import annotations

import ast
import io
import re
import textwrap
from dataclasses import dataclass

from blitz.backends.files import BINARY_SNIFF, clip_line, holds_lines, split_lines

DROPPED_SHOWN = 3
"""Definitions a rewrite dropped that the write's result names."""

_DEFINITION = re.compile(
    r"(?:export\s+|pub(?:\([\w ]+\))?\s+|async\s+)*"
    r"(?:def|class|function|func|fn|interface|struct|enum|trait|impl|module|type)\s+(\w+)"
)
"""A top-level line that starts a definition (Python, JavaScript/TypeScript, Go, Rust...), and
the name it defines."""


def defined_names(text: str) -> list[str]:
    """The names the top-level definition lines of ``text`` define, in order."""
    return [m.group(1) for line in text.splitlines() if (m := _DEFINITION.match(line))]


def dropped(old: bytes | None, new: bytes) -> str:
    """What a ``write_file`` result adds when the new content drops top-level definitions the
    file had: a small model told to add a function rewrites the file with that function alone
    (it is given their code back, to append), and one told to rename a function renames it
    here and nowhere else (a new definition with a dropped one's body is a rename: it is told
    to change the other files). "" when none was dropped, or the file is new."""
    if old is None or b"\x00" in old[:BINARY_SNIFF]:
        return ""
    gone = _definitions(old, new)
    if not gone:
        return ""
    before, after = old.decode("utf-8", "replace"), new.decode("utf-8", "replace")
    came = _definitions(new, old)
    renamed = _renamed(before, gone, after, came)
    notes = []
    if renamed:
        pairs = ", ".join(f"`{clip_line(g)}` to `{clip_line(c)}`" for g, c in renamed.items())
        notes.append(
            f"; you renamed {pairs}: change every other file that uses the old name too (search"
            " for it)"
        )
    gone = [line for line in gone if line not in renamed]
    came = [line for line in came if line not in renamed.values()]
    if not gone:
        return notes[0]
    code = dropped_code(before, gone)
    back = (
        f"put them back by calling append_to_file with this text:\n```\n{code}\n```"
        if code
        else "put them back with append_to_file"
    )
    added = f", and has new ones: {_listed(came)}" if came else ""
    notes.append(
        f"; the file no longer has these definitions it had: {_listed(gone)}{added}. If you"
        f" meant to keep them, {back}"
    )
    return "".join(notes)


def _renamed(before: str, gone: list[str], after: str, came: list[str]) -> dict[str, str]:
    """Dropped definitions (first lines) -> the new ones with the same body: renames."""
    bodies = {_body(after, line): line for line in came}
    pairs = {}
    for line in gone:
        body = _body(before, line)
        if body and body in bodies:
            pairs[line] = bodies.pop(body)
    return pairs


def _body(text: str, first: str) -> str:
    """The body of the definition that starts with the line ``first`` in ``text``, its blank
    space dropped ("" for none)."""
    lines = text.splitlines()
    for at, line in enumerate(lines):
        if line.rstrip() == first:
            return "".join("".join(lines[at + 1 : _block_end(lines, at)]).split())
    return ""


DROPPED_CODE_CHARS = 3000
"""The most code of dropped definitions a write's result quotes back."""


def dropped_code(old: str, gone: list[str]) -> str:
    """The code of the top-level definitions ``gone`` (their first lines) in ``old``: each from
    its decorators to the next top-level line that is not a closing bracket; "" when it is
    longer than :data:`DROPPED_CODE_CHARS`."""
    lines = old.splitlines()
    wanted = set(gone)
    blocks: list[str] = []
    for at, line in enumerate(lines):
        if line.rstrip() not in wanted:
            continue
        start = at
        while start > 0 and lines[start - 1].startswith("@"):
            start -= 1
        blocks.append("\n".join(lines[start : _block_end(lines, at)]).rstrip())
    code = "\n\n\n".join(blocks)
    return code if len(code) <= DROPPED_CODE_CHARS else ""


def _block_end(lines: list[str], at: int) -> int:
    """Where the definition starting at line ``at`` ends: the next top-level line that is not
    a closing bracket."""
    end = at + 1
    while end < len(lines) and not _top_level(lines[end]):
        end += 1
    return end


def _top_level(line: str) -> bool:
    """Whether a line starts something new at the top level of a file."""
    return bool(line) and not line[0].isspace() and line[0] not in "})]"


def _definitions(text: bytes, other: bytes) -> list[str]:
    """The top-level definition lines of ``text`` that ``other`` does not have."""
    kept = set(split_lines(other))
    return [
        line.rstrip()
        for line in split_lines(text)
        if _DEFINITION.match(line) and line not in kept and line.rstrip() not in kept
    ]


def _listed(lines: list[str]) -> str:
    shown = ", ".join(f"`{clip_line(line)}`" for line in lines[:DROPPED_SHOWN])
    more = f" and {len(lines) - DROPPED_SHOWN} more" if len(lines) > DROPPED_SHOWN else ""
    return shown + more


def separator(old: str, text: str, *, python: bool) -> str:
    """What goes between a file's ``old`` content and ``text`` appended to it: a line break if
    the file does not end in one, and a blank line (two in Python) before a definition that
    would otherwise touch the code above it; in Python, two before top-level code that would
    touch the block of a definition (PEP 8)."""
    if not old:
        return ""
    joint = "" if old.endswith("\n") else "\n"
    if old.endswith("\n\n") or not old.strip() or text.startswith("\n"):
        return joint  # the file ends in a blank line already, or the text starts with one
    first = text.split("\n", 1)[0]
    if _DEFINITION.match(first) or first.startswith("@"):
        return joint + ("\n\n" if python else "\n")
    last = old.rstrip("\n").rsplit("\n", 1)[-1]
    if python and first.strip() and not first[0].isspace() and last[:1].isspace():
        return joint + "\n\n"
    return joint


UNINDENTED = (
    " (the code's lines were all indented: written at the top level, without that indentation)"
)
"""What a write says when it took away the indentation its Python code had as a whole."""


def dedented(path: str, text: str, before: str = "") -> str | None:
    """``text`` without the indentation all its lines share, when ``path`` is Python and that
    way it compiles after ``before`` (small models write a file's code indented inside a JSON
    string: Python refuses it, or nests it in the function the file ends with); None when the
    text is fine as it is, or no better. After a class, indented code that compiles is taken
    as meant (a method added to it)."""
    if not path.endswith(".py"):
        return None
    body = text.strip("\n")
    flat = textwrap.dedent(body)
    if flat == body:
        return None
    tops = [line for line in before.splitlines() if _top_level(line)]
    after_class = bool(tops) and tops[-1].startswith("class ")
    if after_class and _compiles(before + text, path):
        return None
    fixed = flat + "\n" if text.endswith("\n") else flat
    return fixed if _compiles(before + fixed, path) else None


def _compiles(source: str, path: str) -> bool:
    """Whether Python source compiles (it is not run)."""
    try:
        compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


_PY_DEFINITION = re.compile(r"(?:async\s+)?(?:def|class)\s+(\w+)")


def _py_definitions(lines: list[str]) -> dict[str, int]:
    """Top-level Python definitions by name -> the index of their first line (``@overload``
    ones passed over: they are meant to come several times)."""
    found: dict[str, int] = {}
    for at, line in enumerate(lines):
        if (m := _PY_DEFINITION.match(line)) and "overload" not in (lines[at - 1] if at else ""):
            found.setdefault(m.group(1), at)
    return found


def without_redefined(old: str, text: str) -> tuple[str, list[str]]:
    """``old`` without the top-level Python definitions that ``text`` defines again, and what
    was taken out ("name (lines 8-10)"): appended after them, the new ones would replace them
    when the file runs and leave them behind as dead code (a small model appended a longer
    ``test_slugify`` after each of its own, turn after turn, until its time ran out)."""
    lines = old.splitlines(keepends=True)
    had = _py_definitions(lines)
    again = sorted(had.keys() & _py_definitions(text.splitlines()).keys(), key=had.__getitem__)
    taken: list[str] = []
    for name in reversed(again):  # from the bottom up: the lines above keep their numbers
        start = at = had[name]
        while start > 0 and lines[start - 1].startswith("@"):
            start -= 1
        end = _block_end([line.rstrip("\r\n") for line in lines], at)
        taken.insert(0, f"{name} (lines {start + 1}-{end})")
        del lines[start:end]
    return ("".join(lines) if taken else old), taken


def without_held_imports(old: str, text: str) -> str:
    """``text`` without its top-level import statements whose every name ``old`` imports
    already (a small model appended ``from textutil import shout`` with its test each turn, the
    imports piling up): one line or several (``from x import (a, b)``), in any order; an import
    that adds a name stays whole. "" when nothing else is left."""
    held = _imported(old)
    lines = io.StringIO(text, newline="").readlines()  # broken where ast counts lines
    spans = [span for span, names in _imports(text) if names <= held]
    if not spans:
        return text
    drop = {at for start, end in spans for at in range(start, end)}
    kept = "".join(line for at, line in enumerate(lines) if at not in drop).lstrip("\n")
    return kept if kept.strip() else ""


_IMPORT = re.compile(r"^(?:import|from)\s+[\w.]+(?:\s+import\s+[^(\\]+)?\s*$")
"""A one-line import (the source does not parse as a whole: each such line is read alone)."""

Name = tuple[str, str, str | None]
"""What an import binds: its module ("" for ``import x``), the name, and its alias."""


def _imported(source: str) -> set[Name]:
    return {name for _, names in _imports(source) for name in names}


def _imports(source: str) -> list[tuple[tuple[int, int], frozenset[Name]]]:
    """The top-level import statements of Python ``source``: the span of lines each is alone on
    (0-based, end excluded) and the names it binds. Source that does not parse is read line by
    line, its one-line imports only."""
    body = _parsed(source)
    if body is None:
        return [
            ((at, at + 1), _bound(statements[0]))
            for at, line in enumerate(io.StringIO(source, newline="").readlines())
            if _IMPORT.match(line.rstrip("\r\n"))
            and (statements := _parsed(line.strip()))
            and isinstance(statements[0], ast.Import | ast.ImportFrom)
        ]
    found = []
    for at, node in enumerate(body):
        shared = (at and body[at - 1].end_lineno == node.lineno) or (
            at + 1 < len(body) and body[at + 1].lineno == node.end_lineno
        )
        if isinstance(node, ast.Import | ast.ImportFrom) and not shared:
            found.append(((node.lineno - 1, node.end_lineno or node.lineno), _bound(node)))
    return found


def _parsed(source: str) -> list[ast.stmt] | None:
    try:
        return ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _bound(node: ast.Import | ast.ImportFrom) -> frozenset[Name]:
    if isinstance(node, ast.Import):
        return frozenset(("", alias.name, alias.asname) for alias in node.names)
    module = "." * node.level + (node.module or "")
    return frozenset((module, alias.name, alias.asname) for alias in node.names)


def hoisted(old: str, text: str) -> tuple[str, str, int]:
    """The imports ``text`` starts with, moved into ``old``'s imports at the top of the file
    (after the last of them; with none, after its docstring and ``__future__`` imports), as PEP 8
    has them and ruff checks (E402): ``old`` and ``text`` so changed, and the lines moved. Left
    as they are when either does not parse, ``text`` holds no code after its imports, or the
    file has code above its imports (a guarded import, a path set up first)."""
    body, lines = _parsed(old), io.StringIO(text, newline="").readlines()
    statements = _parsed(text)
    if body is None or not statements:
        return old, text, 0
    leading = 0
    while leading < len(statements) and isinstance(
        statements[leading], ast.Import | ast.ImportFrom
    ):
        leading += 1
    if (
        leading == 0
        or leading == len(statements)
        or any(
            isinstance(node, ast.ImportFrom) and node.module == "__future__"
            for node in statements[:leading]
        )
    ):
        return old, text, 0
    start = statements[0].lineno - 1
    cut = statements[leading - 1].end_lineno or statements[leading - 1].lineno
    if any(line.strip() for line in lines[:start]):
        return old, text, 0  # a comment above the imports: it goes with them, as it is
    moved = [line for line in lines[start:cut] if line.strip()]
    rest = "".join(lines[cut:]).lstrip("\n")
    at = _import_end(body)
    if at is None:
        return old, text, 0
    head = io.StringIO(old, newline="").readlines()
    above, below = "".join(head[:at]), "".join(head[at:]).lstrip("\n")
    block = "".join(line if line.endswith("\n") else line + "\n" for line in moved)
    if above and not above.endswith("\n"):
        above += "\n"
    gap_above = "\n" if above.strip() and not _ends_in_import(body, at) else ""
    gap_below = "\n\n" if below.strip() else ""
    return above + gap_above + block + gap_below + below, rest, len(moved)


def _import_end(body: list[ast.stmt]) -> int | None:
    """The line (0-based) after the file's import header: its docstring, then its imports; None
    when code comes before an import (not a header to add to)."""
    end, seen_code = 0, False
    for at, node in enumerate(body):
        docstring = at == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if isinstance(node, ast.Import | ast.ImportFrom):
            if seen_code:
                return None
            end = node.end_lineno or node.lineno
        elif docstring:
            end = node.end_lineno or node.lineno
        else:
            seen_code = True
    return end


def _ends_in_import(body: list[ast.stmt], at: int) -> bool:
    """Whether the file's header, ending at line ``at``, ends with an import (the new ones go
    right under it) rather than a docstring (a blank line between)."""
    last = [n for n in body if (n.end_lineno or n.lineno) == at]
    return bool(last) and isinstance(last[0], ast.Import | ast.ImportFrom)


@dataclass(frozen=True, slots=True)
class Joined:
    """A file's content after an append, and what the append's result says of it."""

    content: str
    added: int
    """Lines appended."""
    note: str
    """Said after the result: the code's indentation taken away, definitions replaced."""


def held(shown: str, old: str, text: str) -> str:
    """What an append's result says when ``old`` has ``text`` already ("" when it has not):
    the same lines (in a Python file, but for imports it has: the imports of an append go to
    the top, :func:`hoisted`), or, in a Python file, nothing but imports it has."""
    line = holds_lines(old, text)
    if not line and shown.endswith(".py") and (rest := without_held_imports(old, text)):
        line = holds_lines(old, rest)
    if line:  # said plainly: a small model appended one function three times in a row
        return (
            f"{shown} already has this text (from line {line}); nothing appended (call finish"
            " if the task is done)"
        )
    if shown.endswith(".py") and old.strip() and not without_held_imports(old, text):
        return f"{shown} already has these imports; nothing appended"
    return ""


def join(shown: str, old: str, text: str) -> Joined:
    """``old`` with ``text`` appended: a line break and blank lines between as needed; in
    Python, the indentation the code has as a whole taken away when it then compiles, imports
    the file has dropped, and definitions the text makes again taken out of ``old`` (left
    behind, they would be dead code)."""
    python = shown.endswith(".py")
    flat = dedented(shown, text, old + separator(old, text, python=python))
    if flat is not None:
        text = flat
    note = UNINDENTED if flat is not None else ""
    moved = 0
    if python:
        text = without_held_imports(old, text) or text
        old, taken = without_redefined(old, text)
        if taken:
            note += f"; it replaces the same names' definitions, taken out: {', '.join(taken)}"
        old, text, moved = hoisted(old, text)
        if moved:
            note += f"; {moved} import line(s) of it went to the file's imports at the top"
    joined = old + separator(old, text, python=python) + text
    added = text.strip("\n").count("\n") + 1 + moved
    return Joined(joined if joined.endswith("\n") else joined + "\n", added, note)
