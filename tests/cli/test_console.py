"""The command line's console redacts whatever a command prints: markup, table cells wrapped over
lines, Text objects, JSON."""

from __future__ import annotations

import io
import json

from rich.table import Table
from rich.text import Text

from blitz.cli.console import RedactedConsole
from blitz.redact import REDACTED, register_secret

CANARY = "console-canary-0123456789"
TOKEN = "sk-ant-api03-" + "Zz9_" * 12


def console(width: int = 40) -> tuple[RedactedConsole, io.StringIO]:
    file = io.StringIO()
    return RedactedConsole(file=file, width=width, highlight=False, color_system=None), file


def test_printed_text_markup_and_text_objects_are_redacted() -> None:
    register_secret(CANARY)
    out, file = console(200)
    out.print(f"[red]error:[/] 401 with {TOKEN} and [bold]{CANARY[:9]}[/]{CANARY[9:]}")
    out.print(Text(f"plain text {CANARY}", style="green"))
    out.print(f"no markup [x] {CANARY}", markup=False)
    text = file.getvalue()
    assert CANARY not in text and TOKEN not in text
    assert f"error: 401 with {REDACTED} and {REDACTED}" in text
    assert f"plain text {REDACTED}" in text
    assert f"no markup [x] {REDACTED}" in text


def test_table_cells_are_redacted_before_they_wrap() -> None:
    register_secret(CANARY)
    out, file = console(30)
    table = Table("task", "reason")
    table.add_row("t1", f"failed: {TOKEN} then {CANARY} " * 2)
    table.add_row(Text(CANARY), "ok")
    out.print(table)
    flat = "".join(file.getvalue().split())  # the cells wrapped over lines, joined again
    assert CANARY not in flat and TOKEN[:20] not in flat
    assert "[redacted]" in flat


def test_echo_writes_lines_as_they_are_but_redacted() -> None:
    register_secret(CANARY)
    out, file = console(10)
    line = json.dumps({"message": f"a long line that is not wrapped {CANARY}", "n": 1})
    out.echo(line)
    assert file.getvalue() == line.replace(CANARY, REDACTED) + "\n"


def test_text_redacted_before_shows_its_marker_in_markup() -> None:
    out, file = console(200)
    out.print(f"[red]error: {REDACTED} then \\{REDACTED}[/] and {TOKEN}")
    assert file.getvalue() == f"error: {REDACTED} then {REDACTED} and {REDACTED}\n"
