"""The scripted model server, driven by the real Anthropic and OpenAI SDKs and by pydantic-ai."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pydantic
import pytest
from pydantic_ai import Agent
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from blitz.testing.model_server import ErrorReply, ModelServer, Reply, ToolCall, Turn, Usage

SCENARIOS = Path(__file__).parent / "scenarios"
CLAUDE = "claude-sonnet-4-6"
GPT = "gpt-5"
KEY = "sk-test-secret-0123456789"


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


@pytest.fixture
async def claude(server: ModelServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key=KEY, max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def gpt(server: ModelServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key=KEY, max_retries=0
    ) as client:
        yield client


# -- Anthropic ------------------------------------------------------------------------------------


async def test_anthropic_text_with_usage_and_a_recorded_request(
    server: ModelServer, claude: anthropic.AsyncAnthropic
) -> None:
    server.add({"reply": {"text": "Hello!", "usage": {"input": 7, "output": 3, "cached": 5}}})
    server.add(Turn(reply=Reply(text="unused")))

    message = await claude.messages.create(
        model=CLAUDE, max_tokens=100, system="You are terse.", messages=ask("say hi")
    )

    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello!"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.model == CLAUDE
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
    assert message.usage.cache_read_input_tokens == 5
    assert message.usage.cache_creation_input_tokens == 0
    [seen] = server.requests
    assert (seen.api, seen.method, seen.path, seen.status, seen.turn) == (
        "anthropic",
        "POST",
        "/v1/messages",
        200,
        0,
    )
    assert seen.body["system"] == "You are terse." and seen.last_user_text == "say hi"
    assert "anthropic-version" in seen.headers and seen.api_key_present
    assert KEY not in repr(server.requests)
    assert server.pending == [Turn(reply=Reply(text="unused"))]


async def test_anthropic_stream_arrives_in_pieces_and_accumulates(
    server: ModelServer, claude: anthropic.AsyncAnthropic
) -> None:
    text = "A reply long enough to be streamed in several deltas."
    server.add({"reply": {"text": text, "usage": {"input": 9, "cached": 4, "cache_write": 2}}})

    async with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=ask("hi")) as stream:
        pieces = [piece async for piece in stream.text_stream]
        message = await stream.get_final_message()

    assert len(pieces) > 1 and "".join(pieces) == text
    assert message.content[0].text == text  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 9
    assert message.usage.output_tokens == 20
    assert message.usage.cache_read_input_tokens == 4
    assert message.usage.cache_creation_input_tokens == 2
    assert server.requests[0].stream


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_tool_use(
    server: ModelServer, claude: anthropic.AsyncAnthropic, stream: bool
) -> None:
    arguments = {"path": "src/app.py", "lines": [1, 20], "note": "x" * 40}
    server.add(
        {
            "reply": {
                "text": "Reading both.",
                "tool_calls": [
                    {"name": "read_file", "input": arguments},
                    {"name": "list_dir", "input": {}, "id": "toolu_fixed"},
                ],
            }
        }
    )
    tools: Any = [
        {"name": "read_file", "input_schema": {"type": "object"}},
        {"name": "list_dir", "input_schema": {"type": "object"}},
    ]

    if stream:
        async with claude.messages.stream(
            model=CLAUDE, max_tokens=100, messages=ask("read it"), tools=tools
        ) as events:
            message: Any = await events.get_final_message()
    else:
        message = await claude.messages.create(
            model=CLAUDE, max_tokens=100, messages=ask("read it"), tools=tools
        )

    assert message.stop_reason == "tool_use"
    text, read, listing = message.content
    assert text.text == "Reading both."
    assert (read.type, read.name, read.input) == ("tool_use", "read_file", arguments)
    assert read.id.startswith("toolu_")
    assert (listing.name, listing.input, listing.id) == ("list_dir", {}, "toolu_fixed")


async def test_anthropic_count_tokens_and_models(
    server: ModelServer, claude: anthropic.AsyncAnthropic
) -> None:
    counted = await claude.messages.count_tokens(model=CLAUDE, messages=ask("x" * 400))
    models = await claude.models.list()

    assert counted.input_tokens == 100
    assert CLAUDE in [model.id for model in models.data]
    assert all(model.type == "model" for model in models.data)


# -- OpenAI ---------------------------------------------------------------------------------------


async def test_openai_text_with_cached_tokens(server: ModelServer, gpt: openai.AsyncOpenAI) -> None:
    server.add({"reply": {"text": "Hello!", "usage": {"input": 7, "output": 3, "cached": 5}}})

    completion = await gpt.chat.completions.create(model=GPT, messages=ask("say hi"))

    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Hello!", "stop")
    assert choice.message.tool_calls is None
    usage = completion.usage
    assert usage is not None
    # OpenAI counts cached tokens inside prompt_tokens.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 3, 15)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 5
    [seen] = server.requests
    assert (seen.api, seen.path, seen.turn, seen.api_key_present) == (
        "openai",
        "/v1/chat/completions",
        0,
        True,
    )
    assert KEY not in repr(seen)


async def test_openai_stream_with_usage_chunk(server: ModelServer, gpt: openai.AsyncOpenAI) -> None:
    text = "A reply long enough to be streamed in several chunks."
    server.add({"reply": {"text": text, "usage": {"input": 10, "output": 4, "cached": 6}}})

    async with gpt.chat.completions.stream(
        model=GPT, messages=ask("hi"), stream_options={"include_usage": True}
    ) as stream:
        pieces = [e.delta async for e in stream if e.type == "content.delta"]
        completion = await stream.get_final_completion()

    assert len(pieces) > 1 and "".join(pieces) == text
    assert completion.choices[0].message.content == text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 16
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 6


async def test_openai_stream_without_usage_ends_with_done(
    server: ModelServer, gpt: openai.AsyncOpenAI
) -> None:
    server.add({"reply": {"text": "short"}})

    stream = await gpt.chat.completions.create(model=GPT, messages=ask("hi"), stream=True)
    chunks = [chunk async for chunk in stream]

    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "short"


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_tool_calls(
    server: ModelServer, gpt: openai.AsyncOpenAI, stream: bool
) -> None:
    arguments = {"path": "src/app.py", "content": "print('hello, world')\n" * 3}
    server.add(
        {
            "reply": {
                "tool_calls": [
                    {"name": "write_file", "input": arguments},
                    {"name": "run_tests", "input": {}},
                ]
            }
        }
    )
    tools: Any = [
        {"type": "function", "function": {"name": "write_file", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object"}}},
    ]

    if stream:
        async with gpt.chat.completions.stream(
            model=GPT, messages=ask("write it"), tools=tools
        ) as events:
            completion: Any = await events.get_final_completion()
    else:
        completion = await gpt.chat.completions.create(
            model=GPT, messages=ask("write it"), tools=tools
        )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    write, run = choice.message.tool_calls
    assert (write.type, write.function.name) == ("function", "write_file")
    assert json.loads(write.function.arguments) == arguments
    assert (run.function.name, json.loads(run.function.arguments)) == ("run_tests", {})
    assert write.id.startswith("call_") and write.id != run.id


async def test_openai_models(server: ModelServer, gpt: openai.AsyncOpenAI) -> None:
    models = await gpt.models.list()

    assert GPT in [model.id for model in models.data]
    assert server.requests[0].api == "openai"


async def test_json_reply_is_its_dump(server: ModelServer, gpt: openai.AsyncOpenAI) -> None:
    plan = {"tasks": [{"id": "t1", "title": "Add a test"}], "done": False}
    server.add({"reply": {"json": plan}})

    completion = await gpt.chat.completions.create(model=GPT, messages=ask("plan"))

    assert json.loads(completion.choices[0].message.content or "") == plan


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
    ],
)
async def test_anthropic_errors(
    server: ModelServer,
    claude: anthropic.AsyncAnthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    server.add({"reply": {"error": {"status": status, "retry_after": 3}}})

    with pytest.raises(error_class) as raised:
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))

    error = raised.value
    assert error.status_code == status
    assert error.type == error_type
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert error.response.headers["retry-after"] == "3"
    if status == 529:
        assert isinstance(error, anthropic.InternalServerError)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
    ],
)
async def test_openai_errors(
    server: ModelServer,
    gpt: openai.AsyncOpenAI,
    status: int,
    error_class: type[openai.APIStatusError],
) -> None:
    server.add({"reply": {"error": {"status": status, "message": "scripted failure"}}})

    with pytest.raises(error_class) as raised:
        await gpt.chat.completions.create(model=GPT, messages=ask("hi"))

    error = raised.value
    assert error.status_code == status
    assert error.message.startswith(f"Error code: {status}")
    assert isinstance(error.body, dict) and error.body["message"] == "scripted failure"
    assert error.type is not None
    assert error.request_id is not None
    if status == 429:
        assert error.code == "rate_limit_exceeded"


async def test_fail_next_is_retried_by_the_sdk_after_retry_after(server: ModelServer) -> None:
    server.add({"reply": {"text": "finally"}})
    server.fail_next(2, 529, retry_after=0.01)

    async with anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key=KEY, max_retries=2
    ) as client:
        message = await client.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))

    assert message.content[0].text == "finally"  # type: ignore[union-attr]
    statuses = [(r.status, r.turn, r.headers["x-stainless-retry-count"]) for r in server.requests]
    assert statuses == [(529, None, "0"), (529, None, "1"), (200, 0, "2")]
    assert server.unmatched == []


async def test_fail_next_only_fails_the_api_named(
    server: ModelServer, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    server.add({"reply": {"text": "ok"}, "times": 2})
    server.fail_next(1, 429, retry_after=7, api="openai")

    message = await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))
    with pytest.raises(openai.RateLimitError) as raised:
        await gpt.chat.completions.create(model=GPT, messages=ask("hi"))
    completion = await gpt.chat.completions.create(model=GPT, messages=ask("hi"))

    assert message.content[0].text == "ok"  # type: ignore[union-attr]
    assert raised.value.response.headers["retry-after"] == "7"
    assert completion.choices[0].message.content == "ok"


async def test_scripted_error_type_and_code_replace_the_apis_own(
    server: ModelServer, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    server.add(
        {"reply": {"error": {"status": 400, "type": "billing_error", "message": "No credit."}}},
        {"reply": {"error": {"status": 429, "type": "insufficient_quota", "code": "quota"}}},
        {"reply": {"error": {"status": 403, "type": "forbidden"}}},  # a type alone: no code
        {"reply": {"error": {"status": 503, "code": "busy"}}},  # a code alone keeps the type
    )

    with pytest.raises(anthropic.BadRequestError) as billing:
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))
    bodies: list[Any] = []
    for error_class in (openai.RateLimitError, openai.PermissionDeniedError, openai.APIStatusError):
        with pytest.raises(error_class) as raised:
            await gpt.chat.completions.create(model=GPT, messages=ask("hi"))
        bodies.append(raised.value.body)

    assert billing.value.body == {
        "type": "error",
        "error": {"type": "billing_error", "message": "No credit."},
        "request_id": billing.value.request_id,
    }
    assert [(b["type"], b["code"]) for b in bodies] == [
        ("insufficient_quota", "quota"),
        ("forbidden", None),
        ("server_error", "busy"),
    ]
    assert bodies[0]["message"] == "Rate limit exceeded."  # the status's usual message


async def test_scripted_error_headers_and_a_raw_body(
    server: ModelServer, claude: anthropic.AsyncAnthropic
) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    server.add(
        Reply(error=ErrorReply(status=429, retry_after=9, headers={"retry-after-ms": "1500"})),
        Reply(error=ErrorReply(status=429, retry_after=9, headers={"Retry-After": date})),
        Reply(error=ErrorReply(status=502, body="<html>bad gateway</html>")),
    )

    with pytest.raises(anthropic.RateLimitError) as both:
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))
    with pytest.raises(anthropic.RateLimitError) as dated:
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))
    with pytest.raises(anthropic.InternalServerError) as gateway:
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))

    headers = both.value.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("9", "1500")
    assert dated.value.response.headers.get_list("retry-after") == [date]  # the scripted one wins
    assert gateway.value.status_code == 502
    assert gateway.value.response.headers["content-type"].startswith("text/html")
    assert gateway.value.response.text == "<html>bad gateway</html>"


async def test_anthropic_overload_mid_stream(
    server: ModelServer, claude: anthropic.AsyncAnthropic
) -> None:
    server.add({"reply": {"error": {"status": 529, "after_events": 2}}})

    with pytest.raises(anthropic.APIStatusError) as raised:
        async with claude.messages.stream(model=CLAUDE, max_tokens=10, messages=ask("hi")) as s:
            await s.get_final_message()

    assert raised.value.type == "overloaded_error"


async def test_openai_error_mid_stream(server: ModelServer, gpt: openai.AsyncOpenAI) -> None:
    server.add({"reply": {"error": {"status": 500, "message": "boom", "after_events": 1}}})

    stream = await gpt.chat.completions.create(model=GPT, messages=ask("hi"), stream=True)
    with pytest.raises(openai.APIError, match="boom"):
        [chunk async for chunk in stream]


async def test_unmatched_request_fails_loudly_and_is_not_retried(server: ModelServer) -> None:
    server.add({"match": "task-1", "reply": {"text": "for task 1"}})

    async with anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key=KEY, max_retries=3
    ) as client:
        with pytest.raises(anthropic.InternalServerError, match="task-99") as raised:
            await client.messages.create(
                model=CLAUDE, max_tokens=10, messages=ask("Work on task-99 now")
            )

    assert "no scripted turn matches" in str(raised.value)
    assert raised.value.response.headers["x-should-retry"] == "false"
    [unmatched] = server.unmatched
    assert unmatched.status == 500 and unmatched.last_user_text == "Work on task-99 now"
    assert server.requests == [unmatched]
    assert len(server.pending) == 1


async def test_a_fallback_answers_what_no_turn_matches() -> None:
    with ModelServer(
        [{"match": "task-1", "reply": {"text": "for task 1"}}], fallback={"text": "ok"}
    ) as server:
        async with anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key=KEY, max_retries=0
        ) as client:
            other = await client.messages.create(
                model=CLAUDE, max_tokens=10, messages=ask("task-2")
            )
            first = await client.messages.create(
                model=CLAUDE, max_tokens=10, messages=ask("task-1")
            )

    answers = [block.text for m in (other, first) for block in m.content if block.type == "text"]
    assert answers == ["ok", "for task 1"]
    assert [(r.status, r.turn) for r in server.requests] == [(200, None), (200, 0)]
    assert server.unmatched == [] and server.pending == []


async def test_clear_drops_the_turns_and_faults_not_used_yet(
    server: ModelServer, claude: anthropic.AsyncAnthropic
) -> None:
    server.add(Reply(text="first"), Reply(text="second"))  # a bare reply answers anything
    server.fail_next(1, 529)
    with pytest.raises(anthropic.InternalServerError):
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))
    first = await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))
    server.fail_next(1, 529)

    server.clear()
    server.add(Reply(text="third"))
    third = await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))

    answers = [block.text for m in (first, third) for block in m.content if block.type == "text"]
    assert answers == ["first", "third"]
    assert [r.turn for r in server.requests] == [None, 0, 2]
    assert server.pending == []


async def test_the_header_carrying_the_key_is_recorded_but_not_the_key() -> None:
    with ModelServer(fallback={"text": "ok"}, api_key=KEY) as server, httpx2.Client() as http:
        url = f"{server.openai_base_url}/chat/completions"
        body = {"model": GPT, "messages": ask("hi")}
        sent = [
            http.post(url, json=body, headers={"x-api-key": KEY}),
            http.post(url, json=body, headers={"authorization": f"Bearer {KEY}"}),
            http.post(url, json=body, headers={"authorization": KEY}),  # no scheme: no key
            http.post(url, json=body),
        ]

    assert [r.status_code for r in sent] == [200, 200, 401, 401]
    headers = [(r.api_key_header, r.api_key_present) for r in server.requests]
    assert headers == [("x-api-key", True), ("authorization", True), (None, False), (None, False)]
    assert KEY not in repr(server.requests)


async def test_wrong_api_key_is_rejected_and_never_recorded() -> None:
    with ModelServer([{"reply": {"text": "hi"}}], api_key="right-key") as server:
        async with anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key="wrong-key", max_retries=0
        ) as client:
            with pytest.raises(anthropic.AuthenticationError):
                await client.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))

    assert "wrong-key" not in repr(server.requests)
    assert server.requests[0].api_key_present
    assert len(server.pending) == 1


# -- dropped connections, broken bodies, timeouts -------------------------------------------------


async def test_cut_stream_raises_in_both_sdks(
    server: ModelServer, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    server.add({"reply": {"text": "This will never arrive whole.", "cut_stream_after": 3}})
    server.add({"reply": {"text": "This will never arrive whole.", "cut_stream_after": 2}})

    received: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        async with claude.messages.stream(model=CLAUDE, max_tokens=10, messages=ask("hi")) as s:
            async for event in s:
                received.append(event.type)
    with pytest.raises(openai.APIConnectionError):
        stream = await gpt.chat.completions.create(model=GPT, messages=ask("hi"), stream=True)
        [chunk async for chunk in stream]

    assert "message_start" in received and "message_stop" not in received


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_cut_plain_request_is_a_connection_error(
    server: ModelServer, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI, api: str
) -> None:
    server.add({"reply": {"text": "lost", "cut_stream_after": 0}})

    if api == "anthropic":
        with pytest.raises(anthropic.APIConnectionError):
            await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))
    else:
        with pytest.raises(openai.APIConnectionError):
            await gpt.chat.completions.create(model=GPT, messages=ask("hi"))


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_a_body_cut_midway_is_a_connection_error(
    server: ModelServer, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI, api: str
) -> None:
    server.add({"reply": {"text": "half of this arrives", "cut_midway": True}})

    with pytest.raises((anthropic.APIConnectionError, openai.APIConnectionError)):
        if api == "anthropic":
            await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"))
        else:
            await gpt.chat.completions.create(model=GPT, messages=ask("hi"))

    assert [r.status for r in server.requests] == [200]  # the status line went out


async def test_a_stream_cut_midway_stops_inside_an_event(
    server: ModelServer, claude: anthropic.AsyncAnthropic
) -> None:
    server.add({"reply": {"text": "a long answer that is broken off " * 4, "cut_midway": True}})

    received: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        async with claude.messages.stream(model=CLAUDE, max_tokens=10, messages=ask("hi")) as s:
            async for event in s:
                received.append(event.type)

    assert "message_start" in received and "message_stop" not in received


@pytest.mark.parametrize("stream", [False, True])
async def test_malformed_body_fails_to_parse(
    server: ModelServer, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI, stream: bool
) -> None:
    server.add({"reply": {"malformed": True}, "times": 2})

    with pytest.raises(ValueError):
        if stream:
            async with claude.messages.stream(model=CLAUDE, max_tokens=1, messages=ask("x")) as s:
                await s.get_final_message()
        else:
            await claude.messages.create(model=CLAUDE, max_tokens=1, messages=ask("x"))
    with pytest.raises(ValueError):
        if stream:
            chunks = await gpt.chat.completions.create(model=GPT, messages=ask("x"), stream=True)
            [chunk async for chunk in chunks]
        else:
            await gpt.chat.completions.create(model=GPT, messages=ask("x"))


async def test_delayed_reply_trips_the_sdk_timeout(
    server: ModelServer, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    server.add({"reply": {"text": "too late", "delay": 30}, "times": 2})

    with pytest.raises(anthropic.APITimeoutError):
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=ask("hi"), timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await gpt.chat.completions.create(model=GPT, messages=ask("hi"), timeout=0.2)
    # Stopping the server (the fixture does) drops the waiting answers at once.


# -- scripting ------------------------------------------------------------------------------------


async def test_concurrent_requests_get_the_turns_naming_their_task(
    server: ModelServer, claude: anthropic.AsyncAnthropic
) -> None:
    # Listed in the opposite order to the requests, and slow, so both are in flight at once.
    server.add(
        {"match": "task-B", "reply": {"text": "answer for B", "delay": 0.2}},
        {"match": "task-A", "reply": {"text": "answer for A", "delay": 0.2}},
    )

    async def run(task: str) -> str:
        message = await claude.messages.create(
            model=CLAUDE, max_tokens=10, messages=ask(f"You are working on {task}.")
        )
        return message.content[0].text  # type: ignore[union-attr]

    answers = await asyncio.gather(run("task-A"), run("task-B"))

    assert answers == ["answer for A", "answer for B"]
    assert sorted(r.turn for r in server.requests if r.turn is not None) == [0, 1]
    assert server.pending == []


async def test_turns_filter_by_api_system_prompt_and_tool_result(
    server: ModelServer, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    server.add(
        {"api": "openai", "reply": {"text": "openai only"}},
        {"match": "reviewer", "reply": {"text": "from the system prompt"}},
        {"match_tool_result": "42 passed", "reply": {"text": "tests pass"}},
        {"api": "anthropic", "times": -1, "reply": {"text": "fallback"}},
    )
    tool_turn: Any = [
        {"role": "user", "content": "run the tests"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "test", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42 passed"}],
        },
    ]

    async def say(**extra: Any) -> str:
        message: Any = await claude.messages.create(model=CLAUDE, max_tokens=10, **extra)
        return str(message.content[0].text)

    system = await say(system="You are a code reviewer.", messages=ask("review"))
    tool = await say(messages=tool_turn)
    fallbacks = [await say(messages=ask("anything")) for _ in range(3)]
    completion = await gpt.chat.completions.create(model=GPT, messages=ask("hi"))

    assert (system, tool, fallbacks) == ("from the system prompt", "tests pass", ["fallback"] * 3)
    assert completion.choices[0].message.content == "openai only"
    assert server.pending == []


async def test_scenario_file(tmp_path: Path) -> None:
    server = ModelServer.from_file(SCENARIOS / "two_tasks.yaml")
    first = server.pending[0]
    assert first.match == "task-1" and first.reply.tool_calls == (
        ToolCall(name="read_file", input={"path": "src/app.py"}),
    )
    assert first.reply.usage == Usage(input=1200, output=40, cached=1000)

    with server:
        async with openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key=KEY, max_retries=0
        ) as client:
            completion = await client.chat.completions.create(model=GPT, messages=ask("task-2"))
            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(model=GPT, messages=ask("later"))
            with pytest.raises(openai.InternalServerError, match="no scripted turn"):
                await client.chat.completions.create(model=GPT, messages=ask("later"))

    reply = json.loads(completion.choices[0].message.content or "")
    assert reply == {"status": "done", "files": ["README.md"]}
    as_json = tmp_path / "scenario.json"
    as_json.write_text(json.dumps([{"match": "x", "reply": {"text": "y"}}]))
    assert ModelServer.from_file(as_json).pending == [Turn(match="x", reply=Reply(text="y"))]


@pytest.mark.parametrize(
    "turn",
    [
        {"reply": {}},
        {"reply": {"text": "a", "json": {"b": 1}}},
        {"reply": {"text": "a", "error": {"status": 500}}},
        {"reply": {"txt": "typo"}},
        {"reply": {"text": "a"}, "times": 0},
        {"reply": {"text": "a"}, "api": "gemini"},
    ],
)
def test_bad_turns_are_rejected(turn: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        ModelServer([turn])


# -- pydantic-ai ----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_pydantic_ai_agent_calls_a_tool_then_answers(server: ModelServer, api: str) -> None:
    server.add(
        {"match": "task-7", "reply": {"tool_calls": [{"name": "lookup", "input": {"key": "k1"}}]}},
        {"match_tool_result": "value-of-k1", "reply": {"text": "The value is value-of-k1."}},
    )
    client: anthropic.AsyncAnthropic | openai.AsyncOpenAI
    model: Model
    if api == "anthropic":
        client = anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key=KEY, max_retries=0
        )
        model = AnthropicModel(CLAUDE, provider=AnthropicProvider(anthropic_client=client))
    else:
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0)
        model = OpenAIChatModel(GPT, provider=OpenAIProvider(openai_client=client))
    agent = Agent(model, system_prompt="You look things up.")
    looked_up: list[str] = []

    @agent.tool_plain
    def lookup(key: str) -> str:
        """Look a key up."""
        looked_up.append(key)
        return f"value-of-{key}"

    async with client:
        result = await agent.run("Please do task-7.")

    assert looked_up == ["k1"]
    assert result.output == "The value is value-of-k1."
    assert result.usage.requests == 2 and result.usage.input_tokens == 200
    first, second = server.requests
    assert (first.turn, second.turn) == (0, 1)
    assert "lookup" in json.dumps(first.body["tools"])
    assert "value-of-k1" in second.tool_results
    assert server.pending == [] and server.unmatched == []
