"""The model-backed planner: a goal becomes a checked plan, a failure a checked recovery plan.

:class:`LLMPlanner` asks a pydantic-ai agent for typed output (:class:`PlanOutput`,
:class:`RecoveryOutput`, which mirror ``docs/plan-format.md``) and checks it with the rules of a
plan file (:func:`blitz.planner.parse_plan`, :func:`~blitz.planner.parse_recovery`,
:func:`~blitz.planner.check_plan`). An answer that breaks them is sent back in the same
conversation with every problem listed, at most ``max_reasks`` times.

Bounds, so a confused model cannot spin: pydantic-ai re-asks a reply that does not fit the schema
at most :data:`OUTPUT_RETRIES` times within one call (``UsageLimits`` caps the requests of a call
to match); a call is retried on transient provider failures only by
:func:`blitz.llm.errors.call_with_retries`, which also feeds the provider's circuit breaker; and
``auto`` output mode switches once, for good, from tool output to JSON in the text
(:class:`~pydantic_ai.PromptedOutput`) when the model does not use the output tool, as small local
models often fail to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai import (
    Agent,
    ModelResponse,
    PromptedOutput,
    ToolOutput,
    UsageLimitExceeded,
    UsageLimits,
    capture_run_messages,
)
from pydantic_ai.exceptions import OutputTokenLimitExceeded
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from pydantic_ai.usage import RequestUsage

from blitz.breaker import BreakerBoard
from blitz.clock import Clock
from blitz.context import repo_context
from blitz.domain import GateResult, Plan, Recovery, RecoveryAction, RecoveryPlan, Usage
from blitz.errors import PlanError
from blitz.llm.errors import ModelOutputError, ProviderConfigError, call_with_retries
from blitz.llm.models import ModelSpec, model_settings
from blitz.llm.usage import PriceTable, usage_of
from blitz.planner import (
    MAX_ATTEMPTS,
    Planned,
    PlanRequest,
    Recovered,
    RecoveryRequest,
    check_plan,
    parse_plan,
    parse_recovery,
)

OutputMode = Literal["tool", "prompted", "auto"]

OUTPUT_RETRIES = 1
"""pydantic-ai's own re-asks, within one call, of a reply that does not fit the output schema."""

PLAN_TOOL = "submit_plan"
RECOVERY_TOOL = "submit_recovery"

GATE_TAIL = 2_000
"""Characters of a failed gate's output shown to recovery (its end, where the error is)."""

DIFF_HEAD = 6_000
"""Characters of the failed attempt's diff shown to recovery."""

LAST_MESSAGES = 4
MESSAGE_TAIL = 1_500
"""The agent's last messages shown to recovery, and the characters kept of each (the end)."""

MAX_IDS_SHOWN = 500
"""Existing task ids listed to recovery; a collision among the rest is still caught and re-asked."""

PROBLEM_DETAIL = 1_500
"""Characters of pydantic-ai's validation errors quoted back to the model."""

T = TypeVar("T")
Out = TypeVar("Out", bound=BaseModel)


# -- what the model answers --------------------------------------------------------------------


class CheckOutput(BaseModel):
    """An acceptance check run after the project's gates."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["file_exists", "command"]
    path: str = Field(default="", description="file_exists: a path relative to the repository root")
    command: str = Field(
        default="", description="command: a shell command run in the task's worktree; exit 0 passes"
    )
    timeout: float = Field(default=300.0, gt=0, description="seconds a command may take")


class TaskOutput(BaseModel):
    """One task, done by one coding agent that sees only its title and instructions."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="unique; 1-64 letters, digits, '.', '_' or '-', e.g. 'add-limiter'")
    title: str = Field(description="one line; becomes the commit message")
    instructions: str = Field(
        description="self-contained: what to change, where, and how to tell it is done"
    )
    depends_on: list[str] = Field(
        default_factory=list, description="ids of tasks whose changes this task needs"
    )
    priority: int = Field(default=0, description="higher runs first among ready tasks")
    files: list[str] = Field(
        default_factory=list, description="files the task is expected to touch (a hint)"
    )
    checks: list[CheckOutput] = Field(default_factory=list)
    allow_empty: bool = Field(
        default=False, description="true only if the task may rightly change no file"
    )
    backend: str = Field(
        default="",
        description="empty for the goal's agent; else a backend the instructions offer, for a "
        "task another agent does better",
    )
    model: str = Field(
        default="",
        description="empty for the default model; else the model the instructions pair with "
        "the backend: a cheaper one for a routine, mechanical task, a stronger one for a hard one",
    )
    attempts: int | None = Field(
        default=None,
        description=f"omit for most tasks; 2 or 3 (at most {MAX_ATTEMPTS}) for a risky task: "
        "that many agents try it side by side and the best passing result is kept",
    )


class PlanOutput(BaseModel):
    """The plan for the goal: a summary and the tasks."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="one or two sentences for the pull request")
    tasks: list[TaskOutput]


class RecoveryOutput(BaseModel):
    """The diagnosis of a failed task and what to do about it."""

    model_config = ConfigDict(extra="forbid")

    root_cause: str = Field(description="why the task failed, in a sentence or two")
    action: Literal["retry", "insert", "replace", "skip", "abort"]
    guidance: str = Field(
        default="", description="retry and insert: advice added to the failed task's instructions"
    )
    tasks: list[TaskOutput] = Field(
        default_factory=list, description="insert and replace: the new tasks; otherwise empty"
    )


# -- the prompts -------------------------------------------------------------------------------

_PLAN_RULES = """\
You plan software work for autonomous coding agents. You get a goal about a git repository and a
view of that repository; answer with a plan: a short summary and a list of tasks.

Each task is done by a separate coding agent in its own git worktree, which starts from the work of
the tasks it depends on. The agent sees the repository and the task's title and instructions,
nothing else: not the goal, not this conversation, not the other tasks.

Rules for a good plan:
- Small, independent, verifiable tasks. Each task makes one coherent change to a few files and
  leaves the project building with its tests passing. Prefer a few solid tasks to many tiny ones.
- ids: unique, 1-64 characters from letters, digits, '.', '_' and '-' (e.g. "add-limiter").
- depends_on: list a task's id only when this task needs that task's changes. Tasks without
  dependencies on each other run in parallel. No cycles.
- priority: an integer, default 0; higher runs first among ready tasks. Raise it for tasks that
  unblock others.
- instructions: self-contained and specific: which files and functions to change or add, what
  behaviour to implement, which tests to write, how to tell it is done.
- files: the files the task is expected to touch (a hint for the agent and for reviewers).
- checks: optional acceptance checks run after the project's gates:
  {"kind": "file_exists", "path": "relative/path"} or
  {"kind": "command", "command": "shell command run in the worktree", "timeout": seconds}.
- allow_empty: true only for a task that may rightly change no file.
- attempts: leave it out for most tasks. For a risky task (a subtle bug, a tricky algorithm, a
  change with several plausible designs) set 2 or 3, at most {max_attempts}: that many agents try
  it side by side and the best passing result is kept. Each attempt costs a full agent run.
{routing}
- At most {max_tasks} tasks.

Every task is judged by the project's validation gates, run in its worktree; a task whose change
makes them fail has failed:
{gates}
"""

_RECOVERY_RULES = """\
You diagnose a failed task of an automated coding run and decide what happens next. A coding
agent worked on the task in its own git worktree; the project's validation gates or the task's
checks then failed, or the agent gave up. Find the root cause, not the symptom: read the gate
output, the diff and the agent's last messages.

Choose one action:
- retry: the task is right but the attempt went wrong; give guidance, added to the task's
  instructions for the next attempt (what went wrong and how to do it right).
- insert: something else must be done first; give the new tasks (the failed task will depend on
  them, then run again with the guidance).
- replace: the task is wrong or too big; give the tasks that take its place (the tasks that
  depended on it will depend on them).
- skip: the task is unnecessary or its work is already done; the goal can succeed without it.
- abort: the goal cannot succeed (impossible, contradictory, or a human must decide).

New tasks use the plan task format: unique ids of 1-64 letters, digits, '.', '_' or '-' that no
existing task has, a one-line title, self-contained instructions (the agent sees only them and the
repository), depends_on only when needed. New tasks must not depend on the failed task. Give tasks
only for insert and replace. Do not repeat a recovery that was already tried for this task.
"""


def _routing_text(backends: Sequence[str]) -> str:
    """The rule on ``backend`` and ``model``: the choices are the request's backend specs, each
    ``backend`` or ``backend:model`` (the model after the first colon, as in a portfolio)."""
    if not backends:
        return "- backend, model: leave them empty (no other agents are configured)."
    choices = []
    for spec in backends:
        backend, _, model = spec.partition(":")
        choices.append(
            f'  - backend "{backend}", ' + (f'model "{model}"' if model else "model empty")
        )
    return (
        "- backend, model: leave them empty for most tasks. For a task another agent or model\n"
        "  does better (a cheaper model for a routine, mechanical change, a stronger one for a\n"
        "  hard one) set both to one of these pairs:\n" + "\n".join(choices)
    )


def _gates_text(gates: dict[str, str]) -> str:
    lines = [f"- {name}: `{command}`" for name, command in gates.items() if command]
    return "\n".join(lines) if lines else "(no gates configured: the task checks judge the work)"


def _tail(text: str, chars: int) -> str:
    text = text.rstrip()
    return text if len(text) <= chars else "[... earlier output cut ...]\n" + text[-chars:]


def _head(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars] + "\n[... rest cut ...]"


def _fenced(text: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}\n{text}\n{fence}"


def _gate_lines(gate: GateResult) -> list[str]:
    verdict = "passed" if gate.passed else "FAILED"
    if gate.timed_out:
        verdict += " (timed out)"
    elif gate.exit_code is not None and not gate.passed:
        verdict += f" (exit {gate.exit_code})"
    if gate.preexisting:
        verdict += ", as it already did on the base branch"
    lines = [f"- {gate.name} `{gate.command}`: {verdict}"]
    if gate.new_failures:
        lines.append("  new failures: " + ", ".join(gate.new_failures))
    if not gate.passed and gate.output_tail.strip():
        lines.append(_fenced(_tail(gate.output_tail, GATE_TAIL)))
    return lines


def _earlier_line(recovery: Recovery) -> str:
    line = f"- {recovery.action.value}: {recovery.root_cause}"
    if recovery.guidance:
        line += f" (guidance: {_head(recovery.guidance, 300)})"
    if recovery.new_tasks:
        line += f" (new tasks: {', '.join(recovery.new_tasks)})"
    return line


def _ids_text(ids: Sequence[str]) -> str:
    if not ids:
        return "(none)"
    shown = ", ".join(ids[:MAX_IDS_SHOWN])
    more = len(ids) - MAX_IDS_SHOWN
    return shown + (f", ... and {more} more" if more > 0 else "")


def _recovery_prompt(request: RecoveryRequest) -> str:
    task, attempt = request.task, request.attempt
    parts = [
        f"Goal: {request.goal}",
        f"Failed task: {task.id}: {task.title}",
        "Instructions:\n" + _fenced(task.instructions or task.title),
    ]
    if task.guidance:
        parts.append(f"Guidance it was given:\n{task.guidance}")
    if task.depends_on:
        parts.append(f"It depends on: {', '.join(task.depends_on)}")
    parts.append(f"Attempt {attempt.number} failed: {request.error or attempt.error or '?'}")
    if attempt.summary:
        parts.append(f"The agent's summary: {_head(attempt.summary, MESSAGE_TAIL)}")
    if request.gates:
        lines = [line for gate in request.gates for line in _gate_lines(gate)]
        parts.append("Gates and checks:\n" + "\n".join(lines))
    if request.diff.strip():
        parts.append("The attempt's diff:\n" + _fenced(_head(request.diff.rstrip(), DIFF_HEAD)))
    elif attempt.diff_stat:
        parts.append(f"The attempt's diff stat:\n{attempt.diff_stat}")
    else:
        parts.append("The attempt changed no files.")
    if request.messages:
        last = request.messages[-LAST_MESSAGES:]
        parts.append(
            "The agent's last messages:\n"
            + "\n".join(_fenced(_tail(m, MESSAGE_TAIL)) for m in last)
        )
    earlier = [r for r in request.earlier if r.task_id == task.id]
    if earlier:
        parts.append(
            "Recoveries already tried for this task:\n" + "\n".join(map(_earlier_line, earlier))
        )
    parts.append(f"Existing task ids (new tasks may not reuse them): {_ids_text(request.task_ids)}")
    return "\n\n".join(parts)


# -- judging answers ---------------------------------------------------------------------------


def _recovery_problems(recovery: RecoveryPlan, request: RecoveryRequest) -> list[str]:
    """What the graph rules and the action say against ``recovery`` (empty when it is fine)."""
    problems: list[str] = []
    action = recovery.action
    if recovery.tasks and action not in (RecoveryAction.INSERT, RecoveryAction.REPLACE):
        problems.append(
            f"action {action.value!r} takes no tasks; use 'insert' to add tasks before a retry"
        )
    if recovery.tasks:
        try:
            check_plan(recovery.tasks, existing=request.task_ids)
        except PlanError as exc:
            problems.extend(exc.problems)
        problems.extend(
            f"task {t.id!r} depends on the failed task {request.task.id!r}, which "
            + ("is being replaced" if action is RecoveryAction.REPLACE else "will depend on it")
            for t in recovery.tasks
            if request.task.id in t.depends_on
        )
    return problems


def _output_problem(exc: BaseException) -> str:
    """One line for the model on why its reply could not be used, quoting pydantic-ai's errors."""
    chain = [exc]
    while (cause := chain[-1].__cause__) is not None and len(chain) < 10:
        chain.append(cause)
    if any(isinstance(e, OutputTokenLimitExceeded) for e in chain):
        return (
            "the answer was cut off at the output token limit: answer again, shorter "
            "(fewer tasks, more concise instructions)"
        )
    if any(isinstance(e, UsageLimitExceeded) for e in chain):
        return "the answer took too many turns: answer at once with the complete result"
    detail = " ".join(str(chain[-1]).split())
    if len(detail) > PROBLEM_DETAIL:
        detail = detail[: PROBLEM_DETAIL - 3] + "..."
    return f"the answer could not be read: {detail}"


def _refuses_tools(exc: ProviderConfigError) -> bool:
    """Whether a rejected request says the model cannot call tools (Ollama: 'does not support
    tools'; vLLM: 'tool choice requires --enable-auto-tool-choice')."""
    failure = exc.failure
    return failure.status in (400, 422) and "tool" in failure.message.lower()


def _response_usage(messages: Iterable[ModelMessage]) -> RequestUsage:
    total = RequestUsage()
    for message in messages:
        if isinstance(message, ModelResponse):
            total = total + message.usage
    return total


# -- the planner -------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _Role:
    """A model the planner asks, and how it asks it. ``auto`` is True while the model may still
    fall back from tool output to prompted output."""

    model: Model
    spec: ModelSpec
    mode: Literal["tool", "prompted"]
    auto: bool


class LLMPlanner:
    """A :class:`~blitz.planner.Planner` that asks a model (any pydantic-ai model; see
    :func:`blitz.llm.models.build_model`).

    ``recovery_model`` (with its ``recovery_spec``) answers :meth:`recover` when given, else
    ``model`` does. ``output_mode``: ``tool`` (the output is an output-tool call), ``prompted``
    (JSON in the text, the schema in the prompt) or ``auto`` (tool output until the model fails to
    use it, then prompted output for as long as this planner lives). ``context_budget`` is the
    tokens of repository context a plan request may show.
    """

    name = "llm"

    def __init__(
        self,
        *,
        model: Model,
        spec: ModelSpec,
        prices: PriceTable,
        clock: Clock,
        breakers: BreakerBoard | None = None,
        recovery_model: Model | None = None,
        recovery_spec: ModelSpec | None = None,
        max_reasks: int = 3,
        output_mode: OutputMode = "auto",
        context_budget: int = 12_000,
    ) -> None:
        if (recovery_model is None) != (recovery_spec is None):
            raise ValueError("recovery_model and recovery_spec are given together or not at all")
        if max_reasks < 0:
            raise ValueError(f"max_reasks must not be negative, not {max_reasks}")
        if output_mode not in ("tool", "prompted", "auto"):
            raise ValueError(f"output_mode must be tool, prompted or auto, not {output_mode!r}")
        if context_budget < 0:
            raise ValueError(f"context_budget must not be negative, not {context_budget}")
        self._prices = prices
        self._clock = clock
        self._breakers = breakers
        self._max_reasks = max_reasks
        self._context_budget = context_budget
        mode: Literal["tool", "prompted"] = "prompted" if output_mode == "prompted" else "tool"
        auto = output_mode == "auto"
        self._planning = _Role(model=model, spec=spec, mode=mode, auto=auto)
        self._recovering = (
            self._planning
            if recovery_model is None or recovery_spec is None
            else _Role(model=recovery_model, spec=recovery_spec, mode=mode, auto=auto)
        )

    @property
    def output_modes(self) -> tuple[str, str]:
        """The output mode now used for planning and for recovery (``tool`` or ``prompted``)."""
        return self._planning.mode, self._recovering.mode

    async def plan(self, request: PlanRequest) -> Planned:
        context = await repo_context(
            request.repo, goal=request.goal, gates=request.gates, budget_tokens=self._context_budget
        )
        rules = (
            _PLAN_RULES.replace("{max_tasks}", str(request.max_tasks))
            .replace("{max_attempts}", str(MAX_ATTEMPTS))
            .replace("{routing}", _routing_text(request.backends))
            .replace("{gates}", _gates_text(request.gates))
        )
        prompt = f"Goal: {request.goal}"
        if context.text:
            prompt += f"\n\n# The repository\n\n{context.text}"

        def judge(answer: PlanOutput) -> Plan:
            return parse_plan(answer.model_dump(), max_tasks=request.max_tasks)

        plan, usage = await self._ask(
            self._planning,
            output=PlanOutput,
            tool=PLAN_TOOL,
            rules=rules,
            prompt=prompt,
            judge=judge,
            what="plan",
        )
        return Planned(plan=plan, usage=usage)

    async def recover(self, request: RecoveryRequest) -> Recovered:
        def judge(answer: RecoveryOutput) -> RecoveryPlan:
            recovery = parse_recovery(answer.model_dump())
            problems = _recovery_problems(recovery, request)
            if problems:
                raise PlanError(problems)
            return recovery

        recovery, usage = await self._ask(
            self._recovering,
            output=RecoveryOutput,
            tool=RECOVERY_TOOL,
            rules=_RECOVERY_RULES,
            prompt=_recovery_prompt(request),
            judge=judge,
            what="recovery plan",
        )
        return Recovered(recovery=recovery, usage=usage)

    async def _ask(
        self,
        role: _Role,
        *,
        output: type[Out],
        tool: str,
        rules: str,
        prompt: str,
        judge: Callable[[Out], T],
        what: str,
    ) -> tuple[T, Usage]:
        """Ask until ``judge`` accepts an answer, re-asking at most ``max_reasks`` times."""
        usage = Usage()
        history: list[ModelMessage] = []  # the conversation so far, when it can be continued
        question = prompt
        answers = 0
        while True:
            spent: list[RequestUsage] = []
            outcome: tuple[Out, list[ModelMessage]] | None = None
            problems: list[str] = []
            try:
                outcome = await self._call(role, output, tool, rules, question, history, spent)
            except (ModelOutputError, UsageLimitExceeded) as exc:
                problems = [_output_problem(exc)]
            except ProviderConfigError as exc:
                if not (role.auto and _refuses_tools(exc)):
                    raise
            finally:
                usage += self._usage(spent, role)
            if outcome is None and role.auto:
                # The model does not use the output tool: ask for JSON in the text instead, from
                # the start (a conversation holding tool calls needs the tools defined).
                role.mode, role.auto = "prompted", False
                history, question = [], prompt
                continue
            if outcome is not None:
                answer, messages = outcome
                try:
                    return judge(answer), usage
                except PlanError as exc:
                    problems = exc.problems
                history = messages
            answers += 1
            if answers > self._max_reasks:
                plural = "s" if answers > 1 else ""
                raise PlanError(
                    [
                        f"the planner could not produce a valid {what} after {answers} "
                        f"attempt{plural}; the last answer's problems:",
                        *problems,
                    ]
                )
            question = _reask(problems, what, role.mode)
            if not history:
                question = f"{prompt}\n\n{question}"

    async def _call(
        self,
        role: _Role,
        output: type[Out],
        tool: str,
        rules: str,
        question: str,
        history: list[ModelMessage],
        spent: list[RequestUsage],
    ) -> tuple[Out, list[ModelMessage]]:
        """One logical model call (retried on transient failures); the usage of every request
        made, answered or not, is appended to ``spent``."""
        output_type: ToolOutput[Out] | PromptedOutput[Out]
        if role.mode == "tool":
            output_type = ToolOutput(output, name=tool, max_retries=OUTPUT_RETRIES)
        else:
            output_type = PromptedOutput(output, name=tool.removeprefix("submit_"))
        agent = Agent(
            role.model,
            output_type=output_type,
            instructions=rules,
            model_settings=model_settings(role.spec),
            retries={"output": OUTPUT_RETRIES},
            name="blitz-planner",
        )
        limits = UsageLimits(request_limit=OUTPUT_RETRIES + 1)

        async def once() -> tuple[Out, list[ModelMessage]]:
            with capture_run_messages() as messages:
                try:
                    result = await agent.run(
                        question, message_history=history or None, usage_limits=limits
                    )
                finally:
                    spent.append(_response_usage(messages[len(history) :]))
            return result.output, result.all_messages()

        return await call_with_retries(
            once, clock=self._clock, breakers=self._breakers, provider=role.spec.provider
        )

    def _usage(self, spent: Iterable[RequestUsage], role: _Role) -> Usage:
        total = Usage()
        for request_usage in spent:
            total += usage_of(request_usage, role.spec, self._prices)
        return total


def _reask(problems: Sequence[str], what: str, mode: str) -> str:
    how = "with the output tool" if mode == "tool" else "as one JSON object matching the schema"
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        f"Your {what} was rejected:\n{listed}\n\n"
        f"Fix every problem and answer again, {how}, with the complete corrected {what}."
    )
