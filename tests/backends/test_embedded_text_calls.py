"""The embedded agent and models that write their tool calls as text (small local models): the
calls are run like any other, a model that calls nothing is told how, degenerate output is
re-asked, and a server that refuses the tool definitions is asked without them. The real
pydantic-ai/openai client talks to a scripted chat-completions server on 127.0.0.1; the tools
change a real git worktree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import assert_script_done, task
from embedded_helpers import COMPATIBLE, KEY, LLAMA_CPP_REFUSAL, backend, call_text
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from blitz.llm.errors import ModelOutputError, ProviderFailure
from blitz.testing.model_server import ModelServer

HELLO = "def hello():\n    return 'hello'\n"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def tools_of(index: int, server: ModelServer) -> list[str]:
    """The names of the tools the request at ``index`` defined."""
    body = server.requests[index].body
    return [tool["function"]["name"] for tool in body.get("tools") or ()]


# -- calls written as text ----------------------------------------------------------------------

WRITE = call_text("write_file", path="hello.py", content=HELLO)

FORMS = {
    "tags": f"I will add it.\n<tool_call>\n{WRITE}\n</tool_call>",
    "fenced json": f"Here is the call:\n```json\n{WRITE}\n```\nThat adds hello().",
    "bare json": WRITE,
    "doubled braces": "<tool_call>\n{" + WRITE + "}\n</tool_call>",
}


@pytest.mark.parametrize("form", FORMS)
async def test_a_call_written_as_text_is_run_and_the_run_finishes(
    server: ModelServer, worktree: Path, form: str
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"text": FORMS[form]}},
        {
            "match": "wrote 32 bytes to hello.py",
            "reply": {"text": f"<tool_call>{call_text('finish', summary='Added hello().')}"},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert result.summary == "Added hello()."
    assert (worktree / "hello.py").read_text() == HELLO
    assert "write_file hello.py" in result.messages
    # The call went back to the model as it wrote it, and its result as a plain message (a
    # model that writes its calls as text, shown them as interface calls, answers nothing).
    second = server.requests[1].body["messages"]
    assert second[-2] == {"role": "assistant", "content": FORMS[form]}
    assert second[-1] == {"role": "user", "content": "wrote 32 bytes to hello.py"}
    assert not any(m["role"] == "tool" or m.get("tool_calls") for m in second)
    assert_script_done(server)


async def test_prose_around_the_call_is_kept_and_several_calls_run_in_order(
    server: ModelServer, worktree: Path
) -> None:
    check = "python3 -c 'import hello; print(hello.hello())'"
    server.add(
        {
            "match": "Task t1",
            "reply": {
                "text": f"First the file.\n<tool_call>{WRITE}</tool_call>\nThen the check."
                f"\n<tool_call>{call_text('run_command', command=check)}</tool_call>"
            },
        },
        {
            "match": "exit code 0\nhello",
            "reply": {"text": call_text("finish", summary="Added hello().")},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert result.messages[:3] == (
        "First the file.\n\nThen the check.",
        "write_file hello.py",
        f"$ {check}",
    )
    # Both results, in order, as one message after the answer as the model wrote it.
    results = server.requests[1].body["messages"][-1]
    assert results["role"] == "user"
    assert results["content"] == "wrote 32 bytes to hello.py\n\nexit code 0\nhello\n"


async def test_invalid_arguments_in_a_text_call_get_the_retry_prompt_and_the_fix_runs(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"text": call_text("write_file", path="hello.py")}},
        {
            "match": "content",
            "reply": {"text": f"<tool_call>{WRITE}</tool_call>"},
        },
        {
            "match": "wrote 32 bytes",
            "reply": {"text": call_text("finish", summary="Added hello().")},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert (worktree / "hello.py").read_text() == HELLO
    retry = server.requests[1].body["messages"][-1]
    assert retry["role"] == "user"
    assert "content" in retry["content"] and "Field required" in retry["content"]
    assert any(m.startswith("retry write_file:") for m in result.messages)
    assert_script_done(server)


@pytest.mark.parametrize(
    "lines", [["def hello():", "    return 'hello'"], ["def hello():\n", "    return 'hello'\n"]]
)
async def test_content_given_as_a_list_of_lines_is_written_as_the_file(
    server: ModelServer, worktree: Path, lines: list[str]
) -> None:
    (worktree / "greet.py").write_text("def greet():\n    return 'hi'\n")
    edit = call_text(
        "edit_file", path="greet.py", old=["def greet():", "    return 'hi'"], new=["pass"]
    )
    server.add(
        {
            "match": "Task t1",
            "reply": {"text": call_text("write_file", path="hello.py", content=lines)},
        },
        {"match": "wrote 32 bytes to hello.py", "reply": {"text": edit}},
        {
            "match": "greet.py",
            "reply": {"text": call_text("finish", summary="Added hello().")},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert (worktree / "hello.py").read_text() == HELLO
    assert (worktree / "greet.py").read_text() == "pass\n"
    assert not any(m.startswith("retry ") for m in result.messages)
    assert_script_done(server)


async def test_every_answer_is_capped_at_the_output_token_limit(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"text": WRITE}}, {"reply": {"text": call_text("finish", summary="ok")}})

    result = await backend(server, COMPATIBLE, max_output_tokens=1000).run(task(worktree))

    assert result.ok, result.error
    assert [r.body.get("max_completion_tokens") for r in server.requests] == [1000, 1000]


# -- re-asks ------------------------------------------------------------------------------------


async def test_a_model_that_only_writes_prose_is_told_how_to_call_then_fails_saying_so(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"text": "You should   add a hello function."}, "times": -1})

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert not result.ok and not result.crashed
    assert result.error == "the model never called a tool: You should add a hello function."
    assert len(server.requests) == 3  # the question and two re-asks
    assert result.messages[1].startswith("re-asked: Your message called no tool")
    reask = server.requests[1].last_user_text
    assert "Your message called no tool" in reask and "<tool_call>" in reask
    assert "write_file(path: string, content: string)" in reask
    # The same conversation: the re-ask follows the model's answer.
    roles = [m["role"] for m in server.requests[2].body["messages"]]
    assert roles[-4:] == ["assistant", "user", "assistant", "user"]
    # Each re-ask a little warmer: at 0.2 a small model gives the same answer again.
    assert [r.body.get("temperature") for r in server.requests] == [0.2, 0.5, 0.8]


async def test_a_configured_temperature_stays_on_re_asks(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"text": "You should add a hello function."}, "times": -1})

    result = await backend(server, COMPATIBLE, temperature=0.1).run(task(worktree))

    assert not result.ok
    assert [r.body.get("temperature") for r in server.requests] == [0.1, 0.1, 0.1]


async def test_a_model_told_how_to_call_that_then_calls_goes_on(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"text": "I would write hello.py."}},
        {"match": "Your message called no tool", "reply": {"text": WRITE}},
        {
            "match": "wrote 32 bytes",
            "reply": {"text": call_text("finish", summary="Added hello().")},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert (worktree / "hello.py").read_text() == HELLO
    assert_script_done(server)


async def test_a_call_that_cannot_be_read_is_re_asked_with_its_error(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [{"name": "list_dir", "input": {}}]}},
        {
            "match": "README.md",
            "reply": {
                "text": '<tool_call>{"name": "write_file", "arguments": {"path": </tool_call>'
            },
        },
        {"match": "could not be made", "reply": {"text": WRITE}},
        {
            "match": "wrote 32 bytes",
            "reply": {"text": call_text("finish", summary="Added hello().")},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    reask = server.requests[2].last_user_text
    assert "the call to write_file" in reask and "valid JSON" in reask
    assert_script_done(server)


class Degenerating(WrapperModel):
    """The model's answers, except that one holding ``marker`` fails the way a stream stopped
    for repeating itself does (helper B's streaming wrapper raises this at the wire)."""

    def __init__(self, wrapped: Model, marker: str, reason: str = "repeating") -> None:
        super().__init__(wrapped)
        self.marker, self.reason = marker, reason

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        response = await self.wrapped.request(messages, model_settings, model_request_parameters)
        text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
        if self.marker in text:
            failure = ProviderFailure(
                kind="bad_output",
                status=None,
                retry_after=None,
                reason=self.reason,
                message=f"the model's output {self.reason}",
            )
            raise ModelOutputError(failure)
        return response


@pytest.mark.parametrize("reason", ["repeating", "too_long"])
async def test_degenerate_output_mid_run_is_re_asked_from_the_last_good_answer(
    server: ModelServer, worktree: Path, reason: str
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [{"name": "list_dir", "input": {}}]}},
        {"match": "README.md", "reply": {"text": "again and again and again"}},
        {"match": "Answer again, shorter", "reply": {"text": WRITE}},
        {
            "match": "wrote 32 bytes",
            "reply": {"text": call_text("finish", summary="Added hello().")},
        },
    )
    wrap = lambda model: Degenerating(model, "again and again", reason)  # noqa: E731

    result = await backend(server, COMPATIBLE, wrap=wrap).run(task(worktree))

    assert result.ok, result.error
    assert (worktree / "hello.py").read_text() == HELLO
    # The re-ask carries the conversation up to the last good answer, and its tool result.
    reask = server.requests[2].body["messages"]
    assert [m["role"] for m in reask[-3:]] == ["assistant", "tool", "user"]
    assert "again and again" not in json.dumps(reask)
    said = "repeated itself" if reason == "repeating" else "went on too long"
    assert said in reask[-1]["content"]
    assert_script_done(server)


async def test_degenerate_output_that_goes_on_fails_the_attempt_as_bad_output(
    server: ModelServer, worktree: Path
) -> None:
    server.add({"reply": {"text": "again and again"}, "times": -1})
    wrap = lambda model: Degenerating(model, "again and again")  # noqa: E731

    result = await backend(server, COMPATIBLE, wrap=wrap).run(task(worktree))

    assert not result.ok and not result.crashed and not result.config_error
    assert result.error == "the model's output repeating"
    assert len(server.requests) == 3


async def test_re_asks_stay_within_the_turn_limit(server: ModelServer, worktree: Path) -> None:
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [{"name": "list_dir", "input": {}}]}},
        {"reply": {"text": "again and again"}, "times": -1},
    )
    wrap = lambda model: Degenerating(model, "again and again")  # noqa: E731

    result = await backend(server, COMPATIBLE, wrap=wrap, max_turns=2).run(task(worktree))

    assert not result.ok
    assert result.error == "turn limit of 2 reached"


# -- text tool mode -----------------------------------------------------------------------------


async def test_a_server_refusing_the_tools_is_asked_without_them_for_the_rest_of_the_run(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"reply": {"error": {"status": 400, "message": "coder does not support tools"}}},
        {"match": "Task t1", "reply": {"text": f"<tool_call>{WRITE}</tool_call>"}},
        {
            "match": "wrote 32 bytes to hello.py",
            "reply": {"text": f"<tool_call>{call_text('finish', summary='Added hello().')}"},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert (worktree / "hello.py").read_text() == HELLO
    assert len(server.requests) == 3
    assert "write_file" in tools_of(0, server)
    assert tools_of(1, server) == [] and tools_of(2, server) == []
    assert "tool_choice" not in server.requests[1].body
    [system] = [m["content"] for m in server.requests[1].body["messages"] if m["role"] == "system"]
    assert system.startswith("You are an autonomous coding agent")
    assert "Tools cannot be called through a tool-calling interface" in system
    assert "write_file(path: string, content: string)" in system
    # Earlier calls and results go back as text: the call as the model wrote it.
    last = server.requests[2].body["messages"]
    assert {m["role"] for m in last} == {"system", "user", "assistant"}
    assert last[-2]["content"] == f"<tool_call>{WRITE}</tool_call>"
    assert last[-1]["content"] == "wrote 32 bytes to hello.py"
    assert_script_done(server)


async def test_a_refusal_the_text_mode_does_not_get_past_stands_as_a_config_error(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"reply": {"error": {"status": 400, "message": "coder does not support tools"}}},
        {"reply": {"error": {"status": 400, "message": "prompt too odd"}}},
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert not result.ok
    assert result.config_error and "does not support tools" in result.config_error
    assert len(server.requests) == 2


async def test_llama_cpp_refusing_a_schema_at_the_wire_switches_to_text_tool_mode(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"reply": {"error": {"status": 400, "message": LLAMA_CPP_REFUSAL}}},
        {"match": "Task t1", "reply": {"text": f"<tool_call>{WRITE}</tool_call>"}},
        {"match": "wrote 32 bytes", "reply": {"text": call_text("finish", summary="Done.")}},
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert "write_file" in tools_of(0, server)
    assert tools_of(1, server) == [] and tools_of(2, server) == []
    assert_script_done(server)


async def test_a_stream_that_repeats_itself_is_stopped_and_re_asked(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [{"name": "list_dir", "input": {}}]}},
        {"match": "README.md", "reply": {"text": "I will write it now. " * 200}},
        {"match": "repeated itself", "reply": {"text": WRITE}},
        {
            "match": "wrote 32 bytes",
            "reply": {"text": call_text("finish", summary="ok")},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert (worktree / "hello.py").read_text() == HELLO
    assert "re-asked: Your last answer repeated itself" in result.messages[2]
    assert_script_done(server)
    # Three answers reported 20 output tokens each; the stopped one, which never reported any,
    # is charged an estimate of what it had streamed (600 or more characters, ~4 a token).
    assert result.usage.output_tokens >= 3 * 20 + 600 // 4


async def test_a_call_written_before_the_answer_loops_is_made(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"text": WRITE + "\nThis writes hello.py. " * 200}},
        {
            "match": "wrote 32 bytes",
            "reply": {"text": call_text("finish", summary="ok")},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    # The loop after the call was stopped; the call written before it was made, with no re-ask.
    assert result.ok, result.error
    assert (worktree / "hello.py").read_text() == HELLO
    assert not any("re-asked" in message for message in result.messages)
    assert_script_done(server)
