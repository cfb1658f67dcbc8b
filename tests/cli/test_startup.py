"""A command imports what it needs and no more: ``blitz --help`` none of the commands, ``blitz
status`` and ``blitz events`` the store's reader on sqlite3 but not the engine, the daemon, any
model SDK, SQLAlchemy or pydantic (what made every command cost a second or more before it did
anything; ``bench/cli_startup.py`` measures the time). And the table ``blitz --help`` lists the
commands from says what each one does, for every command there is."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from blitz_process import TIMEOUT, blitz_env
from blitz_process import blitz as run_blitz  # the name blitz is the package (import blitz.cli)
from typer.core import TyperGroup

import blitz.cli
from blitz.cli.common import app
from blitz.cli.lazy import COMMANDS

ENGINE = ("blitz.app", "blitz.conductor", "blitz.actions", "blitz.backends", "blitz.server")
SDKS = ("fastapi", "httpx", "pydantic_ai", "anthropic", "openai", "uvicorn")
STORE = ("sqlalchemy", "alembic", "pydantic", "pydantic_settings", "blitz.store")
HEAVY = ("sqlalchemy", "alembic", "pydantic", "pydantic_settings", "blitz.store.sql", "asyncio")
"""What the store's own path costs (most of a second), and asyncio (a tenth); a SQLite store at
the newest schema is read without them (blitz/store/reader.py)."""


def imported_by(home: Path, *args: str) -> tuple[int, set[str]]:
    """Run ``blitz ARGS`` in a fresh interpreter; its exit code and every module it imported."""
    code = (
        "import json, sys\n"
        "from blitz.cli import main\n"
        f"sys.argv = ['blitz', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code or 0\n"
        "else:\n"
        "    code = 0\n"
        "sys.stdout.flush()\n"
        "print('\\n' + json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=blitz_env(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout.rstrip().splitlines()[-1])
    return report["code"], set(report["modules"])


def under(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages or m.startswith(packages))


@pytest.mark.parametrize(
    ("args", "needed", "not_needed"),
    [
        (("--help",), ("blitz.cli.lazy",), (*ENGINE, *SDKS, *STORE, "blitz.cli.run")),
        (("status",), ("blitz.cli.status", "blitz.store.reader"), ENGINE + SDKS + HEAVY),
        (("status", "g-none", "--json"), ("blitz.cli.status",), ENGINE + SDKS + HEAVY),
        (
            ("events", "--last", "5"),
            ("blitz.cli.events", "blitz.store.reader"),
            ENGINE + SDKS + HEAVY,
        ),
    ],
)
def test_a_command_imports_only_what_it_needs(
    home: Path, args: tuple[str, ...], needed: tuple[str, ...], not_needed: tuple[str, ...]
) -> None:
    made, _ = imported_by(home, "status")  # the first command makes the store (through it)
    assert made == 0
    code, modules = imported_by(home, *args)
    assert code == (2 if "g-none" in args else 0)  # no such goal: a user error
    assert set(needed) <= modules  # it did run (status and events read the store)
    assert under(modules, not_needed) == []


def test_a_plain_parameter_is_checked_without_pydantic(home: Path) -> None:
    """blitz/cli/lazy.py's ScalarValue: a number that is not one is refused as click would."""
    code, modules = imported_by(home, "events", "--last", "many")
    assert code == 2
    assert under(modules, ("pydantic",)) == []
    done = run_blitz(home, "events", "--last", "many")
    assert "Invalid value for '--last': 'many' is not a valid integer." in done.stderr
    assert run_blitz(home, "events", "--last", "3").returncode == 0


def test_the_table_lists_every_command_with_what_it_does() -> None:
    for info in pkgutil.iter_modules(blitz.cli.__path__):
        importlib.import_module(f"blitz.cli.{info.name}")
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    assert set(group.commands) == set(COMMANDS), "blitz/cli/lazy.py's COMMANDS: add or remove"
    for name, command in group.commands.items():
        module = command.callback.__module__ if command.callback else ""
        if module:
            assert module == f"blitz.cli.{COMMANDS[name].module}", name
        first = inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ").strip()
        assert COMMANDS[name].help == first, f"{name}: the table's line is not its docstring's"
