"""Wiring: settings and per-repository configuration in, a ready engine out.

This is the one place that chooses concrete adapters (SQL store, git workspace, validator,
backend, planner, publisher) for the interfaces the conductor knows. The CLI, the daemon and the
tests build an :class:`App` and ask it for projects, goals and an engine.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from blitz import workspace as git
from blitz.backends.registry import NO_MODEL, BackendOptions, check_name, create_backend
from blitz.breaker import BreakerBoard, BreakerPolicy
from blitz.clock import Clock, SystemClock
from blitz.conductor import Engine, Limits, Services
from blitz.config import RepoConfig, gates_of, load_repo_config
from blitz.detect import detect_gates
from blitz.domain import Goal, Project, new_id
from blitz.errors import ConfigError, GitError, RepositoryError, UserError
from blitz.events import Event, EventKind
from blitz.planner import FilePlanner, Planner
from blitz.publish import Publisher
from blitz.redact import register_secret
from blitz.router import Router
from blitz.settings import Settings
from blitz.store.sql import SqlStore
from blitz.testing.scripted import Scenario, ScriptedPlanner
from blitz.validation import Validator

if TYPE_CHECKING:
    from blitz.backends.base import AgentBackend
    from blitz.conductor.selection import Judge
    from blitz.llm.models import ProviderConfig
    from blitz.llm.usage import PriceTable

MAX_EXPLORE = 10
"""Most best-of-N attempts per task."""

IGNORED_DIRTY = frozenset({"blitz.toml"})
"""Uncommitted files that do not stop a run (blitz.toml is read from the checkout itself)."""


class App:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        scenario: Scenario | None = None,
        models: Mapping[str, str] | None = None,
    ) -> None:
        """``models`` are command-line choices by role ("default", "planner", "recovery",
        "agent"); they win over blitz.toml and the environment."""
        self.settings = settings
        self.clock = clock or SystemClock()
        self.scenario = scenario
        self.models = dict(models or {})
        settings.home.mkdir(parents=True, exist_ok=True)
        if settings.github_token is not None:
            register_secret(settings.github_token.get_secret_value())
        for secret in (
            settings.anthropic_api_key,
            settings.openai_api_key,
            settings.compatible_api_key,
        ):
            if secret is not None:
                register_secret(secret.get_secret_value())
        self.store = SqlStore(settings.db_url)
        # One board for the engine and every model call, so provider breakers are shared.
        self.breakers = BreakerBoard(self.clock, records=self.store.load_breakers())
        self._crashed_at: set[str] = set()

    # -- faults (tests) ---------------------------------------------------------------------

    def fault(self, point: str) -> None:
        """Kill this process at a named point when BLITZ_CRASH_AT names it (crash tests)."""
        wanted = {p.strip() for p in self.settings.crash_at.split(",") if p.strip()}
        if point in wanted and point not in self._crashed_at:
            self._crashed_at.add(point)
            os.kill(os.getpid(), signal.SIGKILL)

    # -- projects ---------------------------------------------------------------------------

    def repo_config(self, path: Path) -> RepoConfig | None:
        return load_repo_config(path)

    def workspace(self, path: Path) -> git.Workspace:
        return git.Workspace(
            path, worktrees_root=self.settings.worktrees, lock_dir=self.settings.locks
        )

    async def register(self, path: Path, *, name: str = "") -> Project:
        """The project for the repository at ``path``, registering it on first use.

        A blitz.toml in the repository is the source of truth for its settings and is re-read
        every time; without one, gates are detected when the project is first registered.
        """
        path = path.expanduser().resolve()
        if not path.exists():
            raise RepositoryError(f"{path} does not exist")
        ws = self.workspace(path)
        cfg = self.repo_config(path)
        existing = self.store.find_project_by_path(str(path))
        if existing is not None:
            project = _apply_config(existing, cfg) if cfg else existing
        else:
            branch = (cfg.project.base_branch if cfg else "") or await _current_branch(ws)
            # Never register what cannot be used (a plain directory, a repo with no commits).
            await ws.check(base_branch=branch, allow_dirty=True)
            if cfg is None:
                gates, _notes = detect_gates(path)
                project = Project(
                    id=new_id("p"),
                    name=self._unique_name(name or path.name),
                    path=str(path),
                    base_branch=branch,
                    remote="origin",
                    gates=gates,
                )
            else:
                project = _apply_config(
                    Project(id=new_id("p"), name="", path=str(path), base_branch=branch), cfg
                )
                project = dataclasses.replace(
                    project, name=self._unique_name(name or cfg.project.name or path.name)
                )
            self.store.write(
                project,
                events=[
                    Event(
                        kind=EventKind.PROJECT_ADDED,
                        project_id=project.id,
                        message=f"{project.name}: {path}",
                        ts=self.clock.time(),
                    )
                ],
            )
        if existing is None or project != existing:
            self.store.write(project)
        self.store.flush_sync()
        return project

    def _unique_name(self, name: str) -> str:
        taken = {p.name for p in self.store.list_projects()}
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    def project(self, key: str) -> Project:
        project = self.store.get_project(key)
        if project is None:
            names = ", ".join(p.name for p in self.store.list_projects()) or "none yet"
            raise UserError(f"no project {key!r} (known: {names})")
        return project

    # -- goals ------------------------------------------------------------------------------

    async def new_goal(
        self,
        project: Project,
        title: str,
        *,
        backend: str = "",
        max_parallel: int = 0,
        allow_dirty: bool = False,
        explore: int = 0,
        explore_mode: str = "",
        portfolio: Sequence[str] = (),
    ) -> Goal:
        """Check the repository and write a new goal (state PLANNING) for ``project``.
        ``explore``: best-of-N attempts per task (0: blitz.toml [explore]); ``portfolio``:
        backend specs ("claude-code:sonnet", "codex") the attempts are spread over."""
        if not title.strip():
            raise UserError("the goal is empty: say what you want done")
        if project.paused:
            raise UserError(
                f"project {project.name} is paused ({project.pause_reason or 'by the user'}); "
                f"resume it with `blitz projects resume {project.name}`"
            )
        ws = self.workspace(Path(project.path))
        await ws.check(base_branch=project.base_branch, allow_dirty=True)
        if not allow_dirty:
            dirty = [p for p in await ws.dirty_paths() if p not in IGNORED_DIRTY]
            if dirty:
                shown = "\n".join(f"  {p}" for p in dirty[:10])
                more = f"\n  ... and {len(dirty) - 10} more" if len(dirty) > 10 else ""
                raise RepositoryError(
                    f"{project.path} has uncommitted changes:\n{shown}{more}\n"
                    "blitz works only from committed work and never touches your checkout, so "
                    "these changes would not be part of the goal. Commit or stash them, or pass "
                    "--allow-dirty to go ahead without them."
                )
        backend = backend or self.default_backend(project)
        cfg = self._config_for(project)
        options = self.backend_options(project)
        check_name(backend, options.commands)
        if backend == "embedded" and not self.model_name("agent", project):
            raise ConfigError(NO_MODEL)
        explore = explore or (cfg.explore.attempts if cfg else 1)
        explore_mode = explore_mode or (cfg.explore.mode if cfg else "all")
        portfolio = tuple(p.strip() for p in portfolio if p.strip()) or (
            tuple(cfg.explore.portfolio) if cfg else ()
        )
        if not 1 <= explore <= MAX_EXPLORE:
            raise UserError(f"--explore must be between 1 and {MAX_EXPLORE}, not {explore}")
        if explore_mode not in ("all", "first"):
            raise UserError(f'the explore mode must be "all" or "first", not {explore_mode!r}')
        # Build the planner and the backends once now, so a missing key or a bad model name stops
        # here, before the goal is written, not later with the goal left for `blitz resume`.
        self.planner(project)
        create_backend(backend, options)
        for spec in portfolio:
            name, _, model = spec.partition(":")
            self.backend_for(project, name, model)
        goal_id = new_id("g")
        goal = Goal(
            id=goal_id,
            project_id=project.id,
            title=title.strip(),
            branch=git.branch_name(title, goal_id),
            base_branch=project.base_branch,
            backend=backend,
            created_at=self.clock.time(),
            max_parallel=max_parallel,
            explore=explore if explore > 1 else 0,
            explore_mode=explore_mode,
            portfolio=portfolio if explore > 1 else (),
        )
        self.store.write(
            goal,
            events=[
                Event(
                    kind=EventKind.GOAL_CREATED,
                    goal_id=goal.id,
                    project_id=project.id,
                    message=goal.title,
                    ts=self.clock.time(),
                )
            ],
        )
        await self.store.flush()
        return goal

    # -- the engine -------------------------------------------------------------------------

    def limits(self, project: Project) -> Limits:
        cfg = self._config_for(project)
        if cfg is None:
            return Limits()
        lim = cfg.limits
        return Limits(
            max_tasks=lim.max_tasks,
            max_recoveries_per_task=lim.max_recoveries_per_task,
            max_recoveries_per_goal=lim.max_recoveries_per_goal,
            max_crash_retries=lim.max_crash_retries,
            max_conflict_reruns=lim.max_conflict_reruns,
            attempt_timeout=lim.attempt_timeout,
        )

    def _config_for(self, project: Project) -> RepoConfig | None:
        try:
            return self.repo_config(Path(project.path))
        except ConfigError:
            return None

    # -- models ---------------------------------------------------------------------------

    def default_backend(self, project: Project) -> str:
        """The project's backend; when none is set, the scripted one if a scenario was given,
        else the embedded agent.

        "scripted" is also what a project gets when nothing chose a backend (the default of
        blitz.toml and of a new project); with no scenario it has nothing to do, so such a project
        gets the embedded agent once a model is configured for it."""
        if (
            self.scenario is None
            and project.backend == "scripted"
            and self.model_name("agent", project)
        ):
            return "embedded"
        return project.backend or ("scripted" if self.scenario is not None else "embedded")

    def model_name(self, role: str, project: Project) -> str:
        """The model for a role ("planner", "recovery", "agent"): the command line first, then
        the project's blitz.toml, then BLITZ_<ROLE>_MODEL and BLITZ_MODEL; "" if none."""
        cfg = self._config_for(project)
        env_role = getattr(self.settings, f"{role}_model", "")
        for candidate in (
            self.models.get(role, ""),
            self.models.get("default", ""),
            getattr(cfg.models, role) if cfg else "",
            cfg.models.default if cfg else "",
            env_role,
            self.settings.model,
        ):
            if candidate:
                return candidate
        return ""

    def providers(self) -> ProviderConfig:
        from blitz.llm.models import ProviderConfig  # pydantic-ai: only when models are used

        s = self.settings

        def secret(value: SecretStr | None) -> str:
            return value.get_secret_value() if value is not None else ""

        config = ProviderConfig(
            anthropic_api_key=secret(s.anthropic_api_key),
            anthropic_base_url=s.anthropic_base_url,
            openai_api_key=secret(s.openai_api_key),
            openai_base_url=s.openai_base_url,
            compatible_base_url=s.compatible_base_url,
            timeout=s.model_timeout,
        )
        if s.compatible_api_key is not None:
            config = dataclasses.replace(config, compatible_api_key=secret(s.compatible_api_key))
        return config

    def prices(self) -> PriceTable:
        """The built-in price table, overridden by BLITZ_PRICES_FILE when set."""
        from blitz.llm.usage import PriceTable  # pydantic-ai: only when models are used

        path = self.settings.prices_file
        if path is None:
            return PriceTable()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the price table {path}: {exc}") from exc
        return PriceTable.from_settings(data)

    def has_planner(self, project: Project) -> bool:
        """Whether goals of this project can be planned without a plan file."""
        scripted_plan = self.scenario is not None and self.scenario.plan is not None
        return scripted_plan or bool(self.model_name("planner", project))

    def planner(self, project: Project) -> Planner:
        """The model planner when a planner model is configured, else the scripted one."""
        name = self.model_name("planner", project)
        if not name:
            return ScriptedPlanner(self.scenario)
        from blitz.llm.models import build_model, parse_model
        from blitz.llm.planner import LLMPlanner

        spec = parse_model(name)
        recovery_name = self.model_name("recovery", project) or name
        recovery_spec = parse_model(recovery_name)
        providers = self.providers()
        return LLMPlanner(
            model=build_model(spec, providers),
            spec=spec,
            prices=self.prices(),
            clock=self.clock,
            breakers=self.breakers,
            recovery_model=build_model(recovery_spec, providers),
            recovery_spec=recovery_spec,
        )

    def backend_for(self, project: Project, name: str, model: str = "") -> AgentBackend:
        """The backend ``name`` running ``model`` ("" = its default) for ``project``; agent CLIs
        are guarded against edits outside their worktree. A ConfigError if it cannot be made."""
        options = self.backend_options(project)
        check_name(name, options.commands)
        if model and name == "embedded":
            options = dataclasses.replace(options, model=_provider_model(model))
        backend = create_backend(name, options)
        if name in ("scripted", "embedded"):
            return backend  # the scripted one is a fake; the embedded one confines its tools
        from blitz.backends.guard import GuardedBackend

        return GuardedBackend(backend)

    def judge(self, project: Project) -> Judge | None:
        """The model that breaks ties between passing best-of-N candidates, if one is set."""
        cfg = self._config_for(project)
        if cfg is None or not cfg.explore.judge:
            return None
        from blitz.llm.judge import ModelJudge
        from blitz.llm.models import build_model, parse_model

        spec = parse_model(cfg.explore.judge)
        return ModelJudge(build_model(spec, self.providers()), spec=spec, prices=self.prices())

    def backend_options(self, project: Project) -> BackendOptions:
        cfg = self._config_for(project)
        agent = cfg.agent if cfg else None
        return BackendOptions(
            claude_code=cfg.claude_code if cfg else None,
            codex=cfg.codex if cfg else None,
            commands=dict(cfg.backends) if cfg else {},
            env=self.provider_env(),
            tools_dir=self.settings.home / "tools",
            scenario=self.scenario,
            model=self.model_name("agent", project),
            providers=self.providers(),
            prices=self.prices(),
            clock=self.clock,
            breakers=self.breakers,
            max_turns=agent.max_turns if agent else 60,
            max_tokens=agent.max_tokens if agent else 2_000_000,
            max_cost_usd=(agent.max_cost_usd or None) if agent else None,
            stuck_repeats=agent.stuck_repeats if agent else 3,
        )

    def provider_env(self) -> dict[str, str]:
        """Provider keys and base URLs, for agent CLIs that call the providers themselves."""
        s = self.settings
        env = {
            "ANTHROPIC_API_KEY": s.anthropic_api_key.get_secret_value()
            if s.anthropic_api_key
            else "",
            "ANTHROPIC_BASE_URL": s.anthropic_base_url,
            "OPENAI_API_KEY": s.openai_api_key.get_secret_value() if s.openai_api_key else "",
            "OPENAI_BASE_URL": s.openai_base_url,
        }
        return {k: v for k, v in env.items() if v}

    def services(self, project: Project, goal: Goal, *, planner: Planner | None = None) -> Services:
        ws = self.workspace(Path(project.path))
        cfg = self._config_for(project)
        token = self.settings.github_token.get_secret_value() if self.settings.github_token else ""
        api_url = self.settings.github_api_url or (
            cfg.github.api_url if cfg else "https://api.github.com"
        )
        backend = self.backend_for(project, goal.backend or self.default_backend(project))
        made: dict[tuple[str, str], AgentBackend] = {}

        def backend_for(name: str, model: str) -> AgentBackend:
            if (name, model) not in made:
                made[name, model] = self.backend_for(project, name, model)
            return made[name, model]

        return Services(
            planner=planner or self.planner(project),
            backend=backend,
            workspace=ws,
            validator=Validator(project.gates),
            publish=Publisher(
                workspace=ws,
                goals_dir=self.settings.home / "goals",
                github_token=token,
                github_api_url=api_url,
                fault=self.fault,
            ),
            limits=self.limits(project),
            breaker=BreakerPolicy(threshold=cfg.breaker.threshold, cooldown=cfg.breaker.cooldown)
            if cfg
            else BreakerPolicy(),
            scripted=backend.name == "scripted",
            goal_budget_usd=(cfg.budget.goal_usd or None) if cfg else None,
            project_budget_usd=(cfg.budget.project_usd or None) if cfg else None,
            backend_for=backend_for,
            judge=self.judge(project),
            routes=tuple(
                dict.fromkeys(
                    r
                    for r in (
                        backend.name,
                        *goal.portfolio,
                        project.fallback_backend,
                        *(cfg.backends if cfg else ()),
                    )
                    if r
                )
            ),
        )

    def engine(
        self,
        *,
        planners: dict[str, Planner] | None = None,
        return_when_blocked: bool = False,
        keep_alive: bool = False,
    ) -> Engine:
        """An engine over this app's store; ``planners`` overrides the planner per goal id;
        ``return_when_blocked``: stop once every goal waits on a paused project."""
        overrides = planners or {}
        board = self.breakers
        return Engine(
            store=self.store,
            clock=self.clock,
            router=Router(board, global_limit=self.settings.max_parallel),
            breakers=board,
            services=lambda project, goal: self.services(
                project, goal, planner=overrides.get(goal.id)
            ),
            fault=self.fault,
            return_when_blocked=return_when_blocked,
            keep_alive=keep_alive,
        )

    def file_planner(self, project: Project, plan: object) -> Planner:
        from blitz.domain import Plan

        assert isinstance(plan, Plan)
        return FilePlanner(plan, self.planner(project))

    async def aclose(self) -> None:
        await self.store.aclose()


def _apply_config(project: Project, cfg: RepoConfig) -> Project:
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


def _provider_model(model: str) -> str:
    """A model for the embedded agent as provider:model; a bare name gets its usual provider
    ("gpt-5" -> "openai:gpt-5", "claude-sonnet-4-6" -> "anthropic:claude-sonnet-4-6")."""
    if ":" in model:
        return model
    if model.startswith("claude"):
        return f"anthropic:{model}"
    if model.startswith(("gpt", "o1", "o3", "o4", "codex")):
        return f"openai:{model}"
    return model


async def _current_branch(ws: git.Workspace) -> str:
    try:
        branch = await ws.current_branch()
    except UserError:
        # No current branch may mean no repository at all: check() then says what is wrong.
        try:
            await ws.rev_parse("HEAD")
        except GitError:
            await ws.check(base_branch="HEAD", allow_dirty=True)
        raise
    except Exception as exc:
        raise RepositoryError(f"cannot read the current branch of {ws}: {exc}") from exc
    if not branch or branch == "HEAD":
        raise RepositoryError(
            "the repository is on a detached HEAD: check out the branch goals should start from, "
            "or set [project] base_branch in blitz.toml"
        )
    return branch
