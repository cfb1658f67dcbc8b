"""An ``edit_file`` whose old text is not where the call says, made where it is meant.

Qwen2.5-Coder-1.5B, shown the failing assert of its draft's test (``slugify("This is a test!123")
== "this-is-a-test123"``), meant to mend it and called ``edit_file`` on ``textutil.py`` (the
module, not its test) with the assert written in single quotes (the file has double); told the
text was not found, it went on to rewrite ``slugify`` instead (bench run U). So when the old text
is not found, it is looked for once more: in the named file with its quotes either way (``'`` for
``"``), then in the task's other files, exactly or so. Found in one place only, the edit is made
there and the model is told where; anywhere else, or nowhere, the call fails as before.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable

from blitz.backends.confine import ToolError
from blitz.backends.files import open_regular
from blitz.backends.tools import AgentTools

NOT_FOUND = "old text not found"
"""How the tools' error for old text not in a file begins."""

MOVED = "the old text is not in {named} but in {path}: "
"""The start of the result of an edit made in another file than the one named."""

QUOTED = " (the old text's quotes as the file has them)"
"""The end of the result of an edit whose old text matched with its quotes the other way."""

_READ_MAX = 1_000_000
"""The most bytes of a file read to look for the old text."""


async def edit_where_meant(
    tools: AgentTools, path: str, old: str, new: str, files: Iterable[str]
) -> tuple[str, str]:
    """``edit_file(path, old, new)``, or, when ``old`` is not found there, the same edit where
    it is found (see the module; ``files``: the task's other files to look in): the result, and
    the path edited. The tools' ToolError when it is found nowhere, or in more than one place."""
    try:
        return await tools.edit_file(path, old, new), path
    except ToolError as exc:
        if not str(exc).startswith(NOT_FOUND):
            raise
        found = await asyncio.to_thread(_meant, tools, path, old, files)
        if found is None:
            raise
    where, exact = found
    result = await tools.edit_file(where, exact, new)
    if where != path:
        result = MOVED.format(named=path, path=where) + result
    return result + (QUOTED if exact != old else ""), where


def _meant(tools: AgentTools, path: str, old: str, files: Iterable[str]) -> tuple[str, str] | None:
    """The one file and the text in it that ``old`` means: ``path``'s with its quotes either
    way, else one of ``files``'s, exactly or so; None when none, or more than one."""
    mine = _text(tools, path)
    if mine is not None and (same := _one_match(mine, old)) is not None:
        return path, same
    found = []
    for other in dict.fromkeys(files):
        if other == path or (text := _text(tools, other)) is None:
            continue
        exact = text.count(old)
        if exact > 1:
            return None
        match = old if exact == 1 else _one_match(text, old)
        if match is not None:
            found.append((other, match))
    return found[0] if len(found) == 1 else None


def _one_match(text: str, old: str) -> str | None:
    """The text of the one span of ``text`` that is ``old`` with any quote either way (``'``
    or ``"``), or None (none, or more than one)."""
    if "'" not in old and '"' not in old:
        return None
    pattern = "".join("['\"]" if char in "'\"" else re.escape(char) for char in old)
    spans = [m.group(0) for m, _ in zip(re.finditer(pattern, text), range(2), strict=False)]
    return spans[0] if len(spans) == 1 else None


def _text(tools: AgentTools, path: str) -> str | None:
    """The file's text, or None (outside the worktree, missing, not text, too long)."""
    try:
        with open_regular(tools.resolve(path), path) as file:
            data = file.read(_READ_MAX + 1)
        text = data.decode("utf-8")
    except (ToolError, OSError, UnicodeDecodeError):
        return None
    return text if len(data) <= _READ_MAX else None
