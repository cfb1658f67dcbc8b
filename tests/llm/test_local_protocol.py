"""Timeouts that measure silence, and tool calls written as text, on the real local model.

Qwen2.5-Coder-0.5B on llama.cpp's own server (the session's ``local_model_server``). These check
the protocol, not the model's skill: a steady stream outlasting the idle timeout is never cut, and
a server gone silent (stopped with SIGSTOP, the way a wedged server looks from outside) ends the
call at the idle timeout. (Tool calls written as text, on the same model:
``tests/backends/test_embedded_local_model.py``.)
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.settings import ModelSettings

from blitz.llm import ProviderConfig, build_model, parse_model
from blitz.llm.errors import classify

# The real model on a CPU shared with the rest of the suite: minutes, not the default two.
pytestmark = pytest.mark.timeout(600)

IDLE = 3.0
"""The idle timeout of these calls: seconds with no byte from the server (the 0.5B writes a
token every 20-100 ms on this CPU, shared or not)."""


def _model(server: Any, *, idle: float = IDLE) -> Any:
    spec = parse_model(f"llamacpp:{server.alias}@{server.base_url}")
    return build_model(spec, ProviderConfig(timeout=idle, call_timeout=600.0))


@pytest.fixture
def stopped(local_model_server: Any) -> Iterator[int]:
    """The server's process, stopped (SIGSTOP) for the test and resumed after it."""
    pid = local_model_server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_steady_stream_that_outlasts_the_idle_timeout_is_never_cut(
    local_model_server: Any,
) -> None:
    prompt = "Count from 1 to 300, one number per line, nothing else."
    settings = ModelSettings(max_tokens=400, temperature=0.0)

    # The prompt once first, with time to spare: the server keeps it evaluated (its slot's
    # prompt cache), so the call below is silent only between tokens, not for the evaluation of
    # its prompt, which on a CPU shared with another model server can take longer than IDLE.
    warm = _model(local_model_server, idle=120.0)
    async with warm:
        await Agent(warm, output_type=str).run(prompt, model_settings=ModelSettings(max_tokens=1))

    model = _model(local_model_server)
    started = time.monotonic()
    async with model:
        result = await Agent(model, output_type=str).run(prompt, model_settings=settings)
    elapsed = time.monotonic() - started

    # The premise: the answer took longer than the silence allowed, so only an idle timeout (not a
    # timeout on the whole read) lets it through.
    assert elapsed > IDLE, f"the answer came in {elapsed:.1f}s: make it longer"
    usage = result.usage
    assert usage.requests == 1  # one request, never cut and asked again
    assert 0 < usage.output_tokens <= 400


async def test_a_server_gone_silent_ends_the_call_at_the_idle_timeout(
    local_model_server: Any, stopped: int
) -> None:
    model = _model(local_model_server, idle=1.0)
    agent = Agent(model, output_type=str)

    async with model:
        with pytest.raises(Exception) as raised:
            await agent.run("Say hi.", model_settings=ModelSettings(max_tokens=4))

    failure = classify(raised.value, provider="llamacpp")
    assert (failure.kind, failure.reason) == ("transient", "timeout"), failure
