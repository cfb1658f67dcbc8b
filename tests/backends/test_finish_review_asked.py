"""A finish is checked against what the task's words ask for (:mod:`blitz.asked`): a function
asked for must be defined, one asked to be tested must be used by a test (not a copy of it), and
a name asked to be renamed must be gone. The real pydantic-ai/openai client talks to a scripted
chat-completions server on 127.0.0.1; the tools change a real git worktree."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import assert_script_done
from embedded_helpers import COMPATIBLE, KEY, SHOUT, SHOUT_TEST, backend, call, slugify_task
from engine_helpers import git

from blitz.backends.finish_review import FinishReview
from blitz.testing.model_server import ModelServer

SLUGIFY = "def slugify(text):\n    return text.lower()"
SLUGIFY_TEST = (
    "def test_slugify():\n    from textutil import slugify\n    assert slugify('A') == 'a'"
)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


async def test_a_finish_without_the_function_the_task_asks_for_is_sent_back(
    server: ModelServer, textutil: Path
) -> None:
    """The 1.5B, its task "Add a function shout(text)" carrying the replaced task's "add a
    function slugify(text)", wrote shout alone; the goal succeeded without slugify."""
    other = "def shouty(text):\n    return text.upper() + '!'"
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"tool_calls": [call("append_to_file", path="textutil.py", text=other)]},
        },
        {"match_tool_result": "appended", "reply": {"tool_calls": [call("finish", summary="x")]}},
        {
            "match_tool_result": "the task asks for slugify() and no file defines it yet",
            "reply": {"tool_calls": [call("append_to_file", path="textutil.py", text=SLUGIFY)]},
        },
        {
            "match_tool_result": "line(s) to textutil.py; it now has",
            "reply": {"tool_calls": [call("finish", summary="Added slugify.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil, files=("textutil.py",)))

    assert result.ok and result.summary == "Added slugify.", result.error
    assert "re-asked: finish was called with no slugify() defined" in result.messages
    assert "(textutil.py searched)" in server.requests[2].tool_results
    assert_script_done(server)


async def test_a_function_asked_for_that_another_committed_file_defines_is_found(
    server: ModelServer, textutil: Path
) -> None:
    (textutil / "slugs.py").write_text("def slugify(text):\n    return text\n")
    git(textutil, "add", ".")
    git(textutil, "commit", "-qm", "slugs")
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"tool_calls": [call("append_to_file", path="textutil.py", text="X = 1")]},
        },
        {"match_tool_result": "appended", "reply": {"tool_calls": [call("finish", summary="Ok.")]}},
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil, files=("textutil.py",)))

    assert result.ok and result.summary == "Ok.", result.error
    assert len(server.requests) == 2
    assert_script_done(server)


async def test_a_task_asking_to_test_a_function_is_sent_back_until_a_test_uses_it(
    server: ModelServer, textutil: Path
) -> None:
    """Bench run S: the task "Test that slugify(text) works as expected" was finished with the
    test file's quotes changed, its tests passed and the change was committed: no test used
    slugify. A task asking to test a function wants a test that calls it."""
    (textutil / "textutil.py").write_text(SHOUT + "\n\n" + SLUGIFY + "\n")
    git(textutil, "commit", "-qam", "slugify")
    quotes = SHOUT_TEST.replace('"', "'")
    server.add(
        {
            "match": "Task test-slugify",
            "reply": {"tool_calls": [call("write_file", path="test_textutil.py", content=quotes)]},
        },
        {"match_tool_result": "wrote", "reply": {"tool_calls": [call("finish", summary="x")]}},
        {
            "match_tool_result": "no test uses slugify() yet",
            "reply": {
                "tool_calls": [call("append_to_file", path="test_textutil.py", text=SLUGIFY_TEST)]
            },
        },
        {"match_tool_result": "appended", "reply": {"tool_calls": [call("finish", summary="y")]}},
    )
    request = slugify_task(
        textutil,
        files=("test_textutil.py",),
        task_id="test-slugify",
        title="Test that slugify(text) works as expected",
        instructions="In test_textutil.py add a test for slugify(text).",
    )

    result = await backend(server, COMPATIBLE).run(request)

    assert result.ok and result.summary == "y", result.error
    assert "re-asked: finish was called with no test uses slugify()" in result.messages
    assert "def test_slugify" in (textutil / "test_textutil.py").read_text()
    assert_script_done(server)


def test_a_copy_of_the_function_a_task_asks_to_test_is_no_test(textutil: Path) -> None:
    """Bench run S: the task "Add a test for slugify(text)" wrote a slugify into the test file
    and tested that; its tests passed and it was committed."""
    (textutil / "textutil.py").write_text(SHOUT + "\n\n" + SLUGIFY + "\n")
    git(textutil, "commit", "-qam", "slugify")
    (textutil / "test_textutil.py").write_text(
        SLUGIFY + "\n\n\ndef test_slugify():\n    assert slugify('A b') == 'a b'\n"
    )
    review = FinishReview(
        textutil, ("test_textutil.py",), needs_change=True, asks="Add a test for slugify(text)"
    )

    said, line = asyncio.run(review.problem())

    assert said.startswith(
        "You called finish, but test_textutil.py defines its own slugify(): a test there would"
        " test that copy, not the slugify() this task asks to test."
    )
    assert line == "re-asked: finish was called with test_textutil.py defining its own slugify()"


def test_a_rename_that_leaves_the_old_name_defined_is_sent_back(tmp_path: Path) -> None:
    """Bench run Y: the draft of "Rename the function compute_total to sum_prices" added
    sum_prices beside compute_total; the gates passed and the goal succeeded with both."""
    shop = "def compute_total(prices):\n    return sum(prices)\n"
    (tmp_path / "shop.py").write_text(shop)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "shop")
    (tmp_path / "shop.py").write_text(
        shop + "\n\ndef sum_prices(prices):\n    return sum(prices)\n"
    )
    asks = "Rename the function compute_total to sum_prices everywhere: in shop.py"
    review = FinishReview(tmp_path, ("shop.py",), needs_change=True, asks=asks)

    said, line = asyncio.run(review.problem())

    assert said.startswith(
        "You called finish, but the task asks to rename compute_total to sum_prices, and shop.py"
        " still defines compute_total(): a rename leaves no compute_total."
    )
    assert line == "re-asked: finish was called with compute_total() still defined"
    # Renamed, it is not sent back.
    (tmp_path / "shop.py").write_text(shop.replace("compute_total", "sum_prices"))
    assert (
        asyncio.run(FinishReview(tmp_path, ("shop.py",), needs_change=True, asks=asks).problem())[0]
        == ""
    )
