"""JSON as models write it in text, read leniently and within bounds.

A model's message may hold JSON among prose: :func:`balanced_end` finds where a bracketed value
ends (strings skipped), :func:`parse` reads it, accepting what models get wrong that still has
one meaning: a chat template's doubled braces, Python literals, and quotes left unescaped inside
the last string of an object (a file's code written raw into ``"content"``). Scanning is bounded
by a :class:`Budget` of characters, so hostile text costs bounded work.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from typing import Any

SCAN_BUDGET = 4_000_000
"""Characters the scanner may look at and parse for one text (a model's message is far
shorter): bounded work on hostile input, where bracket after bracket fails to parse."""

_SPECIAL = re.compile(r"[{}\[\]\"'\\]")
_DECODER = json.JSONDecoder(strict=False)  # models put raw newlines in strings (file contents)


class Budget:
    """The characters one text's scan may still look at."""

    def __init__(self, chars: int) -> None:
        self.left = chars

    def spend(self, chars: int) -> bool:
        """Take ``chars`` from the budget; False once it is spent."""
        self.left -= chars
        return self.left >= 0


def balanced_end(text: str, start: int, end: int, budget: Budget) -> tuple[int, bool]:
    """Where the bracketed value opening at ``start`` ends (exclusive), and whether it closes
    before ``end``; strings in double or single quotes are skipped."""
    depth = 0
    quote: str | None = None
    position = start
    for match in _SPECIAL.finditer(text, start, end):
        char, position = match.group(), match.start()
        if not budget.spend(1):
            return end, False
        if quote is not None:
            if char == quote and not _escaped(text, position):
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return position + 1, True
    return end, False


def _escaped(text: str, position: int) -> bool:
    backslashes = 0
    while position - backslashes > 0 and text[position - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def parse(candidate: str) -> Any:
    """The JSON value ``candidate`` holds, read leniently: the doubled braces of a chat template
    (``{{...}}``), Python literals (single quotes, True) and bare quotes inside the last string
    value are accepted too; a ValueError saying what is wrong when none of these readings
    works."""
    candidate = candidate.strip()
    readings = [candidate]
    if candidate.startswith("{{") and candidate.endswith("}}"):
        readings.append(candidate[1:-1])
    if "{{" in candidate or "}}" in candidate:
        readings.append(candidate.replace("{{", "{").replace("}}", "}"))
    first: ValueError | None = None
    for reading in readings:
        try:
            return _DECODER.decode(reading)
        except ValueError as exc:
            first = first or exc
        except RecursionError:  # nested deeper than Python's stack: no call looks like that
            first = first or ValueError("the JSON is nested too deeply")
    try:
        value = ast.literal_eval(candidate)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, dict | list):
        return value
    if (repaired := _last_string_escaped(candidate)) is not None:
        return repaired
    if (repaired := _strings_escaped(candidate)) is not None:
        return repaired
    assert first is not None
    raise ValueError(str(first)) from None


_VALUE_START = re.compile(r'"[A-Za-z_]\w*"\s*:\s*"')
_LAST_QUOTE = re.compile(r'"(?:\s*[}\]])+\s*$')
_KEY_BOUNDARY = re.compile(r'"\s*,\s*"[A-Za-z_]\w*"\s*:')
_BARE_QUOTE = re.compile(r'(?<!\\)"')


def _last_string_escaped(candidate: str) -> Any:
    """``candidate`` read with the quotes inside its last string value escaped, or None.

    Small models write a file's code raw into a call's last argument, a docstring's triple
    quotes and all: that string runs from its key to the quote before the closing brackets, so
    its quotes can only be the code's. The first value start (``"key": "``) from which the
    rest holds no other key and reads as JSON once its quotes are escaped is taken; any other
    string with a bare quote leaves the candidate unreadable."""
    end = _LAST_QUOTE.search(candidate)
    if end is None:
        return None
    for start in _VALUE_START.finditer(candidate, 0, end.start()):
        value = candidate[start.end() : end.start()]
        if _KEY_BOUNDARY.search(value) or '"' not in value:
            continue
        escaped = _BARE_QUOTE.sub(r'\\"', value)
        try:
            return _DECODER.decode(candidate[: start.end()] + escaped + candidate[end.start() :])
        except (ValueError, RecursionError):
            continue
    return None


_VALUE_END = re.compile(r'^(.*)"(\s*,\s*(?:"[A-Za-z_]\w*"\s*:\s*\{\s*)?)$', re.DOTALL)
"""A string value up to the next key: its text, then its closing quote, a comma and maybe the key
of an object the next key is in (``edit_file", "arguments": {``)."""


def _strings_escaped(candidate: str) -> Any:
    """``candidate`` read with the quotes inside every string value escaped, each value running
    from its key to the last quote before the next key, or None.

    Qwen2.5-Coder-1.5B wrote an ``edit_file`` call with a function, docstring and all, raw in
    both ``old`` and ``new``, three times alike after being told to escape its quotes. A value
    read wrongly so (code holding ``"key": "`` itself) fails as it would have: as JSON, or as the
    tool's arguments (an unknown one; an ``old`` the file does not hold)."""
    end = _LAST_QUOTE.search(candidate)
    if end is None:
        return None
    starts = list(_VALUE_START.finditer(candidate, 0, end.start()))
    if len(starts) < 2:
        return None
    pieces = [candidate[: starts[0].end()]]
    for at, start in enumerate(starts):
        last = at + 1 == len(starts)
        stop = end.start() if last else starts[at + 1].start()
        segment = candidate[start.end() : stop]
        if last:
            value, tail = segment, ""
        elif (split := _VALUE_END.match(segment)) is not None:
            value, tail = split.group(1), '"' + split.group(2)
        else:
            return None
        pieces.append(_BARE_QUOTE.sub(r'\\"', value) + tail)
        if not last:
            pieces.append(candidate[starts[at + 1].start() : starts[at + 1].end()])
    pieces.append(candidate[end.start() :])
    try:
        return _DECODER.decode("".join(pieces))
    except (ValueError, RecursionError):
        return None


def objects(value: Any) -> list[Mapping[str, Any]] | None:
    """The objects of a call or a list of calls; None for any other value."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return value
    return None


def blank(text: str, start: int, end: int) -> str:
    """``text`` with ``start:end`` blanked out, keeping every position where it was."""
    return text[:start] + " " * (end - start) + text[end:]
