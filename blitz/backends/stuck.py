"""The embedded agent's stuck detector: an agent going round in circles stops early."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

GROWING = {"append_to_file": "text", "edit_file": "new"}
"""Tools whose call, made again with that argument the same or grown (the last one's text and
more), adds again what the last one added: a circle too, whatever its result (Qwen2.5-Coder-1.5B
appended ``test_slugify`` with one more assert each turn, until its time ran out; later the same
test and its import, each result new as the file grew; in bench run X it replaced the same assert
with itself and one more assert each turn, fourteen turns, with ``edit_file``). Grown, it may be
a test made better once: a streak with a grown call in it needs one call more to be a circle (the
1.5B's attempt that wrote a test, then the same test with one more assert, was stopped as stuck
at two)."""

LONGEST_CIRCLE = 5
"""The most calls a circle of calls may have to be noticed: write a.py, write b.py, again and
again, each result the same as the round before (Qwen2.5-Coder-1.5B answered with the same two
files in turn until its time ran out; a one-call streak never reached two). Bench run T went
round four: write textutil.py, put back what that dropped, the same for the test file, until its
30 turns were spent."""


class StuckDetector:
    """Notices an agent going round in circles: the same tool call with the same result
    ``repeats`` times in a row; the same round of two to five calls (:data:`LONGEST_CIRCLE`)
    with the same results ``repeats`` times in a row; or an append (:data:`GROWING`) made again
    with the same arguments and its text grown, whatever the result. :meth:`reason` says which."""

    def __init__(self, repeats: int = 3) -> None:
        if repeats < 1:
            raise ValueError("repeats must be at least 1")
        self.repeats = repeats
        self.grew = False  # the streak is of appends made again (the same, or grown)
        self._longer = False  # one of them grown, not the same
        self._calls: list[tuple[bytes, str]] = []  # the last calls: (call and result, tool)
        self._call: tuple[str, dict[str, Any]] | None = None
        self._streak = 0
        self._round: list[str] = []  # the tools of the circle found, in order

    def record(self, tool: str, args: Mapping[str, Any], result: str) -> bool:
        """Record one call; True when the calls now go round (see the class); any other call
        starts the count again."""
        canonical = json.dumps([tool, dict(args), result], sort_keys=True, default=str)
        key = hashlib.sha256(canonical.encode()).digest()
        grew = self._grown(tool, args)
        last = self._calls[-1][0] if self._calls else None
        if key == last or grew:
            self._streak += 1
            self.grew = bool(grew)
            self._longer = (self._longer and self.grew) or grew == "grown"
        else:
            self._streak, self.grew, self._longer = 1, False, False
        self._calls = [*self._calls, (key, tool)][-LONGEST_CIRCLE * self.repeats :]
        self._call = (tool, dict(args))
        if self._streak >= self.repeats + self._longer:
            self._round = [tool]
            return True
        return self._went_round()

    def _went_round(self) -> bool:
        """Whether the last calls are one round of calls (two or more of them, not all the same)
        made ``repeats`` times with the same results."""
        keys = [key for key, _ in self._calls]
        for size in range(2, LONGEST_CIRCLE + 1):
            if len(keys) < size * self.repeats:
                continue
            tail = keys[-size * self.repeats :]
            one = tail[:size]
            if len(set(one)) > 1 and tail == one * self.repeats:
                self._round = [tool for _, tool in self._calls[-size:]]
                return True
        return False

    def _grown(self, tool: str, args: Mapping[str, Any]) -> Literal["same", "grown", ""]:
        """Whether this call is the last one again with its :data:`GROWING` argument the same
        or grown ("" when it is not)."""
        name = GROWING.get(tool)
        if name is None or self._call is None or self._call[0] != tool:
            return ""
        last = self._call[1]
        if {k: v for k, v in last.items() if k != name} != {
            k: v for k, v in args.items() if k != name
        }:
            return ""
        before, after = str(last.get(name, "")).rstrip(), str(args.get(name, "")).rstrip()
        if not before or not after.startswith(before):
            return ""
        return "same" if after == before else "grown"

    def reason(self) -> str:
        """Why the last :meth:`record` that returned True was a circle (an attempt's error)."""
        if len(self._round) > 1:
            calls = ", ".join(self._round)
            return (
                f"stuck: the same {len(self._round)} calls ({calls}) went round"
                f" {self.repeats} times, each round with the same results"
            )
        tool = self._round[0] if self._round else "tool"
        if self.grew:
            return (
                f"stuck: {self._streak} {tool} calls in a row, each after the first adding"
                " again what the one before it added (or more)"
            )
        return f"stuck: the same {tool} call returned the same result {self.repeats} times"

    def reset(self) -> None:
        self._calls, self._call, self._streak, self._round = [], None, 0, []
        self.grew = self._longer = False
