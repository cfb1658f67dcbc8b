"""The embedded agent's stuck detector: an agent going round in circles stops early."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

GROWING = {"append_to_file": "text"}
"""Tools whose call, made again with that argument grown (the last one's text and more), adds
again what the last one added: a circle too (Qwen2.5-Coder-1.5B appended ``test_slugify`` with
one more assert each turn, until its time ran out, each result new)."""


class StuckDetector:
    """Notices an agent going round in circles: the same tool call with the same result,
    ``repeats`` times in a row; or an append (:data:`GROWING`) made again with the same
    arguments and its text grown, whatever the result (``grew`` says which it was)."""

    def __init__(self, repeats: int = 3) -> None:
        if repeats < 1:
            raise ValueError("repeats must be at least 1")
        self.repeats = repeats
        self.grew = False
        self._last: bytes | None = None
        self._call: tuple[str, dict[str, Any]] | None = None
        self._streak = 0

    def record(self, tool: str, args: Mapping[str, Any], result: str) -> bool:
        """Record one call; True when this exact call and result has now been seen ``repeats``
        times in a row, or the streak of grown appends is that long (any other call in between
        starts the count again)."""
        canonical = json.dumps([tool, dict(args), result], sort_keys=True, default=str)
        key = hashlib.sha256(canonical.encode()).digest()
        grew = self._grown(tool, args)
        if key == self._last or grew:
            self._streak += 1
            self.grew = grew
        else:
            self._streak, self.grew = 1, False
        self._last, self._call = key, (tool, dict(args))
        return self._streak >= self.repeats

    def _grown(self, tool: str, args: Mapping[str, Any]) -> bool:
        """Whether this call is the last one again with its :data:`GROWING` argument grown."""
        name = GROWING.get(tool)
        if name is None or self._call is None or self._call[0] != tool:
            return False
        last = self._call[1]
        if {k: v for k, v in last.items() if k != name} != {
            k: v for k, v in args.items() if k != name
        }:
            return False
        before, after = str(last.get(name, "")).rstrip(), str(args.get(name, "")).rstrip()
        return bool(before) and len(after) > len(before) and after.startswith(before)

    def reset(self) -> None:
        self._last, self._call, self._streak, self.grew = None, None, 0, False
