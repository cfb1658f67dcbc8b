"""The flaky agent backend: unreliable on purpose, for measuring retries and best-of-N.

Each attempt succeeds with probability ``p``, takes a simulated duration and reports a fixed
cost. The outcome and the duration are drawn from a hash of (seed, goal id, task id, attempt
number, candidate number), not from shared random state: the same request always gets the same
answer, whatever ran before it or beside it, and the candidates of one task draw independently.
A failure is wrong work (``ok=False, crashed=False``), so the engine's recovery decides what
happens next. Nothing touches the worktree, so it runs without git.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from blitz.backends.base import AgentRequest, AgentResult, MessageSink
from blitz.clock import Clock, SystemClock
from blitz.domain import Usage

DEFAULT_USAGE = Usage(input_tokens=20_000, output_tokens=2_000, cost_usd=0.01)
"""What each attempt reports spending unless told otherwise."""

_SCALE = float(1 << 64)


@dataclass(frozen=True, slots=True, kw_only=True)
class Draw:
    """What the backend decided for one request."""

    ok: bool
    duration: float  # seconds the attempt takes


class FlakyBackend:
    """An :class:`~blitz.backends.base.AgentBackend` whose attempts succeed with probability
    ``p``, each after ``duration`` seconds (uniform between the two bounds, slept on ``clock``),
    each reporting ``usage``."""

    name = "flaky"

    def __init__(
        self,
        *,
        p: float,
        seed: int = 0,
        duration: tuple[float, float] = (0.02, 0.06),
        usage: Usage = DEFAULT_USAGE,
        clock: Clock | None = None,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability between 0 and 1, not {p}")
        low, high = duration
        if not 0.0 <= low <= high:
            raise ValueError(f"duration must be (low, high) with 0 <= low <= high, not {duration}")
        self.p = p
        self.seed = seed
        self.duration = (low, high)
        self.usage = usage
        self.clock: Clock = clock if clock is not None else SystemClock()

    def draw(self, request: AgentRequest) -> Draw:
        """The outcome and duration of ``request``: a pure function of the seed and the
        request's goal, task, attempt and candidate."""
        key = "\0".join(
            (
                str(self.seed),
                request.goal_id,
                request.task_id,
                str(request.attempt),
                str(request.candidate),
            )
        )
        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        chance = int.from_bytes(digest[:8], "big") / _SCALE  # uniform in [0, 1)
        spread = int.from_bytes(digest[8:], "big") / _SCALE
        low, high = self.duration
        return Draw(ok=chance < self.p, duration=low + (high - low) * spread)

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        draw = self.draw(request)
        if request.on_usage is not None:
            request.on_usage(self.usage)  # spent as the (simulated) model calls are made
        await self.clock.sleep(draw.duration)
        which = f"attempt {request.attempt}" + (
            f", candidate {request.candidate}" if request.candidate else ""
        )
        if draw.ok:
            return AgentResult(
                ok=True, summary=f"flaky: {which} succeeded (p={self.p})", usage=self.usage
            )
        return AgentResult(
            ok=False,
            error=f"flaky: {which} produced wrong work (simulated failure, p={self.p})",
            usage=self.usage,
        )
