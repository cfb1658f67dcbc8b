"""Noticing a model that repeats itself, while its answer streams in.

A small model that degenerates writes the same span again and again (a sentence, a task, a line)
until the output limit or the context window stops it. :class:`RepeatWatch` is fed the streamed
text, a piece at a time, and says when the tail of what it has seen is one span repeated back to
back: at least :data:`MIN_REPEATS` times and :data:`MIN_LENGTH` characters in all, or twice for a
span of :data:`LONG_SPAN` characters or more. Ordinary code
repeats short lines (a closing bracket, a blank line) and ruler comments, never a long run of
the same span, so the check stays quiet on it; a test feeds it this repository's source files.

It keeps a bounded tail (what the longest repetition covers), so its memory does not grow with
the output, and checks only every :data:`CHECK_EVERY` new characters.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_REPEATS = 6
"""Back-to-back copies of a span that make a repetition."""

MIN_LENGTH = 600
"""Characters a repetition covers at least, whatever its span: a ruler of 100 dashes is not one."""

LONG_SPAN = 500
"""A span this long is a repetition at its second copy back to back: no answer writes the same
500 characters twice in a row, and six copies of a long span never fit in an output cap
(Qwen2.5-Coder-1.5B, asked for a recovery, echoed 2,600 characters of its prompt again and again
until its 3,000 tokens ran out, four and a half minutes on the CPU)."""

MAX_SPAN = 4_000
"""The longest span looked for; a longer loop still shows as soon as it repeats again."""

CHECK_EVERY = 32
"""New characters between two checks."""

BLANK_RUN = 200
"""Characters of blank space, or of one character, in a row that make a repetition on their own:
a model held by a JSON grammar it cannot satisfy writes newlines, spaces or digits for ever
(Qwen2.5-Coder on llama.cpp: ``{"name": ...}.000000...``), and no code or prose has such a run."""

BLANK_AFTER_FENCE = 32
"""Characters of blank space after a closed code fence that end the answer as a repetition: a
small model that wrote its tool call as a fenced block goes on with newlines (Qwen2.5-Coder-1.5B,
a hundred and more), and the call before them is made all the same (a stopped answer keeps what
had streamed)."""

_PROBE = 16
"""Characters at the very end that every copy of the span must also end with."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Repetition:
    """The span repeated at the end of the output and how many times."""

    span: str
    repeats: int

    def describe(self, width: int = 60) -> str:
        if not self.span.strip():
            return f"{len(self.span)} characters of blank space in a row"
        shown = " ".join(self.span.split())
        if len(shown) > width:
            shown = shown[: width - 3] + "..."
        return f"{shown!r} {self.repeats} times in a row"


class RepeatWatch:
    """Fed streamed text with :meth:`feed`; returns a :class:`Repetition` once the tail is one."""

    def __init__(
        self,
        *,
        min_repeats: int = MIN_REPEATS,
        min_length: int = MIN_LENGTH,
        max_span: int = MAX_SPAN,
    ) -> None:
        if min_repeats < 2 or min_length < 1 or max_span < 1:
            raise ValueError("min_repeats >= 2, min_length >= 1 and max_span >= 1")
        self._min_repeats = min_repeats
        self._min_length = min_length
        self._max_span = max_span
        longest = max(s * _copies(s, min_repeats) for s in (min(max_span, LONG_SPAN - 1), max_span))
        self._window = max(longest, min_length) + _PROBE
        self._tail = ""
        self._unchecked = 0

    def feed(self, text: str) -> Repetition | None:
        """Add ``text`` to what was seen; the repetition now at the end, if there is one."""
        if not text:
            return None
        self._tail = (self._tail + text)[-self._window :]
        self._unchecked += len(text)
        if self._unchecked < CHECK_EVERY:
            return None
        self._unchecked = 0
        return self.check()

    def check(self) -> Repetition | None:
        """The repetition at the end of what was seen, if any (also between two checks)."""
        tail = self._tail
        kept = tail.rstrip()
        if len(tail) - len(kept) >= BLANK_AFTER_FENCE and kept.endswith("```"):
            return Repetition(span=tail[len(kept) :], repeats=1)
        if len(tail) >= BLANK_RUN:
            run = tail[-BLANK_RUN:]
            if run.isspace():
                blank = len(tail) - len(tail.rstrip())
                return Repetition(span=tail[-blank:], repeats=1)
            if run.count(run[-1]) == BLANK_RUN:
                return Repetition(span=run[-1], repeats=len(tail) - len(tail.rstrip(run[-1])))
        if len(tail) < self._min_length:
            return None
        probe = tail[-_PROBE:]
        end = len(tail) - _PROBE  # where the probe starts
        # Each earlier copy of the probe proposes a span (its distance from the end); the shortest
        # that repeats is the one to report, so the check of a long span never hides a short one.
        start = end
        while True:
            start = tail.rfind(probe, 0, start + _PROBE - 1)
            if start < 0:
                return None
            span = end - start
            if span > self._max_span:
                return None
            needed = max(span * _copies(span, self._min_repeats), self._min_length)
            if needed <= len(tail):
                run = tail[-needed:]
                if run[span:] == run[:-span]:
                    repeats = self._count(span)
                    return Repetition(span=tail[-span:], repeats=repeats)

    def _count(self, span: int) -> int:
        """Copies of the last ``span`` characters at the end of the tail."""
        tail = self._tail
        unit = tail[-span:]
        repeats = 1
        while tail.endswith(unit, 0, len(tail) - span * repeats):
            repeats += 1
        return repeats


def _copies(span: int, repeats: int) -> int:
    """Back-to-back copies of a span of ``span`` characters that make a repetition."""
    return 2 if span >= LONG_SPAN else repeats
