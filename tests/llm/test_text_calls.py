"""The model wrapper that turns tool calls written as text into tool calls, over pydantic-ai's
FunctionModel (the embedded agent's tests drive it at the wire: tests/backends)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import ToolDefinition

from blitz.llm.text_calls import TextCallingModel, offered_tools

WRITE_SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["path", "content"],
    "additionalProperties": False,
}
PARAMS = ModelRequestParameters(
    function_tools=[ToolDefinition(name="write_file", parameters_json_schema=WRITE_SCHEMA)],
    output_tools=[
        ToolDefinition(
            name="finish",
            parameters_json_schema={
                "type": "object",
                "properties": {"summary": {"type": "string"}},
                "required": ["summary"],
            },
        )
    ],
    output_mode="tool",
)
ASK: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart("go")])]


def answering(*parts: Any) -> TextCallingModel:
    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=list(parts))

    return TextCallingModel(FunctionModel(reply))


async def answer(model: TextCallingModel) -> ModelResponse:
    return await model.request(ASK, None, PARAMS)


def test_offered_tools_are_the_function_and_output_tools_with_their_schemas() -> None:
    offered = offered_tools(PARAMS)
    assert list(offered) == ["write_file", "finish"]
    assert offered["write_file"] == WRITE_SCHEMA


async def test_calls_in_text_become_tool_calls_with_fresh_ids_and_the_prose_is_kept() -> None:
    write = json.dumps({"name": "write_file", "arguments": {"path": "a", "content": "x"}})
    done = json.dumps({"name": "finish", "arguments": {"summary": "ok"}})
    model = answering(TextPart(f"Writing.\n<tool_call>{write}</tool_call>\n```json\n{done}\n```"))

    response = await answer(model)

    [text, first, second] = response.parts
    assert text == TextPart("Writing.")
    assert isinstance(first, ToolCallPart) and isinstance(second, ToolCallPart)
    assert (first.tool_name, first.args_as_dict()) == ("write_file", {"path": "a", "content": "x"})
    assert (second.tool_name, second.args_as_dict()) == ("finish", {"summary": "ok"})
    assert first.tool_call_id != second.tool_call_id
    assert model.failed == []


async def test_a_call_breaking_the_schema_is_still_made_for_the_tool_to_refuse() -> None:
    model = answering(TextPart('{"name": "write_file", "arguments": {"path": "a"}}'))

    [call] = (await answer(model)).parts

    assert isinstance(call, ToolCallPart) and call.args_as_dict() == {"path": "a"}


async def test_calls_that_cannot_be_made_stay_text_and_are_listed() -> None:
    text = '<tool_call>{"name": "rm", "arguments": {}}</tool_call>'
    model = answering(TextPart(text))

    response = await answer(model)

    assert response.parts == [TextPart(text)]
    assert len(model.failed) == 1 and "there is no tool named 'rm'" in model.failed[0]


async def test_native_calls_and_plain_prose_are_left_alone() -> None:
    native = ToolCallPart("write_file", {"path": "a", "content": "x"}, tool_call_id="c1")
    written = json.dumps({"name": "finish", "arguments": {"summary": "ok"}})
    assert (await answer(answering(TextPart(written), native))).parts == [TextPart(written), native]
    prose = answering(TextPart("All done, I think."))
    assert (await answer(prose)).parts == [TextPart("All done, I think.")]
    assert prose.failed == []


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from('{}[]"<>:, \nabcnamewrite_filetool_call`'), max_size=200))
async def test_any_text_comes_back_as_text_or_calls_to_offered_tools(text: str) -> None:
    model = answering(TextPart(text))

    response = await answer(model)

    calls = [part for part in response.parts if isinstance(part, ToolCallPart)]
    if not calls:
        assert response.parts == [TextPart(text)]  # untouched
    for call in calls:
        assert call.tool_name in ("write_file", "finish")
        assert isinstance(call.args_as_dict(), dict)
    if calls:  # the prose around them is kept when it is not blank
        texts = [part for part in response.parts if isinstance(part, TextPart)]
        assert all(part.content.strip() for part in texts)
