"""The embedded backend: a coding agent run in-process by pydantic-ai, with the tools of
:mod:`blitz.backends.tools` confined to the task's worktree.

The model works through ``read_file``, ``list_dir``, ``search``, ``write_file``, ``edit_file`` and
``run_command``, and ends the run by calling ``finish`` with a summary (pydantic-ai's output
tool). A tool call the model gets wrong comes back to it as the tool's failed result; unknown tool
names and invalid arguments get pydantic-ai's retry prompt, a bounded number of times in a row.

Every run is bounded: turns (model responses), tokens and cost are checked before each model
request, a :class:`~blitz.backends.tools.StuckDetector` watches for the same call returning the
same result again and again, and the whole run has a wall-time limit. Model requests go through
:func:`blitz.llm.retries.call_with_retries`, the one place a model call is repeated, so a provider
blip mid-run is retried with backoff on the injected clock and reported to the provider's circuit
breaker; a longer outage ends the run as one (the task waits). :meth:`EmbeddedBackend.run`
turns every way a run can end into an :class:`~blitz.backends.base.AgentResult` and raises only
``CancelledError``.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic_ai import Agent, RunContext, Tool, ToolOutput
from pydantic_ai.exceptions import ToolFailed, UsageLimitExceeded
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryFeedbackPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage, RunUsage, UsageLimits

from blitz.backends.base import (
    AgentBackend,
    AgentRequest,
    AgentResult,
    MessageSink,
    excerpt,
    lowest,
    task_prompt,
    trim,
)
from blitz.backends.options import NO_MODEL, BackendOptions
from blitz.backends.tools import TOOL_DESCRIPTIONS, AgentTools, StuckDetector, ToolError, ToolLimits
from blitz.breaker import BreakerBoard
from blitz.clock import Clock
from blitz.domain import Usage
from blitz.errors import ConfigError, RunError
from blitz.llm.errors import ModelOutputError, ProviderError, classify
from blitz.llm.models import ModelSpec, ProviderConfig, build_model, parse_model
from blitz.llm.retries import call_with_retries
from blitz.llm.usage import Budget, PriceTable, usage_of
from blitz.redact import redact
from blitz.sandbox import Policy
from blitz.waiting import Outage

INSTRUCTIONS = """\
You are an autonomous coding agent working in a git worktree of a software project. No person is \
watching: work until the task is done.

- Make the change the task asks for, and keep it minimal: change only what the task needs, in the \
style of the surrounding code.
- Use paths relative to the repository root (e.g. 'src/app.py'); nothing outside it is reachable.
- Look before you change: list, search and read the relevant code first.
- Run the project's checks (tests, type checker, linter) with run_command when that helps you \
verify the change.
- Do not commit, push or rewrite git history: your changes are checked and committed for you.
- When the task is done, call `finish` with a short summary of what you changed and why.
- If you cannot do the task, stop and explain why in plain text instead of calling `finish`."""
"""The agent's instructions (its system prompt)."""

MESSAGES_KEPT = 20
"""Messages of the run kept in :attr:`AgentResult.messages`, the newest ones."""

SHOWN_CHARS = 800
"""Characters of one streamed message (a tool result, say); longer ones lose their middle."""

TOOL_RETRIES = 3
"""Invalid calls of one tool (unknown name, bad arguments) in a row before the run fails."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddedLimits:
    """Bounds on one run of the embedded agent.

    ``max_turns`` counts model responses; ``max_tokens`` input plus output tokens (cached ones
    included); ``max_cost_usd`` is also capped by the request's ``budget_usd``; ``wall_time`` is
    seconds, also capped by the request's ``timeout``. ``stuck_repeats`` identical calls with
    identical results in a row end the run. ``model_attempts`` bounds the tries of one model
    request (transient failures only).
    """

    max_turns: int = 60
    max_tokens: int = 2_000_000
    max_cost_usd: float | None = None
    wall_time: float = 1800.0
    stuck_repeats: int = 3
    model_attempts: int = 4
    tool: ToolLimits = field(default_factory=ToolLimits)

    def __post_init__(self) -> None:
        for name in ("max_turns", "max_tokens", "stuck_repeats", "model_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.wall_time > 0:
            raise ValueError("wall_time must be a positive number of seconds")
        if self.max_cost_usd is not None and not self.max_cost_usd >= 0:
            raise ValueError("max_cost_usd must be a non-negative amount of USD, or None")


@dataclass(frozen=True, slots=True)
class _Finished:
    """What the ``finish`` tool returns: the run's output when the agent is done."""

    summary: str


def _finish(summary: str) -> _Finished:
    """Call this when the task is done; it ends your work, so call it once, after your last change.

    Args:
        summary: what you changed and why, in a few sentences
    """
    return _Finished(summary.strip())


class _Session:
    """The state of one run, handed to the tools as pydantic-ai's ``deps``: the worktree's tools,
    the stuck detector, and the messages shown so far."""

    def __init__(self, tools: AgentTools, stuck: StuckDetector, sink: MessageSink | None) -> None:
        self.tools = tools
        self.stuck = stuck
        self.stuck_on: str | None = None  # the tool whose call repeated itself
        self.transcript: deque[str] = deque(maxlen=MESSAGES_KEPT)
        self.usage = RunUsage()
        self._sink = sink

    async def say(self, text: str) -> None:
        """Show one message (redacted and trimmed) and keep it for the result."""
        shown = trim(redact(text), SHOWN_CHARS)
        self.transcript.append(shown)
        if self._sink is not None:
            await self._sink(shown)

    async def call(self, name: str, args: Mapping[str, Any], work: Awaitable[str]) -> str:
        """Run one tool call: its result, or its ToolError as a failed result the model sees."""
        try:
            result = await work
        except ToolError as exc:
            message = str(exc)
            self._record(name, args, f"error: {message}")
            await self.say(f"error: {message}")
            raise ToolFailed(message) from None
        self._record(name, args, result)
        await self.say(result)
        return result

    def _record(self, name: str, args: Mapping[str, Any], result: str) -> None:
        if self.stuck.record(name, args, result) and self.stuck_on is None:
            self.stuck_on = name

    async def narrate(self, response: ModelResponse) -> None:
        """Show what the model said and which tools it called."""
        for part in response.parts:
            if isinstance(part, TextPart) and part.content.strip():
                await self.say(part.content.strip())
            elif isinstance(part, ToolCallPart):
                await self.say(_describe_call(part.tool_name, part.args_as_dict()))

    async def report_retries(self, request: ModelRequest) -> None:
        """Show the retry prompts pydantic-ai sends back (unknown tools, invalid arguments)."""
        for part in request.parts:
            if isinstance(part, ToolReturnPart) and part.outcome == "retried":
                text = part.model_response_str(wrap_if_error=False)
                await self.say(f"retry {part.tool_name}: {text}")
            elif isinstance(part, RetryFeedbackPart):
                await self.say(f"retry: {part.model_response()}")


# -- the tools, as the model sees them ----------------------------------------------------------


async def read_file(
    ctx: RunContext[_Session], path: str, offset: int = 0, limit: int | None = None
) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        path: the file, relative to the repository root
        offset: lines to skip from the start
        limit: the most lines to show (omit for as many as fit)
    """
    args = {"path": path, "offset": offset, "limit": limit}
    return await ctx.deps.call("read_file", args, ctx.deps.tools.read_file(path, offset, limit))


async def list_dir(ctx: RunContext[_Session], path: str = ".", depth: int = 1) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        path: the directory, relative to the repository root
        depth: how many levels to list (1 = only its entries)
    """
    args = {"path": path, "depth": depth}
    return await ctx.deps.call("list_dir", args, ctx.deps.tools.list_dir(path, depth))


async def search(
    ctx: RunContext[_Session],
    pattern: str,
    glob: str = "",
    regex: bool = False,
    path: str = ".",
) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        pattern: the text to find; empty to list the files matching glob
        glob: which files to search, e.g. '*.py' or 'src/**/*.ts' (default: all)
        regex: whether pattern is a Python regular expression
        path: the directory to search under, relative to the repository root
    """
    args = {"pattern": pattern, "glob": glob, "regex": regex, "path": path}
    options: dict[str, Any] = {"regex": regex, "path": path}
    if glob:
        options["glob"] = glob
    return await ctx.deps.call("search", args, ctx.deps.tools.search(pattern, **options))


async def write_file(ctx: RunContext[_Session], path: str, content: str) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        path: the file, relative to the repository root
        content: the whole new content of the file
    """
    args = {"path": path, "content": content}
    return await ctx.deps.call("write_file", args, ctx.deps.tools.write_file(path, content))


async def edit_file(ctx: RunContext[_Session], path: str, old: str, new: str) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        path: the file, relative to the repository root
        old: the exact text to replace, occurring once in the file
        new: the text to put in its place
    """
    args = {"path": path, "old": old, "new": new}
    return await ctx.deps.call("edit_file", args, ctx.deps.tools.edit_file(path, old, new))


async def run_command(ctx: RunContext[_Session], command: str, timeout: float | None = None) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        command: the shell command, run with /bin/sh in the repository root
        timeout: seconds before the command is stopped (omit for the default)
    """
    args = {"command": command, "timeout": timeout}
    return await ctx.deps.call("run_command", args, ctx.deps.tools.run_command(command, timeout))


_TOOLS = (read_file, list_dir, search, write_file, edit_file, run_command)


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
        ),
        sandbox=options.sandbox,
    )


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
    ) -> None:
        self.spec, self.sandbox, self.provider = spec, sandbox, spec.provider
        self.prices, self.clock = prices, clock
        self.limits = limits
        self.model = _RetryingModel(
            model,
            clock=clock,
            breakers=breakers,
            provider=spec.provider,
            attempts=limits.model_attempts,
        )
        self._agent: Agent[_Session, _Finished | str] = Agent(
            self.model,
            deps_type=_Session,
            output_type=[ToolOutput(_finish, name="finish"), str],
            instructions=INSTRUCTIONS,
            tools=[
                # Sequential: the model may write a file and run the tests in one response, and
                # expects them to happen in that order.
                Tool(tool, description=TOOL_DESCRIPTIONS[tool.__name__], sequential=True)
                for tool in _TOOLS
            ],
            retries={"tools": TOOL_RETRIES, "output": TOOL_RETRIES},
            name="blitz-embedded",
        )

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        seconds = min(request.timeout, self.limits.wall_time)
        session: _Session | None = None
        deadline = asyncio.timeout(seconds)
        try:
            tools = AgentTools(request.worktree, limits=self.limits.tool, sandbox=self.sandbox)
            session = _Session(tools, StuckDetector(self.limits.stuck_repeats), on_message)
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

    async def _drive(self, request: AgentRequest, session: _Session) -> AgentResult:
        budget = Budget(lowest(self.limits.max_cost_usd, request.budget_usd))
        # pydantic-ai's own request limit is a backstop; the checks below stop the run first.
        usage_limits = UsageLimits(request_limit=self.limits.max_turns + 1)
        output: _Finished | str | None = None
        async with (
            self.model,
            self._agent.iter(task_prompt(request), deps=session, usage_limits=usage_limits) as run,
        ):
            try:
                async for node in run:
                    if Agent.is_call_tools_node(node):
                        spent = self._usage(node.model_response.usage)
                        budget.charge(spent)
                        if request.on_usage is not None:
                            request.on_usage(spent)
                        await session.narrate(node.model_response)
                    elif Agent.is_model_request_node(node):
                        await session.report_retries(node.request)
                        stop = self._stop_reason(run.usage, budget, session)
                        if stop:
                            return AgentResult(ok=False, error=stop)
                    elif Agent.is_end_node(node):
                        output = node.data.output
            finally:
                session.usage = run.usage
        if isinstance(output, _Finished):
            return AgentResult(ok=True, summary=output.summary or "(no summary given)")
        text = " ".join((output or "").split())
        if not text:
            return AgentResult(ok=False, error="the agent stopped without calling finish")
        return AgentResult(
            ok=False, error=f"the agent stopped without calling finish: {excerpt(text, 600)}"
        )

    def _stop_reason(self, usage: RunUsage, budget: Budget, session: _Session) -> str:
        """Why the run must not make another model request ("" when it may)."""
        limits = self.limits
        if session.stuck_on is not None:
            return (
                f"stuck: the same {session.stuck_on} call returned the same result"
                f" {limits.stuck_repeats} times"
            )
        if usage.requests >= limits.max_turns:
            return f"turn limit of {limits.max_turns} reached"
        if usage.total_tokens >= limits.max_tokens:
            return f"token limit of {limits.max_tokens} reached ({usage.total_tokens} tokens used)"
        if budget.exceeded:
            return f"cost limit of ${budget.limit_usd:g} reached (${budget.spent:.4f} spent)"
        return ""

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


class _RetryingModel(WrapperModel):
    """A model whose requests go through :func:`call_with_retries`: transient failures are retried
    with backoff on the clock, and every outcome reaches the provider's circuit breaker."""

    def __init__(
        self,
        wrapped: Model,
        *,
        clock: Clock,
        breakers: BreakerBoard | None,
        provider: str,
        attempts: int,
    ) -> None:
        super().__init__(wrapped)
        self._clock = clock
        self._breakers = breakers
        self._provider_name = provider
        self._attempts = attempts

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        return await call_with_retries(
            lambda: self.wrapped.request(messages, model_settings, model_request_parameters),
            clock=self._clock,
            breakers=self._breakers,
            provider=self._provider_name,
            max_attempts=self._attempts,
        )


# -- text ---------------------------------------------------------------------------------------


def _describe_call(name: str, args: Mapping[str, Any]) -> str:
    """One line for a tool call: ``$ pytest -q``, ``write_file src/x.py``."""
    if name == "run_command":
        return f"$ {args.get('command', '')}"
    if name == "finish":
        return f"finish: {args.get('summary', '')}"
    if name in ("read_file", "list_dir", "write_file", "edit_file"):
        path = args.get("path", "")
        extra = {k: v for k, v in args.items() if k not in ("path", "content", "old", "new")}
        shown = " ".join(f"{k}={v}" for k, v in extra.items() if v not in (None, 0, 1))
        return f"{name} {path} {shown}".rstrip()
    if name == "search":
        where = args.get("path") or "."
        glob = f" ({args['glob']})" if args.get("glob") else ""
        return f"search {args.get('pattern', '')!r} in {where}{glob}"
    return f"{name} {json.dumps(dict(args), default=str)}"
