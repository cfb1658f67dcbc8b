"""The command line's console: everything a command prints passes :func:`blitz.redact.redact`.

:class:`RedactedConsole` is a Rich console that redacts text where Rich turns it into what it
draws, before any wrapping or cropping can split a secret: every string (markup already parsed,
so a tag cannot hide one) and every ``Text``, whether printed alone, in a table cell, or by the
live display. Text that changed loses its styles; nothing else is touched. :meth:`echo` writes
a line exactly as given (JSON, lines scripts read), redacted too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.protocol import rich_cast
from rich.segment import Segment
from rich.text import Text

from blitz.redact import REDACTED, redact

_BARE_MARKER = re.compile(r"(?<!\\)" + re.escape(REDACTED))
"""``[redacted]`` not escaped for Rich's markup yet."""


def redacted_text(text: Text) -> Text:
    """``text`` itself when it holds no secret, else a copy of its redacted words in its style."""
    plain = text.plain
    clean = redact(plain)
    if clean == plain:
        return text
    return Text(
        clean,
        style=text.style,
        justify=text.justify,
        overflow=text.overflow,
        no_wrap=text.no_wrap,
        end=text.end,
    )


class RedactedConsole(Console):
    """A Rich console whose every output is redacted."""

    def __init__(self, *args: Any, markup: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, markup=markup, **kwargs)
        self.markup = markup

    def render_str(self, text: str, **kwargs: Any) -> Text:
        markup = kwargs.get("markup")
        if (self.markup if markup is None else markup) and REDACTED in text:
            # Text redacted before (by the store) would otherwise be read as a style tag and
            # vanish.
            text = _BARE_MARKER.sub(lambda _: "\\" + REDACTED, text)
        return redacted_text(super().render_str(text, **kwargs))

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        renderable = rich_cast(renderable)
        if isinstance(renderable, Text):
            renderable = redacted_text(renderable)
        return super().render(renderable, options)

    def echo(self, text: str) -> None:
        """Write ``text`` and a newline as they are (no markup, no wrapping), redacted, and
        flush: for JSON and for lines that scripts read."""
        file = self.file
        file.write(redact(text) + "\n")
        file.flush()
