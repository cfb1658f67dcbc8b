"""A finish that adds code its task's test files do not use is sent back once, asking for the test
(Qwen2.5-Coder-1.5B, told to add slugify() and its test, added slugify() alone and finished; the
repository's own tests passed, and the goal "succeeded" without the test). The real
pydantic-ai/openai client talks to a scripted chat-completions server on 127.0.0.1; the tools
change a real git worktree."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import assert_script_done
from embedded_helpers import (
    COMPATIBLE,
    KEY,
    SHOUT,
    SHOUT_TEST,
    backend,
    call,
    call_text,
    slugify_task,
)

from blitz.backends.finish_review import REVIEWED_FILES, FinishReview, comparisons, is_test_file
from blitz.testing.model_server import ModelServer

SLUGIFY = "def slugify(text):\n    return text.lower()"
SLUGIFY_AGAIN = "def slugify(text):\n    text = text.lower()\n    return text"
SLUGIFY_TEST = (
    "def test_slugify():\n    from textutil import slugify\n    assert slugify('A') == 'a'"
)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


async def test_code_added_without_the_test_its_task_asked_for_is_sent_back_once(
    server: ModelServer, textutil: Path
) -> None:
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY)},
        },
        {
            "match": "appended 2 line(s)",
            "reply": {"tool_calls": [call("finish", summary="Added.")]},
        },
        {
            "match": "no test uses slugify() yet",
            "reply": {
                "text": call_text("append_to_file", path="test_textutil.py", text=SLUGIFY_TEST)
            },
        },
        {
            "match": "appended 3 line(s) to test_textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Added, with its test.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok, result.error
    assert result.summary == "Added, with its test."
    said = server.requests[2].text
    assert (
        "You called finish, but no test uses slugify() yet, and this task's files include"
        " test_textutil.py: add a test that calls slugify there (append_to_file test_textutil.py,"
        " with the import it needs)"
    ) in said
    assert "re-asked: finish was called with no test uses slugify()" in result.messages
    assert "def test_slugify" in (textutil / "test_textutil.py").read_text()
    assert_script_done(server)


async def test_a_run_ending_in_prose_is_reviewed_too_and_a_model_that_insists_is_believed(
    server: ModelServer, textutil: Path
) -> None:
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY)},
        },
        {
            "match": "appended 2 line(s)",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY_AGAIN)},
        },
        {"match": "appended 3 line(s)", "reply": {"text": "I added slugify."}},
        {"match": "no test uses slugify() yet", "times": 2, "reply": {"text": "It needs no test."}},
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok, result.error
    assert result.summary == "(ended without calling finish) It needs no test."
    assert len(server.requests) == 5  # sent back twice, then believed
    # slugify defined twice is named once.
    assert "no test uses slugify() yet, and" in server.requests[3].text
    assert_script_done(server)


async def test_code_answered_in_text_after_a_send_back_is_re_asked_to_be_put_in_place(
    server: ModelServer, textutil: Path
) -> None:
    # Qwen2.5-Coder-1.5B, sent back for slugify's missing test (bench/local_model.py, session
    # 17), answered with a good test in a fenced block, "Add this code to test_textutil.py",
    # twice; the second was taken as its finish, and the wrong slugify went untested.
    shown = (
        "To finish the task, add this test:\n\n```python\n" + SLUGIFY_TEST + "\n```\n\n"
        "Add this code to `test_textutil.py`."
    )
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY)},
        },
        {
            "match": "appended 2 line(s) to textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Added.")]},
        },
        {"match": "no test uses slugify() yet", "reply": {"text": shown}},
        {
            "match": "code in a message changes no file",
            "reply": {
                "text": call_text("append_to_file", path="test_textutil.py", text=SLUGIFY_TEST)
            },
        },
        {
            "match": "appended 3 line(s) to test_textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Tested.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok and result.summary == "Tested.", result.error
    reask = server.requests[3].last_user_text
    assert reask.startswith("Your answer shows code, but code in a message changes no file")
    assert "no test uses slugify() yet" in reask  # and what its finish was sent back for
    assert "def test_slugify" in (textutil / "test_textutil.py").read_text()
    assert_script_done(server)


async def test_a_copy_of_the_new_code_in_the_test_file_is_no_test_and_is_sent_back(
    server: ModelServer, textutil: Path
) -> None:
    # What Qwen2.5-Coder-1.5B wrote for "test slugify" (bench/local_model.py, session 16): the
    # test file defined a slugify of its own, and the gate passed, testing nothing.
    copy = "def slugify(text):\n    return text.lower().replace(' ', '-')"
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY)},
        },
        {
            "match": "appended 2 line(s) to textutil.py",
            "reply": {"text": call_text("append_to_file", path="test_textutil.py", text=copy)},
        },
        {
            "match": "appended 2 line(s) to test_textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Added, with its test.")]},
        },
        {
            "match": "test_textutil.py defines its own slugify()",
            "reply": {
                "text": call_text(
                    "write_file",
                    path="test_textutil.py",
                    content=SHOUT_TEST + "\n\n" + SLUGIFY_TEST,
                )
            },
        },
        {
            "match": "test_textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Tested the real one.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok and result.summary == "Tested the real one.", result.error
    assert (
        "You called finish, but test_textutil.py defines its own slugify(): a test there would"
        " test that copy, not the slugify() this task adds."
    ) in server.requests[3].text
    assert "re-asked: finish was called with test_textutil.py defining its own slugify()" in (
        result.messages
    )
    assert_script_done(server)


@pytest.mark.parametrize(
    ("files", "added"),
    [
        (("textutil.py",), SLUGIFY),  # the task names no test file: no test was asked for
        (("textutil.py", "test_textutil.py"), "def _slug(text):\n    return text"),  # private
        (("textutil.py", "test_textutil.py"), "def shout(text):\n    return text"),  # not new
    ],
)
async def test_no_test_is_asked_for_when_the_task_names_none_or_nothing_public_is_new(
    server: ModelServer, textutil: Path, files: tuple[str, ...], added: str
) -> None:
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=added)},
        },
        {
            "match": "appended",
            "reply": {"tool_calls": [call("finish", summary="Done.")]},
        },
    )

    # (shout named: an answer's change to a definition the task is not about is not made; no
    # function asked for by name: one asked for must be defined.)
    instructions = "Work on textutil.py and its tests in test_textutil.py; shout may change."
    result = await backend(server, COMPATIBLE).run(
        slugify_task(textutil, files=files, title="Work on textutil", instructions=instructions)
    )

    assert result.ok and result.summary == "Done.", result.error
    assert len(server.requests) == 2
    assert_script_done(server)


def test_test_files_by_their_names() -> None:
    tests = ["test_x.py", "pkg/test_x.py", "x_test.go", "web/x.test.ts", "a.spec.js"]
    tests += ["tests/helpers.py", "src/__tests__/x.js", "test/x.rb"]
    others = ["textutil.py", "contest.py", "latest/x.py", "testing.py", "attest_x.py"]
    assert all(is_test_file(path) for path in tests)
    assert not any(is_test_file(path) for path in others)


async def test_a_change_wider_than_the_review_reads_is_not_reviewed(
    server: ModelServer, textutil: Path
) -> None:
    # Each reviewed file is read against its last commit; a change of more files than that is
    # no small model's slip.
    for n in range(REVIEWED_FILES):
        (textutil / f"data{n}.txt").write_text(f"{n}\n")
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY)},
        },
        {
            "match": "appended",
            "reply": {"tool_calls": [call("finish", summary="Done.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok and result.summary == "Done.", result.error
    assert len(server.requests) == 2


async def test_a_test_that_only_checks_the_function_returns_its_argument_is_sent_back(
    server: ModelServer, textutil: Path
) -> None:
    # What Qwen2.5-Coder-1.5B wrote (bench/local_model.py, session 16): a wrong slugify, and a
    # test (slugify('hi') == 'hi') that a slugify returning its argument unchanged passes.
    weak = "import textutil\n\ndef test_slugify():\n    assert textutil.slugify('hi') == 'hi'"
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY)},
        },
        {
            "match": "appended 2 line(s) to textutil.py",
            "reply": {"text": call_text("append_to_file", path="test_textutil.py", text=weak)},
        },
        {
            "match": "went to the file's imports at the top",
            "reply": {"tool_calls": [call("finish", summary="Added, with its test.")]},
        },
        {
            "match": "a slugify() that returns its argument unchanged",
            "reply": {
                "text": call_text("append_to_file", path="test_textutil.py", text=SLUGIFY_TEST)
            },
        },
        {
            "match": "appended 3 line(s) to test_textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Tested a change.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok and result.summary == "Tested a change.", result.error
    assert (
        "You called finish, but the test of slugify() only checks textutil.slugify('hi') == 'hi':"
        " a slugify() that returns its argument unchanged would pass it. Add a test of an input"
        " that slugify() has to change (for text: capitals, spaces, punctuation; whatever the task"
        " says it changes), with the result the task asks for (append_to_file test_textutil.py),"
        " then call finish."
    ) in server.requests[3].text
    assert "re-asked: finish was called with only textutil.slugify('hi') == 'hi' tested" in (
        result.messages
    )
    assert_script_done(server)


async def test_an_identity_test_is_sent_back_twice_then_the_finish_is_believed(
    server: ModelServer, textutil: Path
) -> None:
    # Told once, Qwen2.5-Coder-1.5B swapped slugify('hi') == 'hi' for slugify('123') == '123'
    # (bench/local_model.py, session 17).
    def tested(literal: str) -> str:
        check = f"    assert slugify({literal!r}) == {literal!r}\n"
        return f"{SHOUT_TEST}\n\ndef test_slugify():\n    from textutil import slugify\n{check}"

    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY)},
        },
        {
            "match": "appended 2 line(s) to textutil.py",
            "reply": {
                "text": call_text("write_file", path="test_textutil.py", content=tested("hi"))
            },
        },
        {"match": "wrote", "reply": {"tool_calls": [call("finish", summary="One.")]}},
        {
            "match": "only checks slugify('hi') == 'hi'",
            "reply": {
                "text": call_text("write_file", path="test_textutil.py", content=tested("123"))
            },
        },
        {"match": "wrote", "reply": {"tool_calls": [call("finish", summary="Two.")]}},
        {
            "match": "only checks slugify('123') == '123'",
            "reply": {"tool_calls": [call("finish", summary="Three.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok and result.summary == "Three.", result.error
    sent_back = [m for m in result.messages if m.startswith("re-asked: finish was called with")]
    assert sent_back == [
        "re-asked: finish was called with only slugify('hi') == 'hi' tested",
        "re-asked: finish was called with only slugify('123') == '123' tested",
    ]
    assert_script_done(server)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("assert slugify('hi') == 'hi'", [("slugify('hi') == 'hi'", True)]),
        ("assert 'hi' == m.slugify('hi')", [("'hi' == m.slugify('hi')", True)]),
        ("assert slugify(3) is 3", [("slugify(3) is 3", True)]),
        ("assert slugify('A b') == 'a-b'", [("slugify('A b') == 'a-b'", False)]),
        ("x = 'hi'\nassert slugify(x) == x", [("slugify(x) == x", False)]),  # not literals
        ("assert slugify('hi', sep='_') == 'hi'", [("slugify('hi', sep='_') == 'hi'", False)]),
        ("assert valid(True) == True", [("valid(True) == True", False)]),  # a bool: a verdict
        ("assert slugify('hi') != 'hi'", []),  # not an equality
        ("assert len(slugify('hi')) == 2", []),  # not the call's result itself
        ("assert slugify('hi') == 'hi' == 'hi'", []),  # chained: left alone
        ("def test(:\n", []),  # not Python: nothing said
    ],
)
def test_the_checks_a_test_makes_of_a_function(source: str, found: list[tuple[str, bool]]) -> None:
    assert comparisons(source, "slugify" if "valid" not in source else "valid") == found


def test_a_test_with_any_real_check_beside_an_identity_is_not_sent_back(textutil: Path) -> None:
    (textutil / "textutil.py").write_text(SHOUT + "\n\n" + SLUGIFY + "\n")
    (textutil / "test_textutil.py").write_text(
        SHOUT_TEST + "\n\ndef test_slugify():\n    from textutil import slugify\n"
        "    assert slugify('hi') == 'hi'\n    assert slugify('Hi There') == 'hi-there'\n"
    )
    review = FinishReview(textutil, ("textutil.py", "test_textutil.py"), needs_change=True)

    assert asyncio.run(review.problem()) == ("", "")
