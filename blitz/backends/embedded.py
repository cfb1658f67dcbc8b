"""The embedded backend: a coding agent run in-process by pydantic-ai, with the tools of
:mod:`blitz.backends.tools` confined to the task's worktree.

The model works through ``read_file``, ``list_dir``, ``search``, ``write_file``,
``append_to_file``, ``edit_file`` and ``run_command`` (:mod:`blitz.backends.embedded_session`),
and ends the run by calling ``finish`` with a summary (pydantic-ai's output tool). A tool call the
model gets wrong comes back to it as the tool's failed result; unknown tool names and invalid
arguments get pydantic-ai's retry prompt, a bounded number of times in a row.

Calls a model writes as text (small local models do) are read by
:class:`~blitz.llm.text_calls.TextCallingModel` and run like any other; a server that refuses the
tool definitions is asked without them (text tool mode). A model that answers with no call at all
before its first one, or with calls that cannot be made, is re-asked in the same conversation
with what to fix, at most :data:`TEXT_REASKS` times in a row, and so is one whose output repeated
itself or went on too long, or whose answer was empty (after a finish sent back, told again what
it was sent back with); after that the attempt fails saying so
(:mod:`blitz.backends.embedded_reasks`). Code an answer shows for a file, in a fenced block named
after it, is put in place as the calls the model should have made
(:mod:`blitz.backends.file_blocks`). A run that ends in plain text after the model wrote or edited
files is over as if it had called ``finish``: the gates judge the change. With ``draft`` on, the
run starts with the model's answer asked as code, no tools offered, put in place the same way
(:mod:`blitz.backends.embedded_draft`).

Every run is bounded: turns (model responses), tokens and cost are checked before each model
request, a :class:`~blitz.backends.tools.StuckDetector` watches for the same call returning the
same result again and again, and the whole run has a wall-time limit. Model requests go through
:class:`~blitz.llm.retrying_model.RetryingModel` and so :func:`blitz.llm.retries.call_with_retries`,
the one place a model call is repeated, so a provider blip mid-run is retried with backoff on the
injected clock and reported to the provider's circuit breaker; a longer outage ends the run as
one (the task waits). A finish is reviewed, and the project's gates run, before it ends the run
(:class:`~blitz.backends.finish_review.FinishReview`, :mod:`blitz.backends.finish_gates`).
:meth:`EmbeddedBackend.run` turns every way a run can end into an
:class:`~blitz.backends.base.AgentResult` and raises only ``CancelledError``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from functools import partial

from pydantic_ai import Agent, Tool, ToolOutput
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage, RunUsage, UsageLimits

from blitz.backends.base import (
    AgentBackend,
    AgentRequest,
    AgentResult,
    MessageSink,
    lowest,
)
from blitz.backends.embedded_draft import draft, instructions
from blitz.backends.embedded_prompt import INSTRUCTIONS, first_prompt
from blitz.backends.embedded_reasks import (
    AFRESH_SAID,
    DEGENERATE,
    Stopped,
    continued,
    correction_for,
    gave_up,
    stopped_with_changes,
    summary_of,
)
from blitz.backends.embedded_session import (
    TOOL_DESCRIPTIONS,
    TOOLS,
    Finished,
    Session,
    finish,
)
from blitz.backends.file_blocks import put_in_place
from blitz.backends.options import NO_MODEL, BackendOptions
from blitz.backends.stuck import StuckDetector
from blitz.backends.tools import AgentTools, ToolLimits
from blitz.breaker import BreakerBoard
from blitz.clock import Clock
from blitz.domain import Usage
from blitz.errors import ConfigError, RunError
from blitz.llm.errors import ModelOutputError, ProviderError, classify, stopped_usage
from blitz.llm.models import (
    ModelSpec,
    ProviderConfig,
    build_model,
    model_settings,
    parse_model,
)
from blitz.llm.retrying_model import RetryingModel
from blitz.llm.text_calls import TextCallingModel
from blitz.llm.usage import Budget, PriceTable, usage_of
from blitz.sandbox import Policy
from blitz.waiting import Outage

TOOL_RETRIES = 3
"""Invalid calls of one tool (unknown name, bad arguments) in a row before the run fails."""

TEXT_REASKS = 2
"""Re-asks in a row (no tool call between them), in the same conversation, when the model
answers without calling a tool (no call yet, or calls it wrote that cannot be made) or its
output degenerates; the run's turns bound them all."""

UNMADE = "(its last tool calls could not be made; its change passes the checks)"
DONE = "its change passes the checks"
"""A run that could not go on (its calls could not be made; stopped as stuck) after it changed
files that pass the finish's checks is done: the checks judge the change, as for a run that
ends in prose. (The 1.5B's draft fixed the bug; its edits after that were unreadable JSON, or
the same insertion made twice.)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddedLimits:
    """Bounds on one run of the embedded agent.

    ``max_turns`` counts model responses; ``max_tokens`` input plus output tokens (cached ones
    included); ``max_cost_usd`` is also capped by the request's ``budget_usd``; ``wall_time`` is
    seconds, also capped by the request's ``timeout``. ``stuck_repeats`` identical calls with
    identical results in a row (or rounds of two or three calls, or grown appends: see
    :mod:`blitz.backends.stuck`) end the run (done, if it changed files and every gate passes on
    them: :meth:`~blitz.backends.embedded_session.Session.change_passes`). ``model_attempts``
    bounds the tries of one model request (transient failures only). ``max_output_tokens`` caps
    one model response (sent as the request's ``max_tokens``): a model that degenerates stops
    there, not at its context's end.
    ``gates_on_finish``: a finish runs the request's gates (:mod:`blitz.backends.finish_gates`).
    ``draft``: the run starts with a draft, the change asked as code with no tools
    (:mod:`blitz.backends.embedded_draft`).
    """

    max_turns: int = 60
    max_tokens: int = 2_000_000
    max_cost_usd: float | None = None
    wall_time: float = 1800.0
    stuck_repeats: int = 3
    model_attempts: int = 4
    max_output_tokens: int = 8192
    gates_on_finish: bool = True
    draft: bool = False
    tool: ToolLimits = field(default_factory=ToolLimits)

    def __post_init__(self) -> None:
        for name in (
            "max_turns",
            "max_tokens",
            "stuck_repeats",
            "model_attempts",
            "max_output_tokens",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.wall_time > 0:
            raise ValueError("wall_time must be a positive number of seconds")
        if self.max_cost_usd is not None and not self.max_cost_usd >= 0:
            raise ValueError("max_cost_usd must be a non-negative amount of USD, or None")


# -- the backend --------------------------------------------------------------------------------


def create(options: BackendOptions) -> AgentBackend:
    """The embedded agent on the model the options name (a ConfigError when none is)."""
    if not options.model:
        raise ConfigError(NO_MODEL)
    spec = parse_model(options.model)
    return EmbeddedBackend(
        model=build_model(spec, options.providers or ProviderConfig()),
        spec=spec,
        prices=options.prices or PriceTable(),
        clock=options.clock,
        breakers=options.breakers,
        limits=EmbeddedLimits(
            max_turns=options.max_turns,
            max_tokens=options.max_tokens,
            max_cost_usd=options.max_cost_usd,
            stuck_repeats=options.stuck_repeats,
            max_output_tokens=options.max_output_tokens,
            gates_on_finish=options.gates_on_finish,
            draft=options.draft,
        ),
        sandbox=options.sandbox,
        temperature=options.temperature,
    )


def _settings(spec: ModelSpec, max_tokens: int, temperature: float | None) -> ModelSettings:
    """The agent's request settings: its answers' length cap, and the temperature configured,
    else the one for answers that must take a form (every answer of the agent is a tool call)."""
    settings = ModelSettings(**model_settings(spec, structured=True), max_tokens=max_tokens)
    if temperature is not None:
        settings["temperature"] = temperature
    return settings


class EmbeddedBackend:
    """An agent backend that runs a pydantic-ai coding agent in this process."""

    name = "embedded"

    def __init__(
        self,
        *,
        model: Model,
        spec: ModelSpec,
        prices: PriceTable,
        clock: Clock,
        breakers: BreakerBoard | None = None,
        limits: EmbeddedLimits = EmbeddedLimits(),
        sandbox: Policy | None = None,
        temperature: float | None = None,
    ) -> None:
        """``temperature``: the agent's sampling temperature (None: a low one on a server of
        one's own, the provider's default for a hosted model)."""
        self.spec, self.sandbox, self.provider = spec, sandbox, spec.provider
        self.prices, self.clock, self.temperature = prices, clock, temperature
        self.limits = limits
        self.settings = _settings(spec, limits.max_output_tokens, temperature)
        self.model = RetryingModel(
            model,
            clock=clock,
            breakers=breakers,
            provider=spec.provider,
            attempts=limits.model_attempts,
        )
        self._agent: Agent[Session, Finished | str] = Agent(
            self.model,
            deps_type=Session,
            output_type=[ToolOutput[Finished](finish, name="finish"), str],
            instructions=INSTRUCTIONS,
            model_settings=self.settings,
            tools=[
                # Sequential: the model may write a file and run the tests in one response, and
                # expects them to happen in that order.
                Tool(tool, description=TOOL_DESCRIPTIONS[tool.__name__], sequential=True)
                for tool in TOOLS
            ],
            retries={"tools": TOOL_RETRIES, "output": TOOL_RETRIES},
            name="blitz-embedded",
        )

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        seconds = min(request.timeout, self.limits.wall_time)
        session: Session | None = None
        deadline = asyncio.timeout(seconds)
        try:
            tools = AgentTools(request.worktree, limits=self.limits.tool, sandbox=self.sandbox)
            stuck = StuckDetector(self.limits.stuck_repeats)
            gates = request.gates if self.limits.gates_on_finish else ()
            session = Session.of(request, tools, stuck, on_message, gates)
            async with deadline:
                result = await self._drive(request, session)
        except TimeoutError as exc:
            if not deadline.expired():
                result = self._failure(exc)
            else:
                result = AgentResult(ok=False, error=f"timed out after {seconds:g}s")
        except Exception as exc:
            result = self._failure(exc)
        if session is None:
            return result
        return replace(
            result.redacted(),
            messages=tuple(session.transcript),
            usage=self._usage(session.usage),
        )

    async def _drive(self, request: AgentRequest, session: Session) -> AgentResult:
        """The run: the agent's turns, and up to :data:`TEXT_REASKS` re-asks in a row (no tool
        call between them) in the same conversation when the model answers with no tool call
        or its output degenerates."""
        budget = Budget(lowest(self.limits.max_cost_usd, request.budget_usd))
        model = TextCallingModel(self.model, allow_empty=False)
        session.afresh_when_refused = lambda: model.writes_calls_as_text
        prompt: str | None = None
        history: list[ModelMessage] | None = None
        reasks, calls = 0, 0
        async with self.model:
            prompt = await self._start(request, session, budget)
            while True:
                ended = await self._turns(
                    request, session, budget, model, prompt, history, self._reasked(reasks)
                )
                if isinstance(ended, AgentResult):
                    return ended
                # Code its answer wrote for a file, put in place: as good as calls it made.
                placed = None if model.failed else await put_in_place(ended.said, session)
                if session.calls > calls:  # it called tools since: a new streak of re-asks
                    reasks, calls = 0, session.calls
                if ended.refused:  # its finish sent back: told in a new conversation
                    await session.say(AFRESH_SAID)
                    history = None
                    prompt = await self._start(request, session, budget, ended.refused)
                    continue
                correction = placed or correction_for(ended, model, session)
                if correction is None and stopped_with_changes(ended, model, session):
                    # Ended in prose after writing: its finish, checked as the tool's would be.
                    correction = await session.refuses_finish() or None
                    if correction is not None and model.writes_calls_as_text:
                        await session.say(AFRESH_SAID)
                        history = None
                        prompt = await self._start(request, session, budget, correction)
                        continue
                if correction is None or reasks >= TEXT_REASKS:
                    if stopped_with_changes(ended, model, session):
                        return AgentResult(ok=True, summary=summary_of(ended))
                    if model.failed and await session.change_passes():
                        # Its change is made and passes the checks: its last calls were extra.
                        return AgentResult(ok=True, summary=f"{UNMADE} {ended.text[:300]}")
                    return gave_up(ended, model, session)
                reasks += 1
                await session.say(f"re-asked: {correction.splitlines()[0]}")
                history, prompt = continued(ended.messages, correction)

    async def _start(
        self, request: AgentRequest, session: Session, budget: Budget, refused: str = ""
    ) -> str:
        """The first prompt of a conversation (``refused``: one started afresh after a finish was
        sent back with that), after its draft when ``draft`` is on and one was put in place."""
        prompt = await first_prompt(request, session, refused)
        if not self.limits.draft or self._stop_reason(session.usage, budget, session):
            return prompt  # no draft; a run at its limits is stopped before its next request
        charge = partial(self._charge, request, budget)
        system = instructions(INSTRUCTIONS, request.files)

        def more() -> bool:
            return not self._stop_reason(session.usage, budget, session)

        drafted = await draft(self.model, self.settings, prompt, session, system, charge, more)
        if not drafted.written:
            return prompt
        return await first_prompt(request, session, refused, drafted.told)

    def _reasked(self, reasks: int) -> ModelSettings | None:
        """The settings of a re-ask: warmer on a server of one's own (a small model asked again
        at the same low temperature gives the same unusable answer), unless the temperature is
        configured."""
        if reasks == 0 or self.temperature is not None:
            return None
        warmer = model_settings(self.spec, structured=True, reasks=reasks).get("temperature")
        return None if warmer is None else ModelSettings(temperature=warmer)

    async def _turns(
        self,
        request: AgentRequest,
        session: Session,
        budget: Budget,
        model: TextCallingModel,
        prompt: str | None,
        history: list[ModelMessage] | None,
        settings: ModelSettings | None,
    ) -> AgentResult | Stopped:
        """One agent run over ``history`` plus ``prompt``, the usage carried over, with
        ``settings`` over the agent's own: its result, or how it stopped short of one."""
        # pydantic-ai's own request limit is a backstop; the checks below stop the run first.
        usage_limits = UsageLimits(request_limit=self.limits.max_turns + 1)
        output: Finished | str | None = None
        async with self._agent.iter(
            prompt,
            message_history=history,
            deps=session,
            model=model,
            model_settings=settings,
            usage=session.usage,
            usage_limits=usage_limits,
        ) as run:
            try:
                async for node in run:
                    if Agent.is_call_tools_node(node):
                        self._charge(request, budget, node.model_response.usage)
                        await session.narrate(node.model_response)
                    elif Agent.is_model_request_node(node):
                        await session.report_retries(node.request)
                        stop = self._stop_reason(run.usage, budget, session)
                        if stop and session.stuck_reason and await session.change_passes():
                            return AgentResult(ok=True, summary=f"(stopped, {stop}) {DONE}")
                        if stop:
                            return AgentResult(ok=False, error=stop)
                    elif Agent.is_end_node(node):
                        output = node.data.output
            except ModelOutputError as exc:
                if exc.failure.reason not in DEGENERATE:
                    raise
                run.usage.requests += 1  # the stopped answer was a turn too, for the turn limit
                if (stopped := stopped_usage(exc)) is not None:  # and it cost its tokens
                    run.usage.incr(stopped)
                    self._charge(request, budget, stopped)
                return Stopped(messages=run.all_messages(), degenerate=exc)
            finally:
                session.usage = run.usage
        if isinstance(output, Finished) and output.refused:
            return Stopped(messages=run.all_messages(), refused=output.refused)
        if isinstance(output, Finished):
            return AgentResult(ok=True, summary=output.summary or "(no summary given)")
        said = output or ""
        return Stopped(messages=run.all_messages(), text=" ".join(said.split()), said=said)

    def _stop_reason(self, usage: RunUsage, budget: Budget, session: Session) -> str:
        """Why the run must not make another model request ("" when it may)."""
        limits = self.limits
        if session.stuck_reason is not None:
            return session.stuck_reason
        if usage.requests >= limits.max_turns:
            return f"turn limit of {limits.max_turns} reached"
        if usage.total_tokens >= limits.max_tokens:
            return f"token limit of {limits.max_tokens} reached ({usage.total_tokens} tokens used)"
        if budget.exceeded:
            return f"cost limit of ${budget.limit_usd:g} reached (${budget.spent:.4f} spent)"
        return ""

    def _charge(self, request: AgentRequest, budget: Budget, usage: RequestUsage) -> None:
        """Count one answer's ``usage`` against the run's budget, and report it."""
        spent = self._usage(usage)
        budget.charge(spent)
        if request.on_usage is not None:
            request.on_usage(spent)

    def _usage(self, usage: RunUsage | RequestUsage) -> Usage:
        return usage_of(usage, self.spec, self.prices)

    def _failure(self, exc: BaseException) -> AgentResult:
        """The result of a run that ended with ``exc``: who must act, and whether to retry."""
        if isinstance(exc, Outage):  # the provider's breaker is open, or the calls gave up
            return AgentResult.outage(str(exc), exc.retry_after)
        if isinstance(exc, UsageLimitExceeded):  # the backstop: the checks should stop it first
            return AgentResult(ok=False, error=f"usage limit reached: {exc}")
        if isinstance(exc, RunError) and not isinstance(exc, ProviderError | ModelOutputError):
            return AgentResult(ok=False, crashed=True, error=str(exc))  # e.g. no worktree
        failure = classify(exc, provider=self.spec.provider, now=self.clock.time())
        message = str(exc) if isinstance(exc, ProviderError) else failure.message
        if failure.kind == "config":
            return AgentResult(ok=False, error=message, config_error=message)
        if failure.kind == "transient":
            return AgentResult.outage(message, failure.retry_after)
        if failure.kind == "bad_output" or failure.reason == "context_window":
            return AgentResult(ok=False, error=message)
        return AgentResult(
            ok=False, crashed=True, error=f"embedded agent error: {type(exc).__name__}: {exc}"
        )
