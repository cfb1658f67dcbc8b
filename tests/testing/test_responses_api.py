"""The model server's OpenAI Responses API, driven by the real OpenAI SDK (the Codex CLI itself
is driven against it in tests/backends/test_codex.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import openai
import pytest

from blitz.testing.model_server import ModelServer

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-responses-0123456789"
MODEL = "gpt-5.5"
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
SHELL = {"type": "function", "name": "exec_command", "parameters": {"type": "object"}}
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


@pytest.fixture
async def client(server: ModelServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key=KEY, max_retries=0
    ) as running:
        yield running


def user(text: str) -> list[Any]:
    return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}]


async def test_plain_text_with_usage(server: ModelServer, client: openai.AsyncOpenAI) -> None:
    server.add(
        {
            "match": "say hi",
            "reply": {"text": "Hello!", "usage": {"input": 7, "output": 3, "cached": 5}},
        }
    )

    response = await client.responses.create(
        model=MODEL, instructions="Be terse.", input=user("say hi")
    )

    assert response.output_text == "Hello!"
    assert response.status == "completed" and response.model == MODEL
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)
    assert response.usage.input_tokens_details.cached_tokens == 5
    [seen] = server.requests
    assert (seen.api, seen.path, seen.status, seen.turn, seen.stream) == (
        "openai",
        "/v1/responses",
        200,
        0,
        False,
    )
    assert seen.api_key_present
    assert "Be terse." in seen.text and seen.last_user_text == "say hi"


async def test_a_stream_sends_the_events_in_the_apis_order(
    server: ModelServer, client: openai.AsyncOpenAI
) -> None:
    long_text = "Streaming works, in several pieces of sixteen characters."
    server.add({"reply": {"text": long_text, "usage": {"input": 10, "output": 4}}})

    kinds: list[str] = []
    deltas: list[str] = []
    async with client.responses.stream(model=MODEL, input=user("go")) as stream:
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()

    assert "".join(deltas) == long_text and len(deltas) > 2
    assert final.output_text == long_text
    assert final.usage is not None and final.usage.total_tokens == 14
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


async def test_tool_calls_are_function_calls_or_custom_calls_as_the_request_declares(
    server: ModelServer, client: openai.AsyncOpenAI
) -> None:
    calls = [
        {"name": "exec_command", "input": {"cmd": "ls"}, "id": "call_a"},
        {"name": "apply_patch", "input": {"input": PATCH}},
    ]
    server.add({"reply": {"text": "Working.", "tool_calls": calls}, "times": 2})
    tools: Any = [SHELL, APPLY_PATCH]

    plain = await client.responses.create(model=MODEL, input=user("edit"), tools=tools)
    async with client.responses.stream(model=MODEL, input=user("edit"), tools=tools) as stream:
        async for _ in stream:
            pass
        streamed = await stream.get_final_response()

    for response in (plain, streamed):
        message, shell, patch = response.output
        assert message.type == "message"
        assert shell.type == "function_call"
        assert (shell.name, shell.call_id, json.loads(shell.arguments)) == (
            "exec_command",
            "call_a",
            {"cmd": "ls"},
        )
        assert patch.type == "custom_tool_call"
        assert (patch.name, patch.input) == ("apply_patch", PATCH)
        assert patch.call_id.startswith("call_")


async def test_a_freeform_tool_the_request_does_not_declare_is_a_function_call(
    server: ModelServer, client: openai.AsyncOpenAI
) -> None:
    server.add({"reply": {"tool_calls": [{"name": "apply_patch", "input": {"input": PATCH}}]}})

    response = await client.responses.create(model=MODEL, input=user("edit"), tools=[SHELL])

    [call] = response.output
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"input": PATCH}


async def test_turns_match_on_tool_outputs_and_calls(
    server: ModelServer, client: openai.AsyncOpenAI
) -> None:
    server.add(
        {"match_tool_result": "README.md", "reply": {"text": "I see a README."}},
        {"match": "task-7", "reply": {"text": "first"}},
    )
    conversation: Any = [
        *user("task-7: look around"),
        {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "README.md\nsrc\n"},
    ]

    response = await client.responses.create(model=MODEL, input=conversation)

    assert response.output_text == "I see a README."
    [seen] = server.requests
    assert seen.tool_results == "README.md\nsrc\n"
    assert "exec_command" in seen.text and "task-7" in seen.text
    assert seen.last_user_text == "task-7: look around"


async def test_errors_use_the_apis_error_body(
    server: ModelServer, client: openai.AsyncOpenAI
) -> None:
    server.fail_next(1, 429, retry_after=3)
    with pytest.raises(openai.RateLimitError) as limited:
        await client.responses.create(model=MODEL, input=user("hi"))
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "3"

    server.fail_next(1, 500, message="The server had an error.")
    with pytest.raises(openai.InternalServerError) as broken:
        await client.responses.create(model=MODEL, input=user("hi"))
    assert broken.value.body == {
        "message": "The server had an error.",
        "type": "server_error",
        "param": None,
        "code": None,
    }

    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key="sk-wrong", max_retries=0
    ) as wrong:
        with pytest.raises(openai.AuthenticationError) as rejected:
            await wrong.responses.create(model=MODEL, input=user("hi"))
    assert rejected.value.code == "invalid_api_key"
    assert [r.status for r in server.requests] == [429, 500, 401]


async def test_a_fault_mid_stream_ends_it_with_response_failed(
    server: ModelServer, client: openai.AsyncOpenAI
) -> None:
    server.add({"reply": {"error": {"status": 429, "after_events": 2, "message": "Slow down."}}})

    kinds: list[str] = []
    failed: Any = None
    async with client.responses.stream(model=MODEL, input=user("go")) as stream:
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.failed":
                failed = event.response
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    assert failed.status == "failed"
    assert (failed.error.code, failed.error.message) == ("rate_limit_exceeded", "Slow down.")


async def test_a_cut_stream_and_a_malformed_body_fail_the_client(
    server: ModelServer, client: openai.AsyncOpenAI
) -> None:
    server.add(
        {"reply": {"text": "never finished", "cut_stream_after": 3}},
        {"reply": {"malformed": True}},
    )

    kinds: list[str] = []
    with pytest.raises((httpx2.HTTPError, openai.APIError)):
        async with client.responses.stream(model=MODEL, input=user("go")) as stream:
            async for event in stream:
                kinds.append(event.type)
            await stream.get_final_response()
    assert "response.completed" not in kinds
    with pytest.raises((openai.APIError, json.JSONDecodeError, ValueError)):
        await client.responses.create(model=MODEL, input=user("go"))


async def test_an_unmatched_request_is_a_500_naming_it(
    server: ModelServer, client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.InternalServerError) as failed:
        await client.responses.create(model=MODEL, input="what now?")

    assert "no scripted turn matches" in str(failed.value)
    assert "what now?" in str(failed.value)
    assert [r.last_user_text for r in server.unmatched] == ["what now?"]


async def test_a_scripted_code_names_the_failure_mid_stream(
    server: ModelServer, client: openai.AsyncOpenAI
) -> None:
    server.add(
        {"reply": {"error": {"status": 429, "code": "insufficient_quota", "after_events": 2}}}
    )

    failed: Any = None
    async with client.responses.stream(model=MODEL, input=user("go")) as stream:
        async for event in stream:
            if event.type == "response.failed":
                failed = event.response
    assert (failed.error.code, failed.error.message) == (
        "insufficient_quota",
        "Rate limit exceeded.",
    )
