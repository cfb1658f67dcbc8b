"""The embedded agent against the real local model (Qwen2.5-Coder-0.5B on llama.cpp's own
server, the session's ``local_model_server``): the protocol, not the model's skill. Every
request the agent makes is accepted, with tool definitions and without them (text tool mode),
and every answer stays within its output cap."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import Sink, task
from embedded_helpers import InstantClock, RefusingRelay

from blitz.backends.embedded import TEXT_REASKS, EmbeddedBackend, EmbeddedLimits
from blitz.llm import PriceTable, ProviderConfig, build_model, parse_model

# The real model on a CPU shared with the rest of the suite: minutes, not the default two.
pytestmark = pytest.mark.timeout(600)

TURNS = 2
CAP = 48


@contextlib.contextmanager
def local_backend(
    server: Any, *, text_mode: bool, cap: int = CAP, turns: int = TURNS
) -> Iterator[EmbeddedBackend]:
    """The embedded agent on the real model; in ``text_mode`` behind a relay that refuses tool
    definitions as llama.cpp refuses a schema it cannot type, so the agent goes on without."""
    with contextlib.ExitStack() as stack:
        base_url = server.base_url
        if text_mode:
            base_url = stack.enter_context(RefusingRelay(base_url)).base_url
        spec = parse_model(f"openai-compatible:{server.alias}@{base_url}")
        yield EmbeddedBackend(
            model=build_model(spec, ProviderConfig(compatible_api_key="local")),
            spec=spec,
            prices=PriceTable(),
            clock=InstantClock(),
            limits=EmbeddedLimits(max_turns=turns, max_output_tokens=cap, model_attempts=1),
        )


@pytest.mark.parametrize("text_mode", [False, True], ids=["tools", "text tool mode"])
async def test_every_request_of_the_agent_is_accepted_and_every_answer_bounded(
    local_model_server: Any, worktree: Path, text_mode: bool
) -> None:
    sink = Sink()

    with local_backend(local_model_server, text_mode=text_mode) as backend:
        result = await backend.run(task(worktree, timeout=600.0), sink)

    # Whatever the model made of the task, the machinery held: no refusal, no crash, no outage.
    assert not result.config_error and not result.crashed and not result.unavailable, result.error
    assert 0 < result.usage.output_tokens <= CAP * (TURNS + TEXT_REASKS)
    assert sink.messages  # what the model said and did was shown


async def test_a_tool_call_the_model_writes_as_text_is_run(
    local_model_server: Any, worktree: Path
) -> None:
    (worktree / "marker_file_4217.txt").write_text("x\n")
    sink = Sink()
    # Tools defined in the request are refused at the wire, so the agent runs in text tool mode:
    # every call it makes is one the model wrote as text and blitz read.
    with local_backend(local_model_server, text_mode=True, cap=120, turns=3) as backend:
        result = await backend.run(
            task(
                worktree,
                timeout=600.0,
                goal="List the files",
                title="List the files",
                instructions="Call list_dir with path '.' to see the files, then call finish.",
            ),
            sink,
        )

    assert not result.config_error and not result.crashed, result.error
    # list_dir ran in the worktree: its result, which names the file, was shown.
    assert any("marker_file_4217.txt" in text for text in sink.messages), sink.messages
