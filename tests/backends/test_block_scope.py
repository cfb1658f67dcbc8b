"""Code from an answer's block does not change a Python definition the task is not about: it is
kept as the file has it, and the model told. Qwen2.5-Coder-1.5B (bench/local_model.py, session
23), its ``test_slugify`` failing, showed the whole test file: the test fixed, and ``test_shout``
given slugify's cases with ``shout`` in their place, which broke a test that passed. The
end-to-end test runs the real pydantic-ai/openai client against a scripted chat-completions server
on 127.0.0.1, its tools changing a real git worktree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import assert_script_done
from embedded_helpers import COMPATIBLE, KEY, SHOUT, backend, call_text, slugify_task

from blitz.backends.block_scope import kept_out_of_scope, words
from blitz.backends.tools import AgentTools
from blitz.testing.model_server import ModelServer

TASK = words("Add slugify(text) to textutil.py, and its test to test_textutil.py.")
TESTS = (
    "from textutil import shout, slugify\n\n\n"
    'def test_shout():\n    assert shout("hi") == "HI"\n\n\n'
    "def test_slugify():\n    assert slugify('No-Space') == 'nospace'\n"
)
SHOUT_BROKEN = (
    'def test_shout():\n    assert shout("hi") == "HI"\n'
    '    assert shout("Python 3.8") == "python-3-8"\n'
)
ANSWERED = (
    "from textutil import shout, slugify\n\n\n"
    + SHOUT_BROKEN
    + "\n\ndef test_slugify():\n    assert slugify('No-Space') == 'no-space'\n"
)


def test_a_definition_the_task_is_not_about_is_kept_as_the_file_has_it() -> None:
    code, kept = kept_out_of_scope("test_textutil.py", TESTS, ANSWERED, TASK, appended=False)
    assert kept == ["test_shout"]
    assert code == TESTS.replace("'nospace'", "'no-space'")
    # Appended, the file keeps its own: the block's is taken out.
    code, kept = kept_out_of_scope("test_textutil.py", TESTS, ANSWERED, TASK, appended=True)
    assert kept == ["test_shout"]
    assert "test_shout" not in code and "'no-space'" in code


def test_what_the_task_is_about_may_change() -> None:
    # Renamed across files: a caller uses the old name, which the task names.
    old = "from util import total\n\n\ndef report(xs):\n    return total(xs)\n"
    new = "from util import sum_all\n\n\ndef report(xs):\n    return sum_all(xs)\n"
    rename = words("Rename total() to sum_all() in util.py and its callers")
    assert kept_out_of_scope("app.py", old, new, rename, appended=False) == (new, [])
    # A constant it reads, a method it calls by attribute, a test the gates said fails.
    old = "LIMIT = 3\n\n\ndef f(x):\n    return x.strip()[:LIMIT]\n"
    new = "LIMIT = 3\n\n\ndef f(x):\n    return x.strip()[:LIMIT + 1]\n"
    assert kept_out_of_scope("m.py", old, new, words("raise LIMIT"), appended=False)[1] == []
    assert kept_out_of_scope("m.py", old, new, words("no strip"), appended=False)[1] == []
    assert kept_out_of_scope("m.py", old, new, words("FAILED m.py::f"), appended=False)[1] == []
    # Its own parameters and locals are not what it is about ("the text" names no code).
    assert kept_out_of_scope("m.py", old, new, words("x the text"), appended=False)[1] == ["f"]


def test_what_is_kept_is_whole_with_decorators_and_only_python_that_parses() -> None:
    old = "import pytest\n\n\n@pytest.mark.slow\ndef test_a():\n    assert 1\n"
    new = (
        "import pytest\n\n\n@pytest.mark.fast\n@other\ndef test_a():\n    assert 2\n\n"
        "def b(): ...\n"
    )
    code, kept = kept_out_of_scope("t.py", old, new, TASK, appended=False)
    assert kept == ["test_a"]
    assert (
        code
        == "import pytest\n\n\n@pytest.mark.slow\ndef test_a():\n    assert 1\n\ndef b(): ...\n"
    )
    # The same code reformatted is no change; new definitions are never kept out.
    same = "import pytest\n@pytest.mark.slow\ndef test_a():\n    assert (1)\n"
    assert kept_out_of_scope("t.py", old, same, TASK, appended=False) == (same, [])
    # Not Python, or not parsing: as it came.
    assert kept_out_of_scope("t.js", old, new, TASK, appended=False) == (new, [])
    assert kept_out_of_scope("t.py", old, new + "def (:\n", TASK, appended=False)[1] == []
    assert kept_out_of_scope("t.py", old + "(\n", new, TASK, appended=False)[1] == []


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


async def test_the_whole_file_in_an_answer_changes_only_what_the_task_is_about(
    server: ModelServer, textutil: Path
) -> None:
    slugify = (
        "import re\n\n\ndef slugify(text):\n    return re.sub('[^a-z0-9]+', '-', text.lower())"
    )
    (textutil / "test_textutil.py").write_text(TESTS)
    answer = f"Here's the updated code:\n\n```python\n# test_textutil.py\n{ANSWERED}```"
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=slugify)},
        },
        {"match": "line(s) to textutil.py", "reply": {"text": answer}},
        {
            "match": "kept `test_shout` as the file has it",
            "reply": {"text": call_text("finish", summary="Fixed the test.")},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok, result.error
    assert (textutil / "test_textutil.py").read_text() == TESTS.replace("'nospace'", "'no-space'")
    assert (textutil / "textutil.py").read_text().startswith("import re\n\n\n" + SHOUT)
    told = server.requests[2].last_user_text
    assert "- write_file test_textutil.py: wrote" in told
    assert "; kept `test_shout` as the file has it (your code changed it" in told
    assert_script_done(server)


async def test_an_append_does_not_replace_a_definition_the_task_is_not_about(
    tmp_path: Path,
) -> None:
    # The 1.5B's own append_to_file calls gave test_shout slugify's cases three times over.
    tools = AgentTools(tmp_path)
    (tmp_path / "test_textutil.py").write_text(TESTS)
    said = await tools.append_to_file("test_textutil.py", SHOUT_BROKEN, TASK)
    assert said == (
        "nothing appended to test_textutil.py; kept `test_shout` as the file has it (your code"
        " changed it, and the task is not about it: change it with edit_file if it must change)"
    )
    assert (tmp_path / "test_textutil.py").read_text() == TESTS
    # Indented as a whole, with a test it may add: that one is appended.
    more = "    " + SHOUT_BROKEN.replace("\n", "\n    ") + "\n    def test_more():\n        pass\n"
    said = await tools.append_to_file("test_textutil.py", more, TASK)
    assert said.startswith("appended 2 line(s) to test_textutil.py")
    assert said.endswith(
        "; kept `test_shout` as the file has it (your code changed it, and the"
        " task is not about it: change it with edit_file if it must change)"
    )
    assert (tmp_path / "test_textutil.py").read_text() == TESTS + "\n\ndef test_more():\n    pass\n"
    # Without a scope (a caller that is not an agent's run): the append replaces it, as ever.
    await tools.append_to_file("test_textutil.py", SHOUT_BROKEN)
    assert (tmp_path / "test_textutil.py").read_text().endswith(SHOUT_BROKEN)
