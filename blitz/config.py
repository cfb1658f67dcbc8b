"""The per-repository settings file, ``blitz.toml``, kept at the repository's root.

It is usually committed with the repository, so it never holds secrets: a ``token`` key anywhere
is refused (the GitHub token comes from ``GITHUB_TOKEN`` or ``BLITZ_GITHUB_TOKEN``). Every key is
checked: unknown keys, wrong types and out-of-range numbers are a :class:`ConfigError` that names
the file, the line and the key, never a traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from blitz.config_sections import (
    AgentConfig,
    BreakerConfig,
    BudgetConfig,
    ClaudeCodeConfig,
    CodexConfig,
    CommandBackendConfig,
    ExecutorConfig,
    ExploreConfig,
    GatesConfig,
    GitHubConfig,
    LimitsConfig,
    ModelsConfig,
    ProjectConfig,
    RepoConfig,
    SandboxConfig,
    WorkspaceConfig,
)
from blitz.domain import Gates, Project
from blitz.envsetup import SetupSpec
from blitz.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "TOKEN_ENV",
    "AgentConfig",
    "BreakerConfig",
    "BudgetConfig",
    "ClaudeCodeConfig",
    "CodexConfig",
    "CommandBackendConfig",
    "ExecutorConfig",
    "ExploreConfig",
    "GatesConfig",
    "GitHubConfig",
    "LimitsConfig",
    "ModelsConfig",
    "ProjectConfig",
    "RepoConfig",
    "SandboxConfig",
    "WorkspaceConfig",
    "apply_config",
    "gates_of",
    "load_repo_config",
    "render_repo_config",
    "setup_of",
]

CONFIG_NAME = "blitz.toml"

TOKEN_ENV = ("GITHUB_TOKEN", "BLITZ_GITHUB_TOKEN")


def gates_of(cfg: RepoConfig) -> Gates:
    """The gates the configuration sets."""
    return Gates(**cfg.gates.model_dump())  # the same fields


def setup_of(cfg: RepoConfig) -> SetupSpec:
    """The environment set-up the configuration sets (``[workspace]``)."""
    w = cfg.workspace
    return SetupSpec(
        command=w.setup,
        inputs=tuple(w.setup_inputs),
        keep=tuple(w.keep),
        timeout=w.setup_timeout,
    )


# -- loading -----------------------------------------------------------------------------------


def load_repo_config(repo: Path) -> RepoConfig | None:
    """The repository's blitz.toml, or None if it has none; a bad file is a ConfigError."""
    path = repo / CONFIG_NAME
    if not path.exists():
        return None
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc

    tokens = [loc for loc in _keys(data) if _is_token(loc[-1])]
    if tokens:
        raise ConfigError(
            "\n".join(
                f"{_where(path, text, loc)}: {_field(loc)}: secrets do not belong in {CONFIG_NAME} "
                f"(it is usually committed); set {' or '.join(TOKEN_ENV)} in the environment "
                "instead"
                for loc in tokens
            )
        )
    try:
        cfg = RepoConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # An item of a list is named by its key and its place: "[workspace] keep (item 2)".
            *keys, last = error["loc"] or ("",)
            item = f" (item {last + 1})" if isinstance(last, int) and keys else ""
            loc = tuple(str(part) for part in (keys if item else [*keys, last]))
            # A top-level key that is not a table ("name = ..." above any [section]).
            plain = len(loc) == 1 and not isinstance(error.get("input"), Mapping)
            label = loc[0] if plain and error["type"] == "extra_forbidden" else _field(loc)
            label += item
            problems.append(f"{_where(path, text, loc)}: {label}: {_problem(error)}")
        raise ConfigError("\n".join(problems)) from exc
    if not cfg.project.name:
        project = cfg.project.model_copy(update={"name": repo.resolve().name})
        cfg = cfg.model_copy(update={"project": project})
    return cfg


def _keys(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in data.items():
        yield (*prefix, key)
        if isinstance(value, Mapping):
            yield from _keys(value, (*prefix, key))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    yield from _keys(item, (*prefix, key))


def _is_token(key: str) -> bool:
    key = key.lower().replace("-", "_")
    return key == "token" or key.endswith("_token")


def _problem(error: ErrorDetails) -> str:
    loc = tuple(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown(loc)
    if kind == "model_type":
        return "should be a table"
    got = error.get("input")
    return f"{error['msg'][:1].lower()}{error['msg'][1:]} (got {_toml_value(got)})"


def _unknown(loc: tuple[str, ...]) -> str:
    sections = RepoConfig.model_fields
    if len(loc) == 1:
        known = list(sections)
        owners = [name for name, f in sections.items() if loc[0] in _fields_of(f.annotation)]
        if owners:
            return f"unknown top-level key; did you mean {loc[0]} under [{owners[0]}]?"
        return f"unknown section (known: {', '.join(known)}){_close(loc[0], known)}"
    known = list(_fields_of(sections[loc[0]].annotation)) if loc[0] in sections else []
    return f"unknown key (known: {', '.join(known)}){_close(loc[-1], known)}"


def _fields_of(annotation: Any) -> dict[str, Any]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict(annotation.model_fields)
    return {}


def _close(word: str, known: Sequence[str]) -> str:
    match = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def _field(loc: tuple[str, ...]) -> str:
    if len(loc) == 1:
        return f"[{loc[0]}]"
    return f"[{'.'.join(loc[:-1])}] {loc[-1]}"


def _where(path: Path, text: str, loc: tuple[str, ...]) -> str:
    line = _line_of(text, loc)
    return f"{path}:{line}" if line else str(path)


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")


def _line_of(text: str, loc: tuple[str, ...]) -> int | None:
    """The line that sets ``loc`` (a best effort: TOML parsers do not report positions)."""
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            table = tuple(_unquote(part) for part in header[1].split("."))
            if table == loc:
                return number
            continue
        if key := _KEY.match(line):
            full = (*table, *(_unquote(part) for part in key[1].split(".")))
            if full[: len(loc)] == loc:
                return number
    return None


def _unquote(part: str) -> str:
    return part.strip().strip("\"'")


# -- rendering ---------------------------------------------------------------------------------


def render_repo_config(cfg: RepoConfig, notes: Sequence[str] = ()) -> str:
    """``cfg`` as blitz.toml text, every key with a comment; ``notes`` (such as what gate
    detection found) go in a comment at the top. Loading the text gives ``cfg`` back."""
    lines = [
        f"# {CONFIG_NAME}: blitz's settings for this repository. Every key may be left out.",
        f"# No secrets here: the GitHub token comes from {' or '.join(TOKEN_ENV)}.",
    ]
    if notes:
        lines += ["#", "# Detected:"]
        lines += [f"#   {_printable(part)}" for note in notes for part in note.splitlines()]
    for name in RepoConfig.model_fields:
        if name == "backends":
            for backend, command in cfg.backends.items():
                lines += ["", *_table(f"backends.{_toml_key(backend)}", command)]
            continue
        section: BaseModel = getattr(cfg, name)
        lines += ["", *_table(name, section)]
    return "\n".join(lines) + "\n"


def _table(name: str, section: BaseModel) -> list[str]:
    lines = [*_comment(type(section).__doc__ or ""), f"[{name}]"]
    for key, info in type(section).model_fields.items():
        value = getattr(section, key)
        # TOML has no null: a key left unset is shown commented out.
        setting = f"# {key} =" if value is None else f"{key} = {_toml_value(value)}"
        lines.append(setting.ljust(40) + f"  # {info.description}")
    return lines


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _printable(text: str) -> str:
    """``text`` fit for a TOML comment, which may not hold control characters."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _comment(doc: str) -> list[str]:
    return [f"# {line.strip()}" for line in doc.strip().splitlines()]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}" if inner else "{}"
    return repr(value)


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def apply_config(project: Project, cfg: RepoConfig) -> Project:
    """``project`` with what the repository's ``blitz.toml`` says of it."""
    p = cfg.project
    return dataclasses.replace(
        project,
        name=project.name or p.name,
        base_branch=p.base_branch or project.base_branch,
        remote=p.remote,
        backend=p.backend,
        fallback_backend=p.fallback_backend,
        max_parallel=p.max_parallel,
        require_plan_approval=p.require_plan_approval,
        gates=gates_of(cfg),
    )
