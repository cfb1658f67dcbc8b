"""Guessing a repository's gates and its environment set-up from the files it keeps at its root.

Python (pyproject.toml, setup.py, setup.cfg), Node (package.json), Rust (Cargo.toml) and Go
(go.mod) are recognised; a repository with several of them gets each gate's commands (and the
set-ups) joined with ``&&``. The set-up follows the lockfile: ``uv sync``, ``npm ci``,
``pnpm install``, ``cargo fetch``... and keeps the directory it fills (``.venv``,
``node_modules``, ``target``) between attempts. Detection only reads files, and every choice is
explained in a note, because the user is asked to confirm the result (it is written to
blitz.toml).
"""

from __future__ import annotations

import configparser
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blitz.domain import Gates
from blitz.envsetup import DEFAULT_INPUTS

GATE_NAMES = ("build", "typecheck", "lint", "test")

TEST_SEARCH_DEPTH = 4
"""How many directory levels below the root are searched for a ``test_*.py`` file."""

_SKIPPED_DIRS = frozenset(
    {"node_modules", "venv", "env", "build", "dist", "target", "site-packages", "__pycache__"}
)

_NPM_PLACEHOLDER = "no test specified"
"""From the test script ``npm init`` writes: 'echo "Error: no test specified" && exit 1'."""

Found = dict[str, str]
"""One ecosystem's gate commands by gate name."""


def detect_gates(repo: Path) -> tuple[Gates, list[str]]:
    """The gates ``repo`` most likely uses, and notes saying what was found and why."""
    notes: list[str] = []
    detectors: tuple[Callable[[Path, list[str]], Found | None], ...] = (
        _python,
        _node,
        _rust,
        _go,
    )
    found = [each for detect in detectors if (each := detect(repo, notes)) is not None]
    if not found:
        notes.append(
            f"no Python, Node, Rust or Go project found in {repo}: no gates configured; "
            "set them in blitz.toml"
        )
        return Gates(), notes

    def joined(gate: str) -> str:
        return " && ".join(each[gate] for each in found if each.get(gate))

    gates = Gates(
        build=joined("build"),
        test=joined("test"),
        typecheck=joined("typecheck"),
        lint=joined("lint"),
    )
    return gates, notes


# -- Python ------------------------------------------------------------------------------------


def _python(repo: Path, notes: list[str]) -> Found | None:
    markers = [name for name in ("pyproject.toml", "setup.py", "setup.cfg") if _file(repo, name)]
    if not markers:
        return None
    notes.append(f"Python project ({', '.join(markers)})")
    pyproject = _read_toml(repo / "pyproject.toml", notes)
    tool = _table(pyproject.get("tool"))
    setup_cfg = _read_ini(repo / "setup.cfg", notes)
    # With a uv lock file the tools live in uv's environment, not on PATH.
    uv = _file(repo, "uv.lock")
    found: Found = {}

    why_tests = _pytest_reason(repo, tool, setup_cfg)
    if why_tests:
        found["test"] = "uv run pytest -q" if uv else "python -m pytest -q"
        notes.append(f"test: {found['test']} ({why_tests}{'; uv.lock found' if uv else ''})")
    else:
        notes.append("test: none (no pytest configuration, tests/ directory or test_*.py file)")

    mypy = _mypy(repo, tool, setup_cfg, notes)
    pyright = _file(repo, "pyrightconfig.json") or "pyright" in tool
    if mypy:
        found["typecheck"] = mypy
        if pyright:
            notes.append("typecheck: pyright is configured too but mypy was chosen")
    elif pyright:
        found["typecheck"] = "pyright"
        source = "pyrightconfig.json" if _file(repo, "pyrightconfig.json") else "[tool.pyright]"
        notes.append(f"typecheck: pyright ({source})")

    ruff = next((name for name in ("ruff.toml", ".ruff.toml") if _file(repo, name)), None)
    if ruff is None and "ruff" in tool:
        ruff = "[tool.ruff] in pyproject.toml"
    if ruff:
        found["lint"] = "ruff check ."
        notes.append(f"lint: ruff check . ({ruff})")

    if uv:
        found = {name: _uv(command) for name, command in found.items()}
    return found


def _pytest_reason(repo: Path, tool: dict[str, Any], setup_cfg: configparser.ConfigParser) -> str:
    if "pytest" in tool:
        return "[tool.pytest] in pyproject.toml"
    if _file(repo, "pytest.ini"):
        return "pytest.ini"
    if setup_cfg.has_section("tool:pytest"):
        return "[tool:pytest] in setup.cfg"
    if _file(repo, "tox.ini") and _read_ini(repo / "tox.ini", []).has_section("pytest"):
        return "[pytest] in tox.ini"
    if _file(repo, "conftest.py"):
        return "conftest.py"
    for name in ("tests", "test"):
        if (repo / name).is_dir():
            return f"{name}/ directory"
    test_file = _find_test_file(repo)
    if test_file:
        return f"test file {test_file}"
    return ""


def _mypy(
    repo: Path, tool: dict[str, Any], setup_cfg: configparser.ConfigParser, notes: list[str]
) -> str:
    settings: dict[str, Any] | None = None
    source = ""
    if "mypy" in tool:
        settings, source = _table(tool["mypy"]), "[tool.mypy] in pyproject.toml"
    else:
        for name in ("mypy.ini", ".mypy.ini"):
            if _file(repo, name):
                ini = _read_ini(repo / name, notes)
                settings = dict(ini["mypy"]) if ini.has_section("mypy") else {}
                source = name
                break
        else:
            if setup_cfg.has_section("mypy"):
                settings, source = dict(setup_cfg["mypy"]), "[mypy] in setup.cfg"
    if settings is None:
        return ""
    # An explicit target on the command line overrides the files the configuration names.
    targets = [key for key in ("files", "packages", "modules") if settings.get(key)]
    command = "mypy" if targets else "mypy ."
    because = f"; it names its {targets[0]}" if targets else ""
    notes.append(f"typecheck: {command} ({source}{because})")
    return command


def _uv(command: str) -> str:
    if command.startswith("uv run "):
        return command
    return "uv run " + command.removeprefix("python -m ")


def _find_test_file(repo: Path) -> str:
    """The first ``test_*.py`` or ``*_test.py`` file within a few levels, skipping hidden,
    virtual-environment and build directories."""
    level = [repo]
    for _ in range(TEST_SEARCH_DEPTH + 1):
        below: list[Path] = []
        for directory in level:
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or entry.name in _SKIPPED_DIRS:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    below.append(Path(entry.path))
                elif entry.name.endswith(".py") and (
                    entry.name.startswith("test_") or entry.name.endswith("_test.py")
                ):
                    return Path(entry.path).relative_to(repo).as_posix()
        level = below
    return ""


# -- Node --------------------------------------------------------------------------------------


def _node(repo: Path, notes: list[str]) -> Found | None:
    if not _file(repo, "package.json"):
        return None
    try:
        package = json.loads((repo / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"package.json could not be read ({exc}): no Node gates")
        return None
    package = _table(package)
    if _file(repo, "pnpm-lock.yaml"):
        manager, lock = "pnpm", "pnpm-lock.yaml"
    elif _file(repo, "yarn.lock"):
        manager, lock = "yarn", "yarn.lock"
    else:
        manager, lock = "npm", "package-lock.json" if _file(repo, "package-lock.json") else ""
    notes.append(
        f"Node project (package.json), run with {manager}" + (f" ({lock})" if lock else "")
    )
    scripts = {k: v for k, v in _table(package.get("scripts")).items() if isinstance(v, str)}
    found: Found = {}
    for gate in ("build", "lint"):
        if gate in scripts:
            found[gate] = f"{manager} run {gate}"
    if _NPM_PLACEHOLDER in scripts.get("test", ""):
        notes.append("test: none (package.json has npm's placeholder test script)")
    elif "test" in scripts:
        found["test"] = f"{manager} test"
    script = next((name for name in ("typecheck", "type-check") if name in scripts), None)
    if script:
        found["typecheck"] = f"{manager} run {script}"
    listed = [f"{gate}: {found[gate]}" for gate in GATE_NAMES if gate in found]
    if listed:
        notes.append("from package.json scripts: " + "; ".join(listed))
    if not script and _file(repo, "tsconfig.json") and _depends_on(package, "typescript"):
        # tsc comes from node_modules; never let npx fetch the unrelated "tsc" package.
        run_tsc = {"npm": "npx --no", "pnpm": "pnpm exec", "yarn": "yarn"}[manager]
        found["typecheck"] = f"{run_tsc} tsc --noEmit"
        notes.append(
            f"typecheck: {found['typecheck']} (tsconfig.json and typescript in dependencies)"
        )
    if not found:
        notes.append("package.json has no build, test, lint or typecheck script")
    return found


def _depends_on(package: dict[str, Any], name: str) -> bool:
    return any(name in _table(package.get(key)) for key in ("dependencies", "devDependencies"))


# -- Rust and Go -------------------------------------------------------------------------------


def _rust(repo: Path, notes: list[str]) -> Found | None:
    if not _file(repo, "Cargo.toml"):
        return None
    notes.append("Rust project (Cargo.toml): cargo build, cargo test, cargo clippy -- -D warnings")
    return {"build": "cargo build", "test": "cargo test", "lint": "cargo clippy -- -D warnings"}


def _go(repo: Path, notes: list[str]) -> Found | None:
    if not _file(repo, "go.mod"):
        return None
    notes.append("Go module (go.mod): go build ./..., go test ./..., go vet ./...")
    return {"build": "go build ./...", "test": "go test ./...", "lint": "go vet ./..."}


# -- reading -----------------------------------------------------------------------------------


def _file(repo: Path, name: str) -> bool:
    return (repo / name).is_file()


def _table(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read_toml(path: Path, notes: list[str]) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        notes.append(f"{path.name} could not be read ({exc}); it was ignored")
        return {}


def _read_ini(path: Path, notes: list[str]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    if path.is_file():
        try:
            parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            notes.append(f"{path.name} could not be read ({exc}); it was ignored")
            return configparser.ConfigParser(interpolation=None)
    return parser


# -- the environment set-up --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    """The detected ``[workspace]``: the set-up command, the directories to keep, and the
    set-up's inputs when the lockfiles alone do not say when it must run again."""

    command: str = ""
    keep: tuple[str, ...] = ()
    inputs: tuple[str, ...] = DEFAULT_INPUTS


SetupFound = tuple[str, tuple[str, ...], tuple[str, ...]]
"""One ecosystem's set-up: its command, the directories it fills, more inputs than lockfiles."""


def detect_setup(repo: Path) -> tuple[Setup, list[str]]:
    """The set-up ``repo`` most likely needs (Node: npm, pnpm, yarn, bun; Python: uv, poetry,
    pipenv, pip; Rust; Go), and notes saying what was found and why."""
    notes: list[str] = []
    detectors: tuple[Callable[[Path, list[str]], SetupFound | None], ...] = (
        _python_setup,
        _node_setup,
        _rust_setup,
        _go_setup,
    )
    found = [each for detect in detectors if (each := detect(repo, notes)) is not None]
    if not found:
        notes.append("set-up: none (no lockfile or package manifest found)")
        return Setup(), notes
    keep = tuple(dict.fromkeys(d for _, dirs, _ in found for d in dirs))
    extra = tuple(dict.fromkeys(i for _, _, more in found for i in more))
    ignored = _gitignored(repo)
    for directory in keep:
        if directory not in ignored:
            notes.append(
                f"keep: {directory} is not in .gitignore; add it, or its files would be taken "
                "for the agent's work"
            )
    setup = Setup(
        command=" && ".join(command for command, _, _ in found),
        keep=keep,
        inputs=(*DEFAULT_INPUTS, *(i for i in extra if i not in DEFAULT_INPUTS)),
    )
    return setup, notes


def _python_setup(repo: Path, notes: list[str]) -> SetupFound | None:
    pyproject = _read_toml(repo / "pyproject.toml", [])
    extras = _table(_table(pyproject.get("project")).get("optional-dependencies"))
    extra = next((name for name in ("dev", "test", "tests") if name in extras), "")
    if _file(repo, "uv.lock"):
        command = "uv sync --frozen" + (f" --extra {extra}" if extra else "")
        notes.append(f"set-up: {command} (uv.lock)")
        return command, (".venv",), ()
    if _file(repo, "poetry.lock"):
        command = "poetry install --no-interaction" + (f" --extras {extra}" if extra else "")
        notes.append(f"set-up: {command} (poetry.lock; its environment made in .venv)")
        return command, (".venv",), ()
    if _file(repo, "Pipfile.lock"):
        notes.append("set-up: pipenv sync --dev (Pipfile.lock; its environment made in .venv)")
        return "pipenv sync --dev", (".venv",), ()
    venv = "python3 -m venv .venv && .venv/bin/python -m pip install"
    names = sorted(p.name for p in repo.glob("requirements*.txt") if p.is_file())
    names += sorted(p.name for p in repo.glob("*-requirements.txt") if p.is_file())
    if names:
        command = f"{venv} " + " ".join(f"-r {name}" for name in names)
        notes.append(f"set-up: a .venv with pip ({', '.join(names)})")
        return command, (".venv",), ()
    manifests = [name for name in ("pyproject.toml", "setup.py", "setup.cfg") if _file(repo, name)]
    if not manifests:
        return None
    target = f"'.[{extra}]'" if extra else "."
    notes.append(
        f"set-up: a .venv with the project installed in editable mode by pip (no lockfile; "
        f"it runs again when {', '.join(manifests)} change)"
    )
    return f"{venv} -e {target}", (".venv",), tuple(manifests)


def _node_setup(repo: Path, notes: list[str]) -> SetupFound | None:
    if not _file(repo, "package.json"):
        return None
    if _file(repo, "pnpm-lock.yaml"):
        command, lock = "pnpm install --frozen-lockfile", "pnpm-lock.yaml"
    elif _file(repo, "yarn.lock"):
        # Yarn 2+ (a .yarnrc.yml) spells "do not touch the lockfile" differently from Yarn 1.
        berry = _file(repo, ".yarnrc.yml")
        command = "yarn install " + ("--immutable" if berry else "--frozen-lockfile")
        lock = "yarn.lock"
    elif _file(repo, "bun.lockb") or _file(repo, "bun.lock"):
        command, lock = "bun install --frozen-lockfile", "bun.lock"
    elif _file(repo, "package-lock.json") or _file(repo, "npm-shrinkwrap.json"):
        command, lock = "npm ci", "package-lock.json"
    else:
        notes.append("set-up: npm install (no lockfile; it runs again when package.json changes)")
        return "npm install", ("node_modules",), ("package.json",)
    notes.append(f"set-up: {command} ({lock})")
    return command, ("node_modules",), ()


def _rust_setup(repo: Path, notes: list[str]) -> SetupFound | None:
    if not _file(repo, "Cargo.toml"):
        return None
    command = "cargo fetch --locked" if _file(repo, "Cargo.lock") else "cargo fetch"
    notes.append(f"set-up: {command} (Cargo.toml; builds kept in target)")
    return command, ("target",), () if _file(repo, "Cargo.lock") else ("Cargo.toml",)


def _go_setup(repo: Path, notes: list[str]) -> SetupFound | None:
    if not _file(repo, "go.mod"):
        return None
    notes.append("set-up: go mod download (go.mod)")
    return "go mod download", (), ("go.mod",)


def _gitignored(repo: Path) -> set[str]:
    """Directory names the root .gitignore ignores by a plain entry (``node_modules/``)."""
    try:
        text = (repo / ".gitignore").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    names = set()
    for line in text.splitlines():
        entry = line.strip().strip("/")
        if entry and not entry.startswith(("#", "!")) and "/" not in entry:
            names.add(entry)
    return names
