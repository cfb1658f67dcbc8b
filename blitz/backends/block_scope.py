"""What code an answer shows may change of a Python file: the definitions the task is about.

A small model that shows a whole file in its answer rewrites what it was not asked to touch.
Qwen2.5-Coder-1.5B, its ``test_slugify`` failing, answered with ``test_textutil.py`` whole: the
test fixed, and ``test_shout`` given slugify's cases with ``shout`` in their place
(``assert shout("Python 3.8") == "python-3-8"``), which broke a test that passed. So when code
from an answer's block is put in place (:mod:`blitz.backends.file_blocks`), a top-level definition
the file has, which the block changes and the task is not about, is kept as the file has it, and
the model is told.

A definition is the task's business when a name it defines or uses that is not its own local (a
function it calls, a constant it reads, an attribute) is a word of the task: its title and
instructions, the goal, recovery's advice, and what the last finish was sent back with (a test
the gates say fails may be mended). A rename's callers use the old name, so they may change; a
bug's function is named. Only Python files that parse before and after, and only code from an
answer's text, and an append's (a redefinition replaces the file's): the model's own
``write_file`` and ``edit_file`` calls are its own.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
from collections.abc import Iterable

_WORD = re.compile(r"[A-Za-z_]\w*")


def words(*texts: str) -> frozenset[str]:
    """The identifier-like words of ``texts``."""
    return frozenset(word for text in texts for word in _WORD.findall(text))


def _names(node: ast.AST) -> set[str]:
    """The names a definition defines, and those it uses that it does not bind itself."""
    bound: set[str] = set()
    used: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(child.name)
            used.add(child.name)
        elif isinstance(child, ast.arg):
            bound.add(child.arg)
        elif isinstance(child, ast.Name):
            (bound if isinstance(child.ctx, ast.Store | ast.Del) else used).add(child.id)
        elif isinstance(child, ast.Attribute):
            used.add(child.attr)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        bound.discard(node.name)
    return used - bound


def _definitions(source: str) -> dict[str, tuple[int, int, ast.stmt]] | None:
    """Top-level function and class definitions by name: their lines (0-based, decorators
    included, end excluded) and node; None when ``source`` does not parse."""
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found: dict[str, tuple[int, int, ast.stmt]] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            found[node.name] = (start, node.end_lineno or node.lineno, node)
    return found


def kept_out_of_scope(
    path: str, old: str, code: str, scope: Iterable[str], *, appended: bool
) -> tuple[str, list[str]]:
    """``code`` with each definition that ``old`` has differently, and that is not about a word
    of ``scope``, as ``old`` has it (``appended``: taken out of ``code``, the file keeping its
    own); and the names so kept. ``code`` as it is when either does not parse, or ``path`` is
    not a Python file."""
    if not path.endswith(".py"):
        return code, []
    given = code
    had, has = _definitions(old), _definitions(code)
    if has is None:  # code indented as a whole, as the append puts it at the top level
        code = textwrap.dedent(code)
        has = _definitions(code)
    if had is None or has is None:
        return given, []
    about = frozenset(scope)
    old_lines = io.StringIO(old, newline="").readlines()
    lines = io.StringIO(code, newline="").readlines()
    kept: list[str] = []
    for name, (start, end, node) in sorted(has.items(), key=lambda item: -item[1][0]):
        if name not in had:
            continue
        o_start, o_end, o_node = had[name]
        if ast.dump(o_node) == ast.dump(node):
            continue
        if (_names(node) | _names(o_node)) & about:
            continue
        lines[start:end] = [] if appended else _ended(old_lines[o_start:o_end])
        kept.insert(0, name)
    if not kept:
        return given, []
    rest = "".join(lines)
    return (rest.lstrip("\n") if appended else rest), kept


def _ended(lines: list[str]) -> list[str]:
    """``lines`` with a line break after the last."""
    if lines and not lines[-1].endswith("\n"):
        return [*lines[:-1], lines[-1] + "\n"]
    return lines


def kept_note(names: list[str]) -> str:
    """What a result adds for the definitions kept as the file had them."""
    shown = ", ".join(f"`{name}`" for name in names)
    return (
        f"; kept {shown} as the file has it (your code changed it, and the task is not"
        " about it: change it with edit_file if it must change)"
    )
