"""A backend behind its provider's circuit breaker: refused while the breaker is open, and a run
ended by the provider failing is an outage the task waits out, not its crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from blitz.backends.base import AgentRequest, AgentResult, MessageSink, Outcome, provider_of
from blitz.backends.circuit import CircuitBackend, behind_breaker
from blitz.backends.sandboxed import SandboxedBackend
from blitz.breaker import BreakerBoard, BreakerPolicy
from blitz.domain import BreakerState
from blitz.sandbox import Policy
from blitz.testing.clock import ManualClock

KEY = "provider:anthropic"


class Answering:
    """An agent backend that ends every run with ``result`` (a CLI backend's verdict)."""

    name = "cli"

    def __init__(self, result: AgentResult) -> None:
        self.result = result
        self.runs = 0

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        self.runs += 1
        return self.result


def request(tmp_path: Path) -> AgentRequest:
    return AgentRequest(
        goal_id="g", goal="goal", task_id="t", title="Do t", instructions="", worktree=tmp_path
    )


@pytest.fixture
def board() -> BreakerBoard:
    return BreakerBoard(ManualClock(), default=BreakerPolicy(threshold=2, cooldown=60))


async def test_a_run_the_provider_failed_is_an_outage_and_counts_against_its_breaker(
    board: BreakerBoard, tmp_path: Path
) -> None:
    down = AgentResult(ok=False, crashed=True, error="API Error: 529 Overloaded", reached=False)
    backend = CircuitBackend(Answering(down), breakers=board, provider="anthropic")

    first = await backend.run(request(tmp_path))
    second = await backend.run(request(tmp_path))

    assert first.outcome is Outcome.UNAVAILABLE and not first.crashed
    assert second.outcome is Outcome.UNAVAILABLE
    assert board.get(KEY).state is BreakerState.OPEN
    (opened,) = board.drain()  # for the engine to announce and persist
    assert (opened.key, opened.new) == (KEY, BreakerState.OPEN)


async def test_while_the_breaker_is_open_the_run_is_refused_saying_how_long_to_wait(
    board: BreakerBoard, tmp_path: Path
) -> None:
    for _ in range(2):
        board.record([KEY], ok=False, error="overloaded")
    inner = Answering(AgentResult(ok=True, summary="done"))
    backend = CircuitBackend(inner, breakers=board, provider="anthropic")

    refused = await backend.run(request(tmp_path))

    assert refused.outcome is Outcome.UNAVAILABLE and refused.retry_after == 60
    assert "circuit breaker" in refused.error and inner.runs == 0


async def test_wrong_work_or_a_broken_cli_is_no_outage(board: BreakerBoard, tmp_path: Path) -> None:
    wrong = AgentResult(ok=False, error="gave up", reached=True)
    broken = AgentResult(ok=False, crashed=True, error="the CLI died", reached=None)

    assert (await CircuitBackend(Answering(wrong), breakers=board, provider="anthropic").run(
        request(tmp_path)
    )).outcome is Outcome.FAILED  # fmt: skip
    assert (await CircuitBackend(Answering(broken), breakers=board, provider="anthropic").run(
        request(tmp_path)
    )).outcome is Outcome.CRASHED  # fmt: skip
    assert board.get(KEY).failures == 0


def test_a_backends_provider_is_found_through_its_wrappers(board: BreakerBoard) -> None:
    inner = Answering(AgentResult(ok=True))
    wrapped = SandboxedBackend(behind_breaker(inner, board, "openai"), Policy(mode="off"))
    assert provider_of(wrapped) == "openai"
    assert provider_of(inner) == ""
    assert provider_of(behind_breaker(inner, None, "openai")) == ""  # no board: no breaker
