"""The embedded agent's stuck detector: an agent going round in circles stops early."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


class StuckDetector:
    """Notices an agent going round in circles: the same tool call with the same result,
    ``repeats`` times in a row."""

    def __init__(self, repeats: int = 3) -> None:
        if repeats < 1:
            raise ValueError("repeats must be at least 1")
        self.repeats = repeats
        self._last: bytes | None = None
        self._streak = 0

    def record(self, tool: str, args: Mapping[str, Any], result: str) -> bool:
        """Record one call; True when this exact call and result has now been seen ``repeats``
        times in a row (any different call in between starts the count again)."""
        canonical = json.dumps([tool, dict(args), result], sort_keys=True, default=str)
        key = hashlib.sha256(canonical.encode()).digest()
        if key == self._last:
            self._streak += 1
        else:
            self._last, self._streak = key, 1
        return self._streak >= self.repeats

    def reset(self) -> None:
        self._last, self._streak = None, 0
