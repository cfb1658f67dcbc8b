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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from blitz.domain import Gates, Project
from blitz.errors import ConfigError

CONFIG_NAME = "blitz.toml"

TOKEN_ENV = ("GITHUB_TOKEN", "BLITZ_GITHUB_TOKEN")

Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Section(BaseModel):
    # strict: "4" is not a number; TOML has real types and a quoted number is a mistake.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ProjectConfig(_Section):
    """What the repository is called and where its work goes."""

    name: str = Field(
        default="", description="The project's name in blitz (empty: the directory's name)."
    )
    base_branch: str = Field(
        default="",
        description="Branch goals start from (empty: the branch checked out when registered).",
    )
    remote: str = Field(
        default="origin", description='Git remote to push goal branches to ("": no push).'
    )
    backend: str = Field(default="scripted", description="The agent backend that does the tasks.")
    fallback_backend: str = Field(
        default="",
        description='Backend to use while the main one\'s breaker is open ("": wait instead).',
    )
    max_parallel: Positive = Field(default=4, description="Tasks run at the same time.")
    require_plan_approval: bool = Field(
        default=False, description="Goals wait after planning until a person approves the plan."
    )


class GatesConfig(_Section):
    """Shell commands run in each task's worktree to judge its work ("": not checked)."""

    build: str = Field(default="", description="Builds the project.")
    test: str = Field(default="", description="Runs the tests.")
    typecheck: str = Field(default="", description="Checks the types.")
    lint: str = Field(default="", description="Runs the linter.")
    timeout: Seconds = Field(
        default=600.0, description="Seconds each gate may run before it is stopped."
    )
    reuse: bool = Field(default=True, description="Reuse results on the same tree and inputs.")
    parallel: bool = Field(default=False, description="Run the gates side by side.")
    fail_fast: bool = Field(default=False, description="A blamed failure stops the other gates.")

    @classmethod
    def from_gates(cls, gates: Gates) -> GatesConfig:
        return cls(**dataclasses.asdict(gates))  # the same fields


class LimitsConfig(_Section):
    """Bounds that keep a goal from running away."""

    max_tasks: Positive = Field(default=200, description="Most tasks a plan may have.")
    max_recoveries_per_task: Count = Field(default=2, description="Recovery plans for one task.")
    max_recoveries_per_goal: Count = Field(
        default=10, description="Recovery plans for a whole goal."
    )
    max_crash_retries: Count = Field(
        default=3, description="Reruns of a task whose attempt crashed."
    )
    max_conflict_reruns: Count = Field(
        default=2, description="Reruns of a task whose work conflicted when integrated."
    )
    attempt_timeout: Seconds = Field(
        default=1800.0, description="Seconds an agent may work on a task."
    )


class BreakerConfig(_Section):
    """The circuit breaker that pauses work after repeated crashes."""

    threshold: Positive = Field(default=5, description="Consecutive crashes that open the breaker.")
    cooldown: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        default=60.0, description="Seconds the breaker stays open before it tries again."
    )


class GitHubConfig(_Section):
    """Where pull requests are opened. The token comes from GITHUB_TOKEN or BLITZ_GITHUB_TOKEN,
    never from this file."""

    api_url: str = Field(
        default="https://api.github.com",
        pattern=r"^https?://\S+$",
        description="The GitHub REST API (GitHub Enterprise: https://<host>/api/v3).",
    )


class ModelsConfig(_Section):
    """Language models as provider:model (anthropic:..., openai:..., ollama:..., vllm:...,
    llamacpp:..., lmstudio:..., openai-compatible:model@http://host/v1). "" falls back to
    `default`, then to BLITZ_MODEL; --model and --planner-model on the command line win."""

    default: str = Field(default="", description="Model for every role not set below.")
    planner: str = Field(default="", description="Model that plans goals into tasks.")
    recovery: str = Field(default="", description="Model that diagnoses failures.")
    agent: str = Field(default="", description="Model the embedded agent codes with.")


class BudgetConfig(_Section):
    """Hard spending limits in US dollars (0 = no limit). Reaching one stops new work."""

    goal_usd: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        default=0.0, description="Most one goal may spend."
    )
    project_usd: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        default=0.0, description="Most all goals of this project together may spend."
    )


class AgentConfig(_Section):
    """Limits of the embedded agent, per attempt."""

    max_turns: Positive = Field(default=60, description="Model calls per attempt.")
    max_tokens: Positive = Field(default=2_000_000, description="Tokens (in + out) per attempt.")
    max_cost_usd: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        default=0.0, description="Most one attempt may spend (0 = no limit beyond the budgets)."
    )
    stuck_repeats: Positive = Field(
        default=3, description="The same tool call with the same result this many times = stuck."
    )


class ClaudeCodeConfig(_Section):
    """The Claude Code backend (the `claude` CLI bundled with claude-agent-sdk)."""

    model: str = Field(default="", description='Model alias or name ("": the CLI\'s default).')
    permission_mode: str = Field(
        default="acceptEdits",
        description="acceptEdits, default, plan or bypassPermissions (only if set here).",
    )
    allowed_tools: list[str] = Field(
        default_factory=list, description="Tools allowed without asking (empty: blitz's set)."
    )
    disallowed_tools: list[str] = Field(default_factory=list, description="Tools never allowed.")
    max_turns: Positive = Field(default=60, description="Agent turns per attempt.")
    max_budget_usd: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        default=0.0, description="Most one attempt may spend (0 = no limit beyond the budgets)."
    )
    cli_path: str = Field(default="", description='The claude CLI ("": the bundled one).')


class CodexConfig(_Section):
    """The Codex backend (`codex exec --json`, from the npm package @openai/codex)."""

    model: str = Field(default="", description='Model name ("": the CLI\'s default).')
    sandbox: str = Field(
        default="workspace-write", description="read-only, workspace-write or danger-full-access."
    )
    binary: str = Field(default="", description='The codex CLI ("": installed by blitz, or PATH).')


class CommandBackendConfig(_Section):
    """An agent CLI run as a command (aider, gemini, ...): ``[backends.NAME]``."""

    command: list[str] = Field(
        min_length=1,
        description='Argument list; "{prompt}" is replaced by the task\'s prompt, '
        '"{prompt_file}" by a file holding it, "{worktree}" by the worktree '
        "(no placeholder: the prompt goes to stdin).",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables (no secrets here)."
    )
    pass_env: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(
        default_factory=list,
        description="Variables passed on as they are, secrets included (e.g. the agent's API "
        "key); other secrets are withheld.",
    )


class ExploreConfig(_Section):
    """Best-of-N: several attempts of each task in parallel; the best one is kept."""

    attempts: Positive = Field(default=1, description="Attempts per task (1 = no exploration).")
    mode: str = Field(
        default="all", description='"all": wait for every attempt; "first": first that passes.'
    )
    portfolio: list[str] = Field(
        default_factory=list,
        description='Backends (and models) to spread attempts over, e.g. "claude-code:sonnet".',
    )
    judge: str = Field(
        default="", description='Model that breaks ties between passing attempts ("": none).'
    )


class SandboxConfig(_Section):
    """The sandbox every agent and gate runs in (bubblewrap): the worktree is the only writable
    place, no secret is visible, no network but blitz's model proxy."""

    mode: Literal["required", "off"] = Field(
        default="required",
        description='"required": refuse to run agents unconfined; "off": run unconfined (warned).',
    )
    network: bool = Field(
        default=False,
        description="Host network for gates and the embedded agent's commands (e.g. downloads).",
    )
    readable: list[str] = Field(
        default_factory=list,
        description='Extra paths shown read-only inside the sandbox (e.g. "~/.cargo").',
    )


class RepoConfig(_Section):
    """Everything in blitz.toml; every section and key may be left out."""

    project: ProjectConfig = Field(default_factory=ProjectConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    github: GitHubConfig = Field(default_factory=GitHubConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    claude_code: ClaudeCodeConfig = Field(default_factory=ClaudeCodeConfig)
    codex: CodexConfig = Field(default_factory=CodexConfig)
    backends: dict[str, CommandBackendConfig] = Field(default_factory=dict)
    explore: ExploreConfig = Field(default_factory=ExploreConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)


def gates_of(cfg: RepoConfig) -> Gates:
    """The gates the configuration sets."""
    return Gates(**cfg.gates.model_dump())  # the same fields


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
            loc = tuple(str(part) for part in error["loc"])
            # A top-level key that is not a table ("name = ..." above any [section]).
            plain = len(loc) == 1 and not isinstance(error.get("input"), Mapping)
            label = loc[0] if plain and error["type"] == "extra_forbidden" else _field(loc)
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
        lines.append(f"{key} = {_toml_value(value)}".ljust(40) + f"  # {info.description}")
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
