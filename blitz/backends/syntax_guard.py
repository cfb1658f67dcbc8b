"""Writes that would leave a Python file that does not compile are refused, as SWE-agent's and
aider's edit tools lint theirs: the model is told the ``SyntaxError`` and the file stays as it was
(Qwen2.5-Coder-1.5B's ``edit_file`` turned ``def slugify(text):`` into ``def slugify(text.lower()
...):``, and its later edits could not find their way back to a file that compiled).

Only a file that compiled before, or a new one, is guarded: a model may mend a broken file a step
at a time. The check is the interpreter blitz runs on; code meant for a newer Python (a 3.12
f-string, ``type`` statements) may not compile on it, so the same write made again after a
refusal is carried out, with the error said.
"""

from __future__ import annotations

import hashlib
import sys

from blitz.backends.confine import ToolError

_VERSION = f"Python {sys.version_info.major}.{sys.version_info.minor}"
_SHOWN_LINE = 200
"""Characters of the offending line shown."""


def syntax_error(path: str, source: str) -> SyntaxError | None:
    """The error compiling Python ``source`` raises (it is not run); None when it compiles, or
    ``path`` is not a Python file."""
    if not path.endswith((".py", ".pyi")):
        return None
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return exc
    except (ValueError, RecursionError, MemoryError) as exc:  # a NUL byte; nesting too deep
        return SyntaxError(str(exc) or type(exc).__name__)
    return None


def described(error: SyntaxError) -> str:
    """``line 3: invalid syntax`` and the line with a caret under where it went wrong."""
    where = f"line {error.lineno}: " if error.lineno else ""
    said = f"{type(error).__name__} at {where}{error.msg}"
    line = (error.text or "").rstrip("\r\n")
    if not line.strip():
        return said
    indent = len(line) - len(line.lstrip())
    shown = line.strip()[:_SHOWN_LINE]
    caret = ""
    if error.offset and 0 < error.offset - indent <= len(shown):
        caret = "\n    " + " " * (error.offset - 1 - indent) + "^"
    return f"{said}\n    {shown}{caret}"


class SyntaxGuard:
    """Refuses the writes of one agent that would break a Python file, once each."""

    def __init__(self) -> None:
        self._refused: set[tuple[str, str]] = set()

    def check(self, shown: str, before: str | None, after: str) -> str:
        """Raise :class:`ToolError` when ``after`` would be the content of file ``shown`` and it
        does not compile while ``before`` (None: no file yet) did; "" when the write may go on,
        or a note to add to its result when it is made again after a refusal."""
        error = syntax_error(shown, after)
        if error is None:
            return ""
        if before is not None and syntax_error(shown, before) is not None:
            return ""  # broken already: mended a step at a time
        key = (shown, hashlib.sha256(after.encode("utf-8", "surrogateescape")).hexdigest())
        if key in self._refused:
            return f"; note: {shown} does not compile with {_VERSION}: {described(error)}"
        self._refused.add(key)
        raise ToolError(
            f"refused: after this change {shown} would not be valid Python, so the file is"
            f" unchanged. Correct the code and make the change again.\n{described(error)}"
        )
