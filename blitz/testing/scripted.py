"""The scripted planner and the scripted agent backend.

They follow a *scenario* instead of calling a model, so the whole engine (git, gates, recovery,
store, PR) runs for real without a model or a network. A scenario is YAML or JSON::

    summary: Add a calculator
    tasks:                       # the plan, in the plan-file format (docs/plan-format.md)
      - {id: add, title: Add add(), depends_on: []}
    agent:                       # what the agent does, per task id, one list per attempt
      add:
        - - write: {path: calc.py, content: "def add(a, b):\\n    return a - b\\n"}
        - - replace: {path: calc.py, old: "a - b", new: "a + b"}
    recovery:                    # what the planner answers, per task id, one per recovery
      add:
        - {root_cause: "subtracts", action: retry, guidance: "use +"}

Agent actions: ``write``/``append`` {path, content}, ``replace`` {path, old, new}, ``delete``
path, ``run`` command, ``say`` text, ``fail`` message, ``crash`` message, ``config_error``
message (as if the provider rejected the key), ``spend`` {cost_usd, input, output, cached} (as
if the model calls cost that), ``sleep`` seconds.
The last attempt's actions repeat for later attempts. Best-of-N candidates of a task follow
``<task id>#<candidate>`` (``add#2``) when the scenario has it, else the task's own list. A task
with no entry does nothing (and the engine then fails it for changing no files, unless the task
allows that). Without a recovery entry the planner retries the task once with the failure as
guidance; after that it has no answer and the task stays failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from blitz import process
from blitz.backends.base import AgentBackend, AgentRequest, AgentResult, MessageSink
from blitz.backends.options import BackendOptions
from blitz.domain import Plan, RecoveryAction, RecoveryPlan, Usage
from blitz.errors import PlanError, RunError, UserError
from blitz.planner import (
    Planned,
    PlanRequest,
    Recovered,
    RecoveryRequest,
    parse_plan,
    parse_recovery,
)
from blitz.sandbox import Policy

SCRIPTED_LABEL = "scripted (no model: planner and agent follow a fixed scenario)"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSeen:
    """What the scripted planner was asked: the request, and the files of the tree it was shown
    (relative paths, ``.git`` left out) with their text, read while planning."""

    request: PlanRequest
    files: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    plan: Plan | None = None
    agent: Mapping[str, tuple[tuple[Mapping[str, Any], ...], ...]] = field(default_factory=dict)
    recovery: Mapping[str, tuple[RecoveryPlan, ...]] = field(default_factory=dict)
    seen: list[PlanSeen] = field(default_factory=list, compare=False)
    """Every plan request answered (tests read it)."""

    @classmethod
    def from_data(cls, data: Any) -> Scenario:
        if not isinstance(data, dict):
            raise PlanError(["a scenario must be a mapping"])
        plan = None
        if "tasks" in data:
            plan = parse_plan({k: data[k] for k in ("summary", "tasks") if k in data})
        agent: dict[str, tuple[tuple[Mapping[str, Any], ...], ...]] = {}
        for task_id, attempts in (data.get("agent") or {}).items():
            if not isinstance(attempts, list) or not all(isinstance(a, list) for a in attempts):
                raise PlanError(
                    [f"agent.{task_id}: expected a list of attempts (lists of actions)"]
                )
            agent[str(task_id)] = tuple(tuple(a) for a in attempts)
        recovery = {
            str(task_id): tuple(parse_recovery(r) for r in answers)
            for task_id, answers in (data.get("recovery") or {}).items()
        }
        return cls(plan=plan, agent=agent, recovery=recovery)

    @classmethod
    def load(cls, path: Path) -> Scenario:
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise UserError(f"cannot read scenario {path}: {exc}") from exc
        return cls.from_data(data)


class ScriptedPlanner:
    """A planner that answers from a scenario."""

    name = "scripted"

    def __init__(self, scenario: Scenario | None = None, *, sandbox: Policy | None = None) -> None:
        """``sandbox``: the policy the scenario's ``run`` steps are jailed under (as an agent's
        commands are); None runs them unconfined."""
        self.scenario = scenario or Scenario()
        self.sandbox = sandbox
        self._answered: dict[str, int] = {}

    async def plan(self, request: PlanRequest) -> Planned:
        files = await asyncio.to_thread(_tree_text, request.repo)
        self.scenario.seen.append(PlanSeen(request=request, files=files))
        if self.scenario.plan is None:
            raise UserError(
                "the scripted planner has no plan for this goal: pass --plan FILE, a scenario "
                "with tasks, or configure a model"
            )
        return Planned(plan=self.scenario.plan)

    async def recover(self, request: RecoveryRequest) -> Recovered:
        answers = self.scenario.recovery.get(request.task.id, ())
        index = len([r for r in request.earlier if r.task_id == request.task.id])
        if index < len(answers):
            return Recovered(recovery=answers[index])
        if index == 0:
            return Recovered(
                recovery=RecoveryPlan(
                    root_cause="scripted: "
                    + (request.error.splitlines()[0] if request.error else "failure"),
                    action=RecoveryAction.RETRY,
                    guidance=f"The previous attempt failed:\n{request.error}",
                )
            )
        # Nothing left to try: the task stays failed (its dependents are blocked and the goal
        # fails) rather than being skipped into a goal that claims success.
        raise RunError(f"the scripted planner has no further recovery for task {request.task.id!r}")


def _tree_text(root: Path, limit: int = 200) -> dict[str, str]:
    """Up to ``limit`` small text files under ``root``, by relative path (hidden directories
    and ``node_modules`` left out)."""
    found: dict[str, str] = {}
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "node_modules")
        for name in sorted(files):
            path = Path(top) / name
            if len(found) >= limit:
                return found
            if path.is_file() and path.stat().st_size <= 65_536:
                text = path.read_text(encoding="utf-8", errors="replace")
                found[path.relative_to(root).as_posix()] = text
    return found


def _inside(worktree: Path, rel: str) -> Path:
    """Resolve ``rel`` inside the worktree, refusing anything that leads out of it."""
    root = worktree.resolve()
    target = (root / rel).resolve()
    if Path(rel).is_absolute() or not target.is_relative_to(root):
        raise PermissionError(f"path {rel!r} is outside the worktree")
    return target


class ScriptedBackend:
    """An agent backend that performs a scenario's file edits and commands, at once."""

    name = "scripted"

    def __init__(self, scenario: Scenario | None = None, *, sandbox: Policy | None = None) -> None:
        """``sandbox``: the policy the scenario's ``run`` steps are jailed under (as an agent's
        commands are); None runs them unconfined."""
        self.scenario = scenario or Scenario()
        self.sandbox = sandbox

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        attempts: tuple[tuple[Mapping[str, Any], ...], ...] = ()
        if request.candidate:  # a best-of-N candidate may have a script of its own
            attempts = self.scenario.agent.get(f"{request.task_id}#{request.candidate}", ())
        attempts = attempts or self.scenario.agent.get(request.task_id, ())
        if not attempts:
            return AgentResult(ok=True, summary="scripted: no actions for this task")
        actions = attempts[min(request.attempt, len(attempts)) - 1]
        said: list[str] = []
        spent = [Usage()]

        async def say(text: str) -> None:
            said.append(text)
            if on_message is not None:
                await on_message(text)

        try:
            for action in actions:
                if not isinstance(action, Mapping) or len(action) != 1:
                    return AgentResult(ok=False, error=f"scripted: malformed action {action!r}")
                ((verb, arg),) = action.items()
                if verb == "spend":  # pretend the model calls cost this much
                    usage = Usage(
                        input_tokens=int(arg.get("input", 0)),
                        output_tokens=int(arg.get("output", 0)),
                        cached_tokens=int(arg.get("cached", 0)),
                        cost_usd=float(arg.get("cost_usd", 0.0)),
                    )
                    spent[0] += usage
                    if request.on_usage is not None:
                        request.on_usage(usage)
                    continue
                result = await self._act(request.worktree, verb, arg, say)
                if result is not None:
                    return dataclasses.replace(result, usage=spent[0])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            await say(f"error: {exc}")
            return AgentResult(ok=False, error=f"scripted agent: {exc}", messages=tuple(said[-20:]))
        return AgentResult(
            ok=True,
            summary=f"scripted: performed {len(actions)} action(s)",
            messages=tuple(said[-20:]),
            usage=spent[0],
        )

    async def _act(
        self, worktree: Path, verb: str, arg: Any, say: MessageSink
    ) -> AgentResult | None:
        if verb in ("write", "append"):
            path = _inside(worktree, arg["path"])
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a" if verb == "append" else "w", encoding="utf-8") as f:
                f.write(arg["content"])
            await say(f"{verb} {arg['path']}")
        elif verb == "replace":
            path = _inside(worktree, arg["path"])
            text = path.read_text(encoding="utf-8")
            if text.count(arg["old"]) != 1:
                raise ValueError(f"{arg['path']}: the text to replace must occur exactly once")
            path.write_text(text.replace(arg["old"], arg["new"]), encoding="utf-8")
            await say(f"edit {arg['path']}")
        elif verb == "delete":
            _inside(worktree, str(arg)).unlink()
            await say(f"delete {arg}")
        elif verb == "run":
            if self.sandbox is not None:
                done = await self.sandbox.jail(worktree).run(str(arg), timeout=120)
            else:
                done = await process.run(
                    str(arg), cwd=worktree, timeout=120, env=process.clean_env()
                )
            await say(f"$ {arg}\n{done.tail(2000)}")
        elif verb == "say":
            await say(str(arg))
        elif verb == "sleep":
            await asyncio.sleep(float(arg))
        elif verb == "fail":
            await say(f"giving up: {arg}")
            return AgentResult(ok=False, error=str(arg))
        elif verb == "crash":
            return AgentResult(ok=False, crashed=True, error=str(arg))
        elif verb == "config_error":
            return AgentResult(ok=False, error=str(arg), config_error=str(arg))
        else:
            raise ValueError(f"unknown action {verb!r}")
        return None


def create_backend(options: BackendOptions) -> AgentBackend:
    """The ``scripted`` backend, as the backend registry makes it by name (so production code
    loads this module only when the name is chosen)."""
    return ScriptedBackend(options.scenario, sandbox=options.sandbox)
