"""The model-backed planner: a goal becomes a checked plan, a failure a checked recovery plan.

:class:`LLMPlanner` asks a pydantic-ai agent for typed output (:class:`PlanOutput`,
:class:`RecoveryOutput`, which mirror ``docs/plan-format.md``) and checks it with the rules of a
plan file (:func:`blitz.planner.parse_plan`, :func:`~blitz.planner.parse_recovery`,
:func:`~blitz.planner.check_plan`). An answer that breaks them is sent back in the same
conversation with every problem listed, at most ``max_reasks`` times.

Bounds, so a confused model cannot spin: pydantic-ai re-asks a reply that does not fit the schema
at most :data:`OUTPUT_RETRIES` times within one call (``UsageLimits`` caps the requests of a call
to match); a call is retried on transient provider failures only by
:func:`blitz.llm.errors.call_with_retries`, which also feeds the provider's circuit breaker; every
call has an output cap fitting its role (:func:`plan_max_tokens`, :data:`RECOVERY_MAX_TOKENS`),
and an answer cut at that cap, stopped because it repeated itself or took too long
(:mod:`blitz.llm.streaming`) is re-asked with a correction, counted against ``max_reasks``; and
``auto`` output mode switches once, for good, from tool output to JSON in the text
(:class:`~pydantic_ai.PromptedOutput`) when the model does not use the output tool, as small local
models often fail to. A server that refuses the request's shape (a schema it cannot turn into a
grammar, tools it does not support: reason ``request_shape``) gets prompted JSON too, whatever
the output mode, so it never pauses a project. A tool-mode answer stopped for repeating itself
moves the role to text calls (:class:`~blitz.llm.text_calls.TextCallingModel` in text mode: no
tool definitions, so no grammar holds the model in its loop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
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
from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage

from blitz.breaker import BreakerBoard
from blitz.clock import Clock
from blitz.context import repo_context
from blitz.domain import Plan, RecoveryPlan, Usage
from blitz.errors import PlanError
from blitz.llm.errors import (
    ModelOutputError,
    OutputStopped,
    ProviderConfigError,
    stopped_usage,
)
from blitz.llm.models import ModelSpec, model_settings
from blitz.llm.plan_answers import (
    distinct_ids,
    fold_tests_into_code,
    meant,
    offered_routes,
    recovery_problems,
)
from blitz.llm.plan_output import PlanOutput, RecoveryOutput
from blitz.llm.plan_prompts import (
    PLAN_RULES,
    RECOVERY_RULES,
    gates_text,
    reask,
    recovery_prompt,
    routing_text,
)
from blitz.llm.retries import call_with_retries
from blitz.llm.text_calls import TextCallingModel
from blitz.llm.usage import PriceTable, usage_of
from blitz.planner import (
    MAX_ATTEMPTS,
    Planned,
    PlanningFailed,
    PlanRequest,
    Reasked,
    Recovered,
    RecoveryRequest,
    parse_plan,
    parse_recovery,
)

OutputMode = Literal["tool", "prompted", "auto"]

OUTPUT_RETRIES = 1
"""pydantic-ai's own re-asks, within one call, of a reply that does not fit the output schema."""

PLAN_TOOL = "submit_plan"
RECOVERY_TOOL = "submit_recovery"

PROBLEM_DETAIL = 1_500
"""Characters of pydantic-ai's validation errors quoted back to the model."""

PLAN_BASE_TOKENS = 600
PLAN_TASK_TOKENS = 350
PLAN_MAX_TOKENS = (1_500, 16_000)
"""Bounds of a plan call's output cap, whatever ``max_tasks`` says."""

RECOVERY_MAX_TOKENS = 3_000
"""Output cap of a recovery call: a decision, a reason and a few tasks (a plan's share for six
tasks). A small model that loops inside its answer is stopped here, not minutes later."""


def plan_max_tokens(max_tasks: int) -> int:
    """The output cap of a plan for at most ``max_tasks`` tasks: a summary and a few hundred
    tokens a task, within :data:`PLAN_MAX_TOKENS`."""
    low, high = PLAN_MAX_TOKENS
    return max(low, min(high, PLAN_BASE_TOKENS + PLAN_TASK_TOKENS * max_tasks))


T = TypeVar("T")
Out = TypeVar("Out", bound=BaseModel)


def _causes(exc: BaseException) -> list[BaseException]:
    chain = [exc]
    while (cause := chain[-1].__cause__) is not None and len(chain) < 10:
        chain.append(cause)
    return chain


def _too_long(exc: BaseException) -> bool:
    """Whether an answer was stopped for its length (cut at the cap, repeating, past the call
    cap) rather than for its form: asking for another form would not help."""
    return any(isinstance(e, OutputTokenLimitExceeded | OutputStopped) for e in _causes(exc))


def _repeating(exc: BaseException) -> bool:
    """Whether an answer was stopped for repeating itself."""
    return any(isinstance(e, OutputStopped) and e.reason == "repeating" for e in _causes(exc))


def _output_problem(exc: BaseException) -> str:
    """One line for the model on why its reply could not be used, quoting pydantic-ai's errors."""
    chain = _causes(exc)
    if any(isinstance(e, OutputTokenLimitExceeded) for e in chain):
        return (
            "the answer was cut off at the output token limit: answer again, shorter "
            "(fewer tasks, more concise instructions)"
        )
    stopped = next((e for e in chain if isinstance(e, OutputStopped)), None)
    if stopped is not None and stopped.reason == "repeating":
        return (
            f"{stopped.message}: answer again, shorter, without repeating any part "
            "(each task once, concise instructions)"
        )
    if stopped is not None:
        return f"{stopped.message}: answer again, shorter (fewer tasks, more concise instructions)"
    if any(isinstance(e, UsageLimitExceeded) for e in chain):
        return "the answer took too many turns: answer at once with the complete result"
    detail = " ".join(str(chain[-1]).split())
    if len(detail) > PROBLEM_DETAIL:
        detail = detail[: PROBLEM_DETAIL - 3] + "..."
    return f"the answer could not be read: {detail}"


def _refuses_shape(exc: ProviderConfigError) -> bool:
    """Whether a rejected request is about its shape, not its key or model: a schema the server
    cannot turn into a grammar, tools it does not support (Ollama: 'does not support tools'; vLLM:
    'tool choice requires --enable-auto-tool-choice')."""
    return exc.failure.reason == "request_shape"


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
    # Tool mode without tool definitions: the output tool is described in the instructions and
    # its call read from the text. No grammar constrains the answer, so a model that a server's
    # JSON grammar held in a loop (blank space, digits) can end it.
    text_calls: bool = False


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
        recovery_max_tokens: int = RECOVERY_MAX_TOKENS,
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
        self._recovery_max_tokens = recovery_max_tokens
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
            PLAN_RULES.replace("{max_tasks}", str(request.max_tasks))
            .replace("{max_attempts}", str(MAX_ATTEMPTS))
            .replace("{routing}", routing_text(request.backends))
            .replace("{gates}", gates_text(request.gates))
        )
        prompt = f"Goal: {request.goal}"
        if request.earlier:
            prompt += f"\n\n# The work this goal continues\n\n{request.earlier}"
        if context.text:
            prompt += f"\n\n# The repository\n\n{context.text}"

        def judge(answer: PlanOutput) -> Plan:
            plan = parse_plan(distinct_ids(answer.model_dump()), max_tasks=request.max_tasks)
            tasks = offered_routes(plan.tasks, request.backends)
            return replace(plan, tasks=fold_tests_into_code(tasks))

        plan, usage = await self._ask(
            self._planning,
            output=PlanOutput,
            tool=PLAN_TOOL,
            rules=rules,
            prompt=prompt,
            judge=judge,
            what="plan",
            max_tokens=plan_max_tokens(request.max_tasks),
            on_reask=request.on_reask,
        )
        return Planned(plan=plan, usage=usage)

    async def recover(self, request: RecoveryRequest) -> Recovered:
        def judge(answer: RecoveryOutput) -> RecoveryPlan:
            recovery = meant(
                parse_recovery(answer.model_dump()),
                request.task_ids,
                request.task,
                request.replaced,
            )
            # Its tasks' routes read as a plan's (a 1.5B model gave one "model": "python").
            recovery = replace(recovery, tasks=offered_routes(recovery.tasks, request.backends))
            problems = recovery_problems(recovery, request)
            if problems:
                raise PlanError(problems)
            return recovery

        recovery, usage = await self._ask(
            self._recovering,
            output=RecoveryOutput,
            tool=RECOVERY_TOOL,
            rules=RECOVERY_RULES,
            prompt=recovery_prompt(request),
            judge=judge,
            what="recovery plan",
            max_tokens=self._recovery_max_tokens,
            on_reask=request.on_reask,
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
        max_tokens: int,
        on_reask: Reasked | None = None,
    ) -> tuple[T, Usage]:
        """Ask until ``judge`` accepts an answer, re-asking at most ``max_reasks`` times (each
        re-ask and each switch to prompted output told to ``on_reask``)."""
        usage = Usage()
        history: list[ModelMessage] = []  # the conversation so far, when it can be continued
        question = prompt
        answers = 0
        while True:
            spent: list[RequestUsage] = []
            outcome: tuple[Out, list[ModelMessage]] | None = None
            problems: list[str] = []
            bounded = False  # stopped for its length: re-asked with a correction, same mode
            try:
                outcome = await self._call(
                    role, output, tool, rules, question, history, spent, max_tokens, answers
                )
            except (ModelOutputError, UsageLimitExceeded) as exc:
                if (stopped := stopped_usage(exc)) is not None:
                    spent.append(stopped)  # a stopped answer cost its tokens too
                problems = [_output_problem(exc)]
                bounded = _too_long(exc)
                if role.mode == "tool" and _repeating(exc):
                    role.text_calls = True
            except ProviderConfigError as exc:
                if not _refuses_shape(exc):
                    raise
                if role.mode == "prompted":  # nothing simpler to ask for: the plan fails
                    raise PlanningFailed(
                        [f"the model's server refused even a prompted {what}: {exc}"],
                        usage + self._usage(spent, role),  # `finally` has not added them yet
                    ) from exc
                role.auto = True  # a schema or tools refused: prompted JSON is the way left
            finally:
                usage += self._usage(spent, role)
            if outcome is None and role.auto and not bounded:
                # The model does not use the output tool: ask for JSON in the text instead, from
                # the start (a conversation holding tool calls needs the tools defined).
                role.mode, role.auto = "prompted", False
                history, question = [], prompt
                if on_reask is not None:
                    on_reask(f"the model did not answer with the {what} tool; asking for JSON")
                continue
            if outcome is not None:
                answer, messages = outcome
                try:
                    return judge(answer), usage
                except PlanError as exc:
                    problems = exc.problems
                history = rejected(messages, tool, what)
            answers += 1
            if answers > self._max_reasks:
                plural = "s" if answers > 1 else ""
                raise PlanningFailed(
                    [
                        f"the planner could not produce a valid {what} after {answers} "
                        f"attempt{plural}; the last answer's problems:",
                        *problems,
                    ],
                    usage,
                )
            question = reask(problems, what, role.mode)
            if on_reask is not None:
                first = problems[0].splitlines()[0][:200] if problems else "no answer"
                on_reask(
                    f"the {what} would not do ({first}); asking again,"
                    f" {answers + 1} of {self._max_reasks + 1}"
                )
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
        max_tokens: int,
        reasks: int = 0,
    ) -> tuple[Out, list[ModelMessage]]:
        """One logical model call (retried on transient failures), the ``reasks``-th re-ask of
        its question; the usage of every request made, answered or not, is appended to
        ``spent``."""
        output_type: ToolOutput[Out] | PromptedOutput[Out]
        if role.mode == "tool":
            output_type = ToolOutput(output, name=tool, max_retries=OUTPUT_RETRIES)
        else:
            output_type = PromptedOutput(output, name=tool.removeprefix("submit_"))
        agent = Agent(
            # An output tool call written as text (as small local models do) counts as made, and
            # so does one written before the model went on repeating itself.
            TextCallingModel(
                role.model,
                text_mode_fallback=False,
                # Prompted output is text already, and text mode would drop its schema.
                text_mode=role.text_calls and role.mode == "tool",
            ),
            output_type=output_type,
            instructions=rules,
            model_settings=ModelSettings(
                **model_settings(role.spec, structured=True, reasks=reasks),
                max_tokens=max_tokens,
            ),
            retries={"output": OUTPUT_RETRIES},
            name="blitz-planner",
        )
        limits = UsageLimits(request_limit=OUTPUT_RETRIES + 1)

        async def once() -> tuple[Out, list[ModelMessage]]:
            # Entered per call, so the model's HTTP client is closed between calls (a planner
            # may live as long as a daemon, and wait out a provider for hours).
            async with role.model:
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


def rejected(messages: list[ModelMessage], tool: str, what: str) -> list[ModelMessage]:
    """``messages`` with the output ``tool``'s own reply to the rejected answer (pydantic-ai's
    "Final result processed.") saying it was rejected instead: a small model told its answer
    was processed, then that it was rejected, answered with the tool's reply itself
    (Qwen2.5-Coder-1.5B: "<tool_response> Final result processed. </tool_response>")."""
    if not messages or not isinstance(messages[-1], ModelRequest):
        return messages
    told = f"This {what} was rejected; what is wrong with it follows."
    parts = [
        _told(part, told) if _output_reply(part, tool) else part for part in messages[-1].parts
    ]
    return [*messages[:-1], replace(messages[-1], parts=parts)]


def _output_reply(part: object, tool: str) -> bool:
    return type(part) is ToolReturnPart and part.tool_name == tool


def _told(part: Any, content: str) -> Any:
    return replace(part, content=content)
