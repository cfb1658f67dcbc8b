"""A finish sent back to a model that writes its calls as text starts a new conversation: the
task again, the files as the run left them, and what is missing. Qwen2.5-Coder-1.5B, sent back
in the same conversation, repeated its earlier calls in their order (it appended its slugify
test, then wrote the test file as it had been, which dropped the test) and finished again. A
model that calls tools through the interface is sent back in the same conversation, as before.
The real pydantic-ai/openai client talks to a scripted chat-completions server on 127.0.0.1; the
tools change a real git worktree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import assert_script_done
from embedded_helpers import COMPATIBLE, KEY, backend, call, call_text, slugify_task

from blitz.testing.model_server import ModelServer

SLUGIFY = "def slugify(text):\n    return text.lower()"
SLUGIFY_TEST = (
    "def test_slugify():\n    from textutil import slugify\n    assert slugify('A') == 'a'"
)
SENT_BACK = "no test uses slugify() yet"
ONLY_THE_TEST = ("test_textutil.py",)  # textutil.py is shown afresh as a file the run wrote


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def messages(server: ModelServer, index: int) -> list[dict[str, Any]]:
    found = server.requests[index].body["messages"]
    assert isinstance(found, list)
    return found


@pytest.mark.parametrize(
    "ending",
    [call_text("finish", summary="Done."), "I added slugify. Done."],
    ids=["finish", "prose"],
)
async def test_a_finish_sent_back_to_a_text_calling_model_starts_a_new_conversation(
    server: ModelServer, textutil: Path, ending: str
) -> None:
    """Sent back after its finish call, or after a run that ended in prose (its finish too)."""
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY)},
        },
        {"match": "appended 2 line(s)", "reply": {"text": ending}},
        {
            "match": SENT_BACK,
            "reply": {
                "text": call_text("append_to_file", path="test_textutil.py", text=SLUGIFY_TEST)
            },
        },
        {
            "match": "appended 3 line(s) to test_textutil.py",
            "reply": {"text": call_text("finish", summary="Added, with its test.")},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil, files=ONLY_THE_TEST))

    assert result.ok, result.error
    assert result.summary == "Added, with its test."
    assert_script_done(server)
    first, afresh = messages(server, 0), messages(server, 2)
    assert [m["role"] for m in afresh] == ["system", "user"]  # nothing of the first
    prompt = afresh[1]["content"]
    assert prompt.startswith(first[1]["content"].split("\n\n")[0])  # the task again
    shown = prompt.split("## textutil.py (as it is now)\n")[1]
    assert "def slugify(text):" in shown.split("##")[0]  # the file the run wrote, as it is
    where = prompt.split("## Where you are\n")[1]
    assert where.startswith("You have worked on this task already")
    assert SENT_BACK in where and "append_to_file test_textutil.py" in where
    assert "def test_slugify" in (textutil / "test_textutil.py").read_text()
    assert "started afresh: the files as they are, what is missing" in result.messages


async def test_a_model_calling_tools_through_the_interface_is_sent_back_in_its_conversation(
    server: ModelServer, textutil: Path
) -> None:
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"tool_calls": [call("append_to_file", path="textutil.py", text=SLUGIFY)]},
        },
        {"match": "appended 2 line(s)", "reply": {"tool_calls": [call("finish", summary="D.")]}},
        {
            "match": SENT_BACK,
            "reply": {
                "tool_calls": [call("append_to_file", path="test_textutil.py", text=SLUGIFY_TEST)]
            },
        },
        {
            "match": "appended 3 line(s) to test_textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Tested.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil, files=ONLY_THE_TEST))

    assert result.ok, result.error
    sent_back = messages(server, 2)
    assert len(sent_back) > 2 and sent_back[1] == messages(server, 0)[1]  # the same one, on
    assert sent_back[-1]["role"] == "tool" and SENT_BACK in sent_back[-1]["content"]
    assert not any("## Where you are" in str(m.get("content")) for m in sent_back)
