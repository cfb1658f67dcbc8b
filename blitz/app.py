"""Wiring: settings and per-repository configuration in, a ready engine out.

This is the one place that chooses concrete adapters (SQL store, git workspace, validator,
backend, planner, publisher) for the interfaces the conductor knows. The CLI, the daemon and the
tests build an :class:`App` and ask it for projects, goals and an engine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import actions, confinement, executors, tempdirs
from blitz import workspace as git
from blitz.backends.options import agent_options
from blitz.backends.registry import BackendOptions, check_name, create_backend
from blitz.breaker import BreakerBoard, BreakerPolicy
from blitz.clock import Clock, SystemClock
from blitz.conductor import Engine, Limits, Services
from blitz.config import RepoConfig, SandboxConfig, load_repo_config, setup_of
from blitz.domain import Goal, Project
from blitz.envsetup import EnvSetup, SetupSpec, cache_dir
from blitz.errors import ConfigError, UserError
from blitz.executors import lifecycle
from blitz.gatecache import GateFlights
from blitz.live_gates import LiveGates
from blitz.planner import FilePlanner, Planner
from blitz.publish import Publisher
from blitz.redact import register_secret
from blitz.router import Router
from blitz.sandbox import Policy
from blitz.settings import Settings
from blitz.store.sql import SqlStore
from blitz.validation import Validator
from blitz.worktrees import Worktrees

if TYPE_CHECKING:
    from blitz.backends.base import AgentBackend
    from blitz.conductor.selection import Judge
    from blitz.executors.base import Executor
    from blitz.llm.models import ProviderConfig
    from blitz.llm.usage import PriceTable
    from blitz.proxy import ModelProxy
    from blitz.testing.scripted import Scenario


MODEL_ROLES = ("planner", "recovery", "agent", "judge")
"""The roles a model plays for a goal (and the keys of :attr:`App.models`, with "default")."""


class App:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        scenario: Scenario | None = None,
        models: Mapping[str, str] | None = None,
        executor: Executor | None = None,
    ) -> None:
        """``models`` are command-line choices by role ("default" or one of
        :data:`MODEL_ROLES`); they win over a goal's own, blitz.toml and the environment.
        ``executor``: where attempts run (None: the settings' ``[executor]``, made on first
        use)."""
        self.settings = settings
        self.clock = clock or SystemClock()
        self.scenario = scenario
        self.models = dict(models or {})
        settings.home.mkdir(parents=True, exist_ok=True)
        for secret in settings.secrets():
            register_secret(secret)
        self.store = SqlStore(settings.db_url)
        # One run of a gate per input at a time, for every goal and every process here.
        self.gate_flights = GateFlights(lock_dir=settings.locks)
        self.live_gates = LiveGates()  # gates' output while they run, for the dashboard
        # One board for the engine and every model call, so provider breakers are shared.
        self.breakers = BreakerBoard(self.clock, records=self.store.load_breakers())
        self._crashed_at: set[str] = set()
        self._proxy: ModelProxy | None = None
        self.worktrees = Worktrees(
            worktrees_root=settings.worktrees, lock_dir=settings.locks, home=settings.home
        )
        """Each repository's warm worktree pool and each project's environment set-up."""
        self._socket: Path | None = None
        self._executor: Executor | None = executor

    # -- the executor -------------------------------------------------------------------------

    @property
    def executor(self) -> Executor:
        """Where every project's attempts run: one executor for this process (the settings'
        ``[executor]``), made on first use; the ray executor connects only when started."""
        if self._executor is None:
            name, options = self.settings.executor_options()
            self._executor = executors.load(name, **options)
        return self._executor

    async def start_executor(self) -> None:
        """Connect the executor to where attempts run (a Ray cluster): one that cannot be
        reached stops a daemon at its start, with a ConfigError naming the address."""
        name, options = self.settings.executor_options()
        await lifecycle.start(self.executor, name, str(options.get("address", "")))

    async def close_executor(self) -> None:
        executor, self._executor = self._executor, None
        await lifecycle.close(executor)

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
        return self.worktrees.workspace(path)

    async def register(self, path: Path, *, name: str = "") -> Project:
        """The project for the repository at ``path``, registering it on first use
        (:func:`blitz.actions.register`)."""
        return (await actions.register(self, path, name=name)).project

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
        follows: str = "",
    ) -> Goal:
        """Check the repository and write a new goal (state PLANNING) for ``project``
        (:func:`blitz.actions.create_goal`); ``follows``: an earlier goal it continues."""
        request = actions.GoalRequest(
            title=title,
            backend=backend,
            max_parallel=max_parallel,
            allow_dirty=allow_dirty,
            explore=explore,
            explore_mode=explore_mode,
            portfolio=portfolio,
            follows=follows,
        )
        return await actions.create_goal(self, project, request)

    # -- the engine -------------------------------------------------------------------------

    def limits(self, project: Project) -> Limits:
        cfg = self.config_for(project)
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

    def config_for(self, project: Project) -> RepoConfig | None:
        """The repository's blitz.toml, or None if it has none or it cannot be read."""
        try:
            return self.repo_config(Path(project.path))
        except ConfigError:
            return None

    # -- models ---------------------------------------------------------------------------

    def default_backend(self, project: Project, goal: Goal | None = None) -> str:
        """The project's backend; when none is set, the scripted one if a scenario was given,
        else the embedded agent.

        "scripted" only plays a scenario (tests, the demo): without one, a project set to it (as
        a project registered with no blitz.toml is) gets the embedded agent, which needs a model
        and is refused before anything starts until one is configured."""
        if self.scenario is None and project.backend in ("scripted", ""):
            return "embedded"
        return project.backend or "scripted"

    def model_name(self, role: str, project: Project, goal: Goal | None = None) -> str:
        """The model for a role ("planner", "recovery", "agent", "judge"): the command line
        first, then the one ``goal`` was started with, then the project's blitz.toml, then
        BLITZ_<ROLE>_MODEL and BLITZ_MODEL; "" if none. The judge is only ever chosen by name
        (--judge-model, ``[explore] judge``): without one, best-of-N breaks no ties by model."""
        cfg = self.config_for(project)
        stored = goal.model_for(role) if goal is not None else ""
        if role == "judge":
            candidates: tuple[str, ...] = (
                self.models.get(role, ""),
                stored,
                cfg.explore.judge if cfg else "",
            )
        else:
            candidates = (
                self.models.get(role, ""),
                self.models.get("default", ""),
                stored,
                getattr(cfg.models, role) if cfg else "",
                cfg.models.default if cfg else "",
                getattr(self.settings, f"{role}_model", ""),
                self.settings.model,
            )
        return next((c for c in candidates if c), "")

    def run_models(self, project: Project, goal: Goal | None = None) -> tuple[str, ...]:
        """The models a goal runs with, as "role=provider:model", to keep with it: a resumed
        goal runs on them whatever the resuming process was given (unless it overrides them)."""
        named = ((role, self.model_name(role, project, goal)) for role in MODEL_ROLES)
        return tuple(f"{role}={model}" for role, model in named if model)

    def providers(self) -> ProviderConfig:
        return self.settings.provider_config()

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

    def has_planner(self, project: Project, goal: Goal | None = None) -> bool:
        """Whether goals of this project can be planned without a plan file."""
        scripted_plan = self.scenario is not None and self.scenario.plan is not None
        return scripted_plan or bool(self.model_name("planner", project, goal))

    def planner(self, project: Project, goal: Goal | None = None) -> Planner:
        """The model planner when a planner model is configured, else the scripted one."""
        name = self.model_name("planner", project, goal)
        if not name:
            from blitz.testing.scripted import (
                ScriptedPlanner,  # the fake, chosen by having no model
            )

            return ScriptedPlanner(self.scenario)
        from blitz.llm.models import build_model, parse_model
        from blitz.llm.planner import LLMPlanner

        spec = parse_model(name)
        recovery_name = self.model_name("recovery", project, goal) or name
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

    def backend_for(
        self, project: Project, name: str, model: str = "", goal: Goal | None = None
    ) -> AgentBackend:
        """The backend ``name`` running ``model`` ("" = its default) for ``project``; agent CLIs
        are guarded against edits outside their worktree. A ConfigError if it cannot be made."""
        options = self.options_for(project, name, model, goal)
        check_name(name, options.commands)
        from blitz.backends.sandboxed import confine

        return confine(name, create_backend(name, options), options.sandbox)

    def judge(self, project: Project, goal: Goal | None = None) -> Judge | None:
        """The model that breaks ties between passing best-of-N candidates, if one is set."""
        name = self.model_name("judge", project, goal)
        if not name:
            return None
        from blitz.llm.judge import ModelJudge
        from blitz.llm.models import build_model, parse_model

        spec = parse_model(name)
        return ModelJudge(build_model(spec, self.providers()), spec=spec, prices=self.prices())

    def options_for(
        self, project: Project, name: str, model: str = "", goal: Goal | None = None
    ) -> BackendOptions:
        """The options backend ``name`` runs with for ``project``, running ``model``."""
        options = self.backend_options(project, goal)
        if model and name == "embedded":
            options = dataclasses.replace(options, model=_provider_model(model))
        return options

    def backend_options(self, project: Project, goal: Goal | None = None) -> BackendOptions:
        cfg = self.config_for(project)
        return BackendOptions(
            claude_code=cfg.claude_code if cfg else None,
            codex=cfg.codex if cfg else None,
            commands=dict(cfg.backends) if cfg else {},
            env=self.provider_env(),
            tools_dir=self.settings.tools,
            scenario=self.scenario,
            model=self.model_name("agent", project, goal),
            providers=self.providers(),
            prices=self.prices(),
            clock=self.clock,
            breakers=self.breakers,
            **agent_options(cfg.agent if cfg else None),
            sandbox=self.sandbox_policy(project),
            proxy=self.model_proxy(),
        )

    def sandbox_policy(self, project: Project) -> Policy:
        """How ``project``'s agents and gates are confined (``[sandbox]``)."""
        cfg = self.config_for(project)
        return confinement.policy(
            self.settings, cfg.sandbox if cfg else SandboxConfig(), self._proxy_socket()
        )

    def env_setup(self, project: Project) -> EnvSetup:
        """``project``'s environment set-up (``[workspace] setup``), run in its jail with its
        package cache under blitz's data directory."""
        cfg = self.config_for(project)
        return EnvSetup(
            spec=setup_of(cfg) if cfg else SetupSpec(),
            policy=self.sandbox_policy(project),
            cache=cache_dir(self.settings.home, project.id),
        )

    def _proxy_socket(self) -> Path:
        """Where the model proxy listens for jailed agents: a short path (a unix socket's name
        is limited to ~100 bytes) private to this process, made on first use."""
        if self._socket is None:
            self._socket = tempdirs.private("blitz-proxy-") / "proxy.sock"
        return self._socket

    def model_proxy(self) -> ModelProxy:
        """blitz's model proxy (started by the first agent CLI that needs it)."""
        if self._proxy is None:
            self._proxy = confinement.model_proxy(self.settings, self.prices(), self.breakers)
        return self._proxy

    def provider_env(self) -> dict[str, str]:
        """Provider keys and base URLs, for agent CLIs that call the providers themselves."""
        return self.settings.provider_env()

    def services(self, project: Project, goal: Goal, *, planner: Planner | None = None) -> Services:
        ws = self.workspace(Path(project.path))
        cfg = self.config_for(project)
        env = self.env_setup(project)
        token = self.settings.github_token.get_secret_value() if self.settings.github_token else ""
        api_url = self.settings.github_api_url or (
            cfg.github.api_url if cfg else "https://api.github.com"
        )
        backend = self.backend_for(
            project, goal.backend or self.default_backend(project, goal), goal=goal
        )
        made: dict[tuple[str, str], AgentBackend] = {}

        def backend_for(name: str, model: str) -> AgentBackend:
            if (name, model) not in made:
                made[name, model] = self.backend_for(project, name, model, goal)
            return made[name, model]

        return Services(
            planner=planner or self.planner(project, goal),
            backend=backend,
            workspace=ws,
            pool=self.worktrees.pool(project, cfg),
            setup=env if env.spec.command.strip() else None,
            validator=Validator(
                project.gates,
                sandbox=self.sandbox_policy(project),
                cache=self.store.gate_results,
                project_id=project.id,
                flights=self.gate_flights,
                packages=env.cache,
                live=self.live_gates,
            ),
            publish=Publisher(
                workspace=ws,
                goals_dir=self.settings.home / "goals",
                github_token=token,
                github_api_url=api_url,
                fault=self.fault,
                unconfined=not self.sandbox_policy(project).confined,
            ),
            limits=self.limits(project),
            breaker=BreakerPolicy(threshold=cfg.breaker.threshold, cooldown=cfg.breaker.cooldown)
            if cfg
            else BreakerPolicy(),
            scripted=backend.name == "scripted",
            goal_budget_usd=(cfg.budget.goal_usd or None) if cfg else None,
            project_budget_usd=(cfg.budget.project_usd or None) if cfg else None,
            backend_for=backend_for,
            judge=self.judge(project, goal),
            publish_retry_for=self.settings.publish_retry_for,
            executor=self.executor,
            labels=tuple(cfg.executor.labels) if cfg else (),  # worker labels every attempt needs
            fetch_remote=cfg.executor.remote if cfg and cfg.executor.sync == "fetch" else "",
            routes=_routes(
                backend.name,
                *goal.portfolio,
                project.fallback_backend,
                *(cfg.backends if cfg else ()),
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
            lease=self.settings.lease_seconds,
        )

    def file_planner(self, project: Project, plan: object) -> Planner:
        from blitz.domain import Plan

        assert isinstance(plan, Plan)
        return FilePlanner(plan, self.planner(project))

    async def aclose(self) -> None:
        await self.close_executor()
        if self._proxy is not None:
            await self._proxy.stop()
        if self._socket is not None:
            shutil.rmtree(self._socket.parent, ignore_errors=True)
        await self.store.aclose()


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


def _routes(*backends: str) -> tuple[str, ...]:
    """The backends a planner may route a task to, the goal's own first; none when the goal's
    own is the only one (there is no choice to offer: a small model offered its own backend
    alone wrote the goal's whole model spec as the task's model, and was sent back for it)."""
    found = tuple(dict.fromkeys(b for b in backends if b))
    return found if len(found) > 1 else ()
