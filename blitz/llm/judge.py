"""The model judge: asks a model which of several equally ranked best-of-N candidates to merge.

It implements :class:`blitz.conductor.selection.Judge`, which the engine knows; the engine never
imports this module (the application builds the judge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai import Agent, ModelResponse, ToolOutput, UsageLimits, capture_run_messages
from pydantic_ai.settings import ModelSettings

from blitz.clock import Clock, SystemClock
from blitz.conductor.selection import UNAVAILABLE, Candidate, one_line
from blitz.domain import Usage
from blitz.llm.models import ModelSpec, model_settings
from blitz.llm.retries import call_with_retries
from blitz.llm.usage import PriceTable, usage_of

if TYPE_CHECKING:
    from pydantic_ai.models import Model

    from blitz.breaker import BreakerBoard

JUDGE_DIFF_CHARS = 40_000
"""Characters of diff shown to the model judge, shared among the candidates."""

JUDGE_MAX_TOKENS = 1_000
"""Output cap of a judge call: a number and one sentence."""

JUDGE_ATTEMPTS = 2
"""Tries of a judge call on transient provider failures: a tie is not worth a long wait."""


class JudgeOutput(BaseModel):
    """The model judge's answer."""

    model_config = ConfigDict(extra="forbid")

    choice: int = Field(description="the number of the chosen candidate, from 1 to N")
    reason: str = Field(description="one sentence: why this change is the one to merge")


JUDGE_RULES = """\
You review alternative changes that coding agents made for the same task. Every candidate passed
the project's validation gates with the same results, so the tests cannot tell them apart. Choose
the one a careful reviewer would merge: it does all the task asks, correctly, with no unrelated
changes, in code that fits the repository and is easy to maintain. Answer with the candidate's
number and one sentence saying why."""


class ModelJudge:
    """A :class:`Judge` that asks a model (see :func:`blitz.llm.models.build_model`) for a
    structured choice. It never raises: a provider error, an unusable answer or an invalid
    choice leaves the ranking order, with a reason saying why. ``usage`` adds up every call."""

    def __init__(
        self,
        model: Model,
        *,
        spec: ModelSpec,
        prices: PriceTable | None = None,
        clock: Clock | None = None,
        breakers: BreakerBoard | None = None,
    ) -> None:
        self._model = model
        self._spec = spec
        self._prices = prices if prices is not None else PriceTable()
        self._clock = clock if clock is not None else SystemClock()
        self._breakers = breakers
        self.usage = Usage()  # every call's, since it was built
        self._untaken = Usage()

    def take_usage(self) -> Usage:
        taken, self._untaken = self._untaken, Usage()
        return taken

    async def pick(
        self, task_title: str, instructions: str, candidates: Sequence[tuple[Candidate, str]]
    ) -> tuple[int, str]:
        if len(candidates) < 2:
            return 0, "the only candidate" if candidates else f"{UNAVAILABLE}: no candidates"
        try:
            answer = await self._ask(self._prompt(task_title, instructions, candidates))
        except Exception as exc:  # the ranking order stands; the judge must not fail the task
            return 0, f"{UNAVAILABLE}: {one_line(str(exc)) or type(exc).__name__}"
        if not 1 <= answer.choice <= len(candidates):
            return 0, f"{UNAVAILABLE}: it chose {answer.choice}, not 1 to {len(candidates)}"
        return answer.choice - 1, one_line(answer.reason, 300) or "no reason given"

    def _prompt(
        self, title: str, instructions: str, candidates: Sequence[tuple[Candidate, str]]
    ) -> str:
        # Labels name backends and models: left out, so no model favours its own kind.
        share = max(2_000, JUDGE_DIFF_CHARS // len(candidates))
        parts = [f"Task: {title}", f"Instructions:\n{instructions or title}"]
        for number, (_, diff) in enumerate(candidates, 1):
            shown = diff if len(diff) <= share else diff[:share] + "\n[... rest of diff cut ...]"
            fence = "````" if "```" in shown else "```"
            parts.append(f"## Candidate {number}\n{fence}diff\n{shown}\n{fence}")
        parts.append(f"Choose one candidate, 1 to {len(candidates)}.")
        return "\n\n".join(parts)

    async def _ask(self, prompt: str) -> JudgeOutput:
        agent = Agent(
            self._model,
            output_type=ToolOutput(JudgeOutput, name="choose", max_retries=1),
            instructions=JUDGE_RULES,
            model_settings=ModelSettings(
                **model_settings(self._spec, structured=True), max_tokens=JUDGE_MAX_TOKENS
            ),
            retries={"output": 1},
            name="blitz-judge",
        )

        async def once() -> JudgeOutput:
            # Entered per call, as the planner's model is, so its HTTP client is closed after
            # each call instead of left open for the life of the process.
            async with self._model:
                with capture_run_messages() as messages:
                    try:
                        result = await agent.run(prompt, usage_limits=UsageLimits(request_limit=2))
                    finally:  # answered or not, every response was paid for
                        for m in messages:
                            if isinstance(m, ModelResponse):
                                spent = usage_of(m.usage, self._spec, self._prices)
                                self.usage = self.usage + spent
                                self._untaken = self._untaken + spent
            return result.output

        return await call_with_retries(
            once,
            clock=self._clock,
            breakers=self._breakers,
            provider=self._spec.provider,
            max_attempts=JUDGE_ATTEMPTS,
        )
