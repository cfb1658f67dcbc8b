"""The sections of ``blitz.toml``, one pydantic model each, and :class:`RepoConfig` holding them
all. Loading, checking and rendering the file is :mod:`blitz.config`'s work."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from blitz.domain import Gates
from blitz.envsetup import DEFAULT_INPUTS
from blitz.executors.ray.resources import check_name
from blitz.notify_config import NotifyConfig

Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _inside(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not path.strip() or path.startswith("/") or ".." in parts or "\\" in path:
        raise ValueError("must be a path inside the repository, relative to its root")
    if parts[0] == ".git":
        raise ValueError("must not be in .git")
    return path


Inside = Annotated[str, AfterValidator(_inside)]
"""A path (or glob) relative to the repository's root, never outside it."""


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
    backend: str = Field(
        default="",
        description='The agent that does the tasks ("": the embedded one; `blitz init` picks).',
    )
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
        default=3,
        description=(
            "The same tool call (or round of two or three calls) with the same results this"
            " many times in a row = stuck."
        ),
    )
    max_output_tokens: Positive = Field(default=8192, description="Tokens per model answer.")
    gates_on_finish: bool = Field(
        default=True,
        description="Run the gates when the agent calls finish; a failing one is sent back.",
    )
    draft: bool = Field(
        default=False,
        description=(
            "Start each attempt with a draft: the change asked as code with no tools, put in"
            " place, then checked and fixed with the tools (small models write better code so)."
        ),
    )
    temperature: Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)] | None = Field(
        default=None,
        description="Sampling temperature (unset: 0.2 on a server of your own, else the model's).",
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


class WorkspaceConfig(_Section):
    """Worktrees and their environment. `setup` runs in a worktree before its first attempt and
    again only when one of `setup_inputs` changes; it runs in the sandbox with the host network
    (package registries) and a package cache of blitz's own, never the user's (no secrets)."""

    keep: list[Inside] = Field(
        default_factory=list,
        description="Ignored directories kept between attempts (node_modules, .venv, target).",
    )
    setup: str = Field(
        default="", description='Installs the dependencies, e.g. "npm ci" ("": no set-up).'
    )
    setup_inputs: list[Inside] = Field(
        default_factory=lambda: list(DEFAULT_INPUTS),
        description="Files (globs allowed) whose change re-runs the set-up.",
    )
    setup_timeout: Seconds = Field(
        default=1800.0, description="Seconds the set-up may run before it is stopped."
    )


def _label(name: str) -> str:
    return check_name("label", name)


class ExecutorConfig(_Section):
    """Where this project's attempts may run when the daemon runs them on a cluster (`blitz serve
    --executor ray`): the executor itself is the daemon's choice, shared by every project."""

    labels: list[Annotated[str, AfterValidator(_label)]] = Field(
        default_factory=list,
        description='Worker labels every attempt needs (`blitz worker --label gpu`): ["gpu"].',
    )
    sync: Literal["bundle", "fetch"] = Field(
        default="bundle",
        description="How a worker gets the repository: `bundle` (all of it from the daemon, "
        "through Ray) or `fetch` (the base branch from the git remote below, with the worker's "
        "own credentials; the daemon sends only the goal's own commits).",
    )
    remote: str = Field(
        default="origin",
        description="The git remote workers fetch the base branch from (`sync = fetch`).",
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
    workspace: WorkspaceConfig = Field(default_factory=WorkspaceConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
