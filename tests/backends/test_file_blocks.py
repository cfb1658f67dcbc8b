"""Code a model wrote in its message for a file, in a fenced block named after the file, is put in
place by the embedded agent when what it holds says how: the whole file is written over it, new
definitions alone are appended, a part of the file is not put in place (the model is re-asked to
make the change with a tool). Qwen2.5-Coder-1.5B, shown a failing test (bench/local_model.py,
session 18), answered "Here's the updated code:" and the whole test file in a ```python block
headed ``# test_textutil.py``, three times, and was re-asked each time until the attempt failed.
The end-to-end tests run the real pydantic-ai/openai client against a scripted chat-completions
server on 127.0.0.1, and the tools change a real git worktree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import assert_script_done
from embedded_helpers import COMPATIBLE, KEY, SHOUT, backend, call_text, slugify_task

from blitz.backends.file_blocks import (
    HELD,
    NONE_PLACED,
    NOT_PLACED,
    FileBlock,
    file_blocks,
    placement,
)
from blitz.testing.model_server import ModelServer

SLUGIFY = "def slugify(text):\n    return text.lower()"
SLUGIFY_TEST = "def test_slugify():\n    assert slugify('A') == 'a'\n"
WHOLE_TEST_FILE = (
    "from textutil import shout, slugify\n\n\ndef test_shout():\n"
    '    assert shout("hi") == "HI"\n\n\n' + SLUGIFY_TEST
)


# -- finding the blocks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("Here's the updated code:\n\n```python\n# a.py\nx = 1\n```\n", "a.py"),
        ("```js\n// src/b.test.js\nx = 1\n```", "src/b.test.js"),
        ("```html\n<!-- site/index.html -->\nx = 1\n```", "site/index.html"),
        ("```python\n# file: a.py\nx = 1\n```", "a.py"),
        ("```python a.py\nx = 1\n```", "a.py"),
        ("`a.py`:\n```python\nx = 1\n```", "a.py"),
        ("**pkg/a.py**\n\n```\nx = 1\n```", "pkg/a.py"),
        ("### a.py\n```python\nx = 1\n```", "a.py"),
        ("Here is the updated `a.py`:\n```python\nx = 1\n```", "a.py"),
        ("a.py:\n````markdown\nx = 1\n```\ninner\n```\n````", "a.py"),
    ],
)
def test_a_block_named_after_its_file_is_found(text: str, path: str) -> None:
    [block] = file_blocks(text)
    assert block.path == path
    assert block.code.startswith("x = 1\n")
    assert "a.py" not in block.code  # a header comment is not part of the code


def test_the_code_of_a_block_is_as_written_and_ends_in_a_newline() -> None:
    text = "```python\n# a.py\n\ndef f():\n    return 1\n```\n\n`b.py`:\n```python\ny = 2\n```"
    assert file_blocks(text) == [
        FileBlock("a.py", "def f():\n    return 1\n"),
        FileBlock("b.py", "y = 2\n"),
    ]


def test_a_block_holding_two_files_is_cut_at_the_second_ones_header() -> None:
    # Qwen2.5-Coder-1.5B's draft of a rename (bench run Y): both files in one block.
    text = (
        "```python\n# shop.py\ndef sum_prices(prices):\n    return sum(prices)\n\n"
        "# report.py\nfrom shop import sum_prices\n\n\ndef report(prices):\n"
        "    return sum_prices(prices)\n```"
    )
    assert file_blocks(text) == [
        FileBlock("shop.py", "def sum_prices(prices):\n    return sum(prices)\n"),
        FileBlock(
            "report.py",
            "from shop import sum_prices\n\n\ndef report(prices):\n    return sum_prices(prices)\n",
        ),
    ]
    # A path comment with code right above it is a comment; the block's own path again, too.
    kept = "```python\n# a.py\nx = 1\n# b.py\ny = 2\n\n# a.py\nz = 3\n```"
    assert file_blocks(kept) == [FileBlock("a.py", "x = 1\n# b.py\ny = 2\n\n# a.py\nz = 3\n")]


@pytest.mark.parametrize(
    "text",
    [
        "```python\nx = 1\n```",  # named after nothing
        "Add this code to `a.py`:\n\nIt is short.\n```python\nx = 1\n```",  # not the line before
        "```python\n# a.py\nx = 1\n",  # never closed: an answer cut off
        "```python\n# ../a.py\nx = 1\n```",  # out of the repository
        "```python\n# /etc/a.py\nx = 1\n```",
        "```python\n# a.py\n```",  # nothing in it
        "```python\n# the new helper in a.py\nx = 1\n```",  # a comment, not a path
        "See a.py for the details:\n```python\nx = 1\n```",  # a sentence naming it in passing
    ],
)
def test_a_block_not_named_after_a_file_in_the_repository_is_not_one(text: str) -> None:
    assert file_blocks(text) == []


def test_a_block_that_imports_the_module_it_is_named_after_is_not_that_module() -> None:
    # Qwen2.5-Coder-1.5B (bench/local_model.py, session 22): the sentence names the test file,
    # the header the module, and the code imports the module.
    test = "from textutil import shout, slugify\n\n\ndef test_shout():\n    assert shout('a')\n"
    said = f"Here's the updated `test_textutil.py` file:\n\n```python\n# textutil.py\n{test}```"
    [block] = file_blocks(said)
    assert block.path == "test_textutil.py" and block.code == test
    # With no other file named, it is no file's block; importing another module is fine.
    assert file_blocks(f"```python\n# textutil.py\n{test}```") == []
    assert file_blocks("```python\n# pkg/textutil.py\nimport pkg.textutil as t\n```") == []
    [kept] = file_blocks("```python\n# report.py\nfrom textutils import x\nimport reports\n```")
    assert kept.path == "report.py"


@pytest.mark.parametrize(
    ("old", "code", "how"),
    [
        (None, "x = 1\n", "write"),  # a new file
        ("\n", "x = 1\n", "write"),  # a blank one
        (SHOUT, SHOUT + "\n\n" + SLUGIFY, "write"),  # the whole file, with the new code
        (SHOUT, SLUGIFY, "append"),  # only what it does not have
        (SHOUT + "\n\n" + SLUGIFY, SLUGIFY, "append"),  # slugify() again: it replaces its own
        (SHOUT, "print(shout('x'))\n", None),  # no definition, in a file that has some
    ],
)
def test_how_a_block_goes_into_its_file(old: str | None, code: str, how: str | None) -> None:
    assert placement(old, code) == how


# -- the embedded agent -------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def wrote_slugify_then(answer: str) -> list[dict[str, object]]:
    """The script's first two turns: slugify appended, then ``answer``."""
    return [
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=SLUGIFY)},
        },
        {"match": "appended 2 line(s) to textutil.py", "reply": {"text": answer}},
    ]


def then_tested(told: str) -> list[dict[str, object]]:
    """The script's last two turns: once the model is told ``told``, the test appended, then
    finish."""
    test = "from textutil import slugify\n\n\n" + SLUGIFY_TEST
    return [
        {
            "match": told,
            "reply": {"text": call_text("append_to_file", path="test_textutil.py", text=test)},
        },
        {
            "match": "line(s) to test_textutil.py",
            "reply": {"text": call_text("finish", summary="Tested.")},
        },
    ]


async def test_the_whole_file_shown_in_the_answer_is_written_and_the_model_told(
    server: ModelServer, textutil: Path
) -> None:
    answer = (
        "To test it, import `slugify` in `test_textutil.py`. Here's the updated code:\n\n"
        f"```python\n# test_textutil.py\n{WHOLE_TEST_FILE}```\n\n"
        "After making this change, your test should pass. Call `finish` to complete the task."
    )
    server.add(
        *wrote_slugify_then(answer),
        {
            "match": "put in place for you",
            "reply": {"text": call_text("finish", summary="Added, with its test.")},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok and result.summary == "Added, with its test.", result.error
    assert (textutil / "test_textutil.py").read_text() == WHOLE_TEST_FILE
    told = server.requests[2].last_user_text
    assert told.startswith("The code in your answer was put in place for you")
    assert "- write_file test_textutil.py: wrote" in told
    assert any("from the answer's text: write_file test_textutil.py" in m for m in result.messages)
    assert_script_done(server)


async def test_new_definitions_alone_are_appended_keeping_the_file(
    server: ModelServer, textutil: Path
) -> None:
    answer = (
        "Add this test to `test_textutil.py`:\n\n```python\n"
        f"from textutil import slugify\n\n\n{SLUGIFY_TEST}```"
    )
    server.add(
        *wrote_slugify_then(answer),
        {
            "match": "append_to_file test_textutil.py: appended",
            "reply": {"text": call_text("finish", summary="Tested.")},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok and result.summary == "Tested.", result.error
    test_file = (textutil / "test_textutil.py").read_text()
    assert "def test_shout" in test_file and test_file.endswith(SLUGIFY_TEST)
    assert_script_done(server)


async def test_a_block_with_one_of_the_files_definitions_changed_replaces_only_that(
    server: ModelServer, textutil: Path
) -> None:
    # slugify() alone, changed, shown as textutil.py, which also has shout(): written over the
    # file it would drop shout(); appended, it replaces slugify() and keeps shout(). (The 1.5B,
    # its test failing, showed the one test it fixed under the test file's imports.)
    answer = f"Here is textutil.py:\n\n```python\n# textutil.py\n{SLUGIFY}.strip()\n```"
    server.add(
        *wrote_slugify_then(answer),
        *then_tested("it replaces the same names' definitions, taken out: slugify"),
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok, result.error
    assert (textutil / "textutil.py").read_text() == SHOUT + "\n\n" + SLUGIFY + ".strip()\n"
    assert_script_done(server)


async def test_a_block_with_no_definition_is_a_part_and_is_not_put_in_place(
    server: ModelServer, textutil: Path
) -> None:
    answer = "Then call it:\n\n```python\n# textutil.py\nprint(shout('x'))\n```"
    server.add(
        *wrote_slugify_then(answer),
        *then_tested("could not be put in place"),
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok, result.error
    why = "it has no definition and leaves out the code the file has: a part of the file"
    said = NOT_PLACED.format(path="textutil.py", why=why)
    assert server.requests[2].last_user_text == NONE_PLACED.format(results=said)
    assert (textutil / "textutil.py").read_text() == SHOUT + "\n\n" + SLUGIFY + "\n"
    assert_script_done(server)


async def test_a_block_its_tool_refuses_is_not_put_in_place_and_the_model_hears_the_error(
    server: ModelServer, textutil: Path
) -> None:
    # The tool's own error (here: a file where the block's directory would go) is what the model
    # is told, not only that code in a message changes no file.
    answer = "```python\n# textutil.py/helpers.py\ndef helper():\n    return 1\n```"
    server.add(
        *wrote_slugify_then(answer),
        *then_tested("cannot create the directory of 'textutil.py/helpers.py'"),
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok, result.error
    told = server.requests[2].last_user_text
    assert told.startswith("The code in your answer could not be put in place:\n- write_file ")
    assert "error: cannot create the directory of 'textutil.py/helpers.py'" in told
    assert told.endswith("then call finish.")
    assert (textutil / "textutil.py").read_text() == SHOUT + "\n\n" + SLUGIFY + "\n"
    assert_script_done(server)


async def test_code_the_files_hold_already_is_no_call_and_the_model_hears_so_a_bounded_time(
    server: ModelServer, textutil: Path
) -> None:
    # Qwen2.5-Coder-1.5B answered with the same two files four times (session 19), each put in
    # place as "nothing changed" and counted as a call: the run went round until its time ran out.
    answer = f"Here's the updated `test_textutil.py`:\n\n```python\n{WHOLE_TEST_FILE}```"
    server.add(
        *wrote_slugify_then(answer),
        {"match": "put in place for you", "reply": {"text": answer}},
        {"match": "already holds: nothing changed", "reply": {"text": answer}},
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    # Told so once (with the re-ask that said the code was put in place, two in a row: the
    # bound), then the run ends as its finish, and the review lets it by.
    assert result.ok, result.error
    assert result.summary.startswith("(ended without calling finish) Here's the updated")
    assert server.requests[3].last_user_text == HELD.format(paths="test_textutil.py")
    assert len(server.requests) == 4
    assert (textutil / "test_textutil.py").read_text() == WHOLE_TEST_FILE
    assert sum("from the answer's text" in m for m in result.messages) == 1
    assert_script_done(server)
