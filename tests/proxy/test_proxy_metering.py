"""The meter reads usage from the very bytes the scripted server sends, however the network
splits them; a line too long to keep is skipped without losing the ones after it."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from blitz.proxy.metering import MAX_BUFFER, Endpoint, Meter, Tokens, endpoint_of
from blitz.testing import anthropic_api, openai_api, responses_api
from blitz.testing.turns import Reply, SeenRequest, Usage
from blitz.testing.wire import WireFormat, render

USAGE = Usage(input=70, output=30, cached=20, cache_write=10)
# Anthropic reports uncached input; the OpenAI APIs count cache reads and writes into input.
EXPECTED: dict[Endpoint, Tokens] = {
    "messages": Tokens(input=100, output=30, cache_read=20, cache_write=10),
    "chat": Tokens(input=100, output=30, cache_read=20),
    "responses": Tokens(input=100, output=30, cache_read=20, cache_write=10),
}
WIRES: dict[Endpoint, tuple[WireFormat, str]] = {
    "messages": (anthropic_api, "/v1/messages"),
    "chat": (openai_api, "/v1/chat/completions"),
    "responses": (responses_api, "/v1/responses"),
}


def answer(endpoint: Endpoint, *, stream: bool) -> bytes:
    """What the scripted server sends for a reply with :data:`USAGE`."""
    wire, path = WIRES[endpoint]
    body: dict[str, Any] = {"model": "gpt-5", "stream": stream, "messages": [], "input": "go"}
    if stream:
        body["stream_options"] = {"include_usage": True}
    request = SeenRequest(api=wire.API, method="POST", path=path, body=body, headers={})
    reply = Reply(text="a reply long enough to take a few deltas" * 3, usage=USAGE)
    ids = iter(range(1000))
    rendered = render(wire, request, reply, request_id="req_1", new_id=lambda p: f"{p}{next(ids)}")
    return rendered.body if rendered.chunks is None else b"".join(rendered.chunks)


def metered(endpoint: Endpoint, data: bytes, cuts: list[int], content_type: str) -> list[Tokens]:
    meter = Meter(endpoint, content_type)
    found: list[Tokens] = []
    edges = [0, *sorted(set(cuts)), len(data)]
    for start, end in itertools.pairwise(edges):
        if (tokens := meter.feed(data[start:end])) is not None:
            found.append(tokens)
    if (tokens := meter.finish()) is not None:
        found.append(tokens)
    assert meter.model == "gpt-5" and not meter.failed
    return found


@given(
    endpoint=st.sampled_from(["messages", "chat", "responses"]),
    stream=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=40),
)
def test_usage_is_found_once_however_the_body_is_split(
    endpoint: Endpoint, stream: bool, cuts: list[int]
) -> None:
    data = answer(endpoint, stream=stream)
    cuts = [cut % (len(data) + 1) for cut in cuts]
    content_type = "text/event-stream; charset=utf-8" if stream else "application/json"

    assert metered(endpoint, data, cuts, content_type) == [EXPECTED[endpoint]]


def test_a_stream_is_metered_as_its_final_usage_event_passes() -> None:
    data = answer("messages", stream=True)
    meter = Meter("messages", "text/event-stream")
    until_delta = data.index(b"event: message_delta")
    assert meter.feed(data[:until_delta]) is None
    assert meter.feed(data[until_delta:]) == EXPECTED["messages"]
    assert meter.finish() is None  # reported once


def test_a_cut_anthropic_stream_still_yields_its_input_tokens() -> None:
    data = answer("messages", stream=True)
    meter = Meter("messages", "text/event-stream")
    meter.feed(data[: data.index(b"event: content_block_delta")])
    # message_start said the input, and one output token so far.
    assert meter.finish() == Tokens(input=100, output=1, cache_read=20, cache_write=10)


def test_a_line_too_long_to_keep_is_skipped_and_the_next_lines_still_count() -> None:
    huge = b"data: " + json.dumps({"type": "ping", "pad": "x" * (MAX_BUFFER + 10)}).encode()
    data = answer("chat", stream=True)
    meter = Meter("chat", "text/event-stream")
    found = [meter.feed(huge[i : i + 65536]) for i in range(0, len(huge), 65536)]
    found += [meter.feed(b"\n\n" + data), meter.finish()]
    assert [tokens for tokens in found if tokens] == [EXPECTED["chat"]]


def test_a_json_body_too_big_to_keep_is_not_metered_and_not_broken() -> None:
    meter = Meter("chat", "application/json")
    assert meter.feed(b"{" + b" " * MAX_BUFFER) is None
    assert meter.feed(b"}") is None and meter.finish() is None


def test_anthropic_overload_mid_stream_is_a_failure() -> None:
    meter = Meter("messages", "text/event-stream")
    meter.feed(b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error"}}\n\n')
    meter.finish()
    assert meter.failed


def test_only_model_endpoints_are_metered() -> None:
    assert endpoint_of("anthropic", "/v1/messages") == "messages"
    assert endpoint_of("anthropic", "/v1/messages/count_tokens") is None
    assert endpoint_of("openai", "/chat/completions") == "chat"
    assert endpoint_of("openai", "/responses/") == "responses"
    assert endpoint_of("openai", "/models") is None
