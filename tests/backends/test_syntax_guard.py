"""A write that would leave a Python file that does not compile is refused with the error, the
file as it was; made when the same is asked again (code for a newer Python than blitz's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tool_worktree import make_outside, make_worktree

from blitz.backends.syntax_guard import described, syntax_error
from blitz.backends.tools import AgentTools, ToolError

SLUGIFY = "import re\n\n\ndef slugify(text):\n    return re.sub('[^a-z0-9]+', '-', text.lower())\n"


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    return make_worktree(tmp_path, make_outside(tmp_path))


@pytest.fixture
def tools(worktree: Path) -> AgentTools:
    return AgentTools(worktree)


async def test_an_edit_that_breaks_a_python_file_is_refused_with_the_error(
    tools: AgentTools, worktree: Path
) -> None:
    # What Qwen2.5-Coder-1.5B did in bench/local_model.py (session 22, run L).
    (worktree / "textutil.py").write_text(SLUGIFY)
    with pytest.raises(ToolError) as refused:
        await tools.edit_file("textutil.py", "def slugify(text):", "def slugify(text.lower()):")
    assert str(refused.value) == (
        "refused: after this change textutil.py would not be valid Python, so the file is"
        " unchanged. Correct the code and make the change again.\n"
        "SyntaxError at line 4: invalid syntax\n"
        "    def slugify(text.lower()):\n"
        "                    ^"
    )
    assert (worktree / "textutil.py").read_text() == SLUGIFY
    # A correct edit goes through as ever.
    said = await tools.edit_file("textutil.py", "text.lower())", "text.lower()).strip('-')")
    assert said == "edited textutil.py: replaced 1 line(s) at line 5 with 1 line(s)"
    assert "strip('-')" in (worktree / "textutil.py").read_text()


async def test_the_same_write_made_again_is_carried_out_with_the_error_said(
    tools: AgentTools, worktree: Path
) -> None:
    # The check is blitz's own Python; the project's may be newer (a 3.12 f-string): a model
    # that insists is trusted, once refused.
    (worktree / "m.py").write_text("X = 1\n")
    with pytest.raises(ToolError, match="would not be valid Python"):
        await tools.edit_file("m.py", "X = 1", "X = (1")
    said = await tools.edit_file("m.py", "X = 1", "X = (1")
    assert said.startswith("edited m.py: replaced 1 line(s) at line 1 with 1 line(s); note: m.py")
    assert "does not compile with Python 3." in said
    assert (worktree / "m.py").read_text() == "X = (1\n"
    # Another broken change of another file is refused in its turn.
    (worktree / "n.py").write_text("Y = 2\n")
    with pytest.raises(ToolError, match=r"n\.py would not be valid Python"):
        await tools.edit_file("n.py", "Y = 2", "Y = [2")


async def test_a_file_broken_already_may_be_mended_a_step_at_a_time(
    tools: AgentTools, worktree: Path
) -> None:
    (worktree / "b.py").write_text("def f(:\n    return [1,\n")
    said = await tools.edit_file("b.py", "def f(:", "def f():")
    assert said.startswith("edited b.py")  # still broken (the list), and not refused
    await tools.edit_file("b.py", "[1,", "[1]")
    assert syntax_error("b.py", (worktree / "b.py").read_text()) is None


async def test_new_files_and_appends_are_guarded_other_languages_not(
    tools: AgentTools, worktree: Path
) -> None:
    with pytest.raises(ToolError, match=r"(?s)new.py would not .*line 1: expected ':'"):
        await tools.write_file("new.py", "def f()\n    return 1\n")
    assert not (worktree / "new.py").exists()
    (worktree / "t.py").write_text(SLUGIFY)
    with pytest.raises(ToolError, match="IndentationError at line 9: expected an indented"):
        await tools.append_to_file("t.py", "def shout(text):\nreturn text.upper()")
    assert (worktree / "t.py").read_text() == SLUGIFY
    await tools.append_to_file("t.py", "def shout(text):\n    return text.upper()")
    assert (
        (worktree / "t.py")
        .read_text()
        .endswith("\n\n\ndef shout(text):\n    return text.upper()\n")
    )
    # Not Python: never compiled.
    assert await tools.write_file("app.js", "function f( {\n") == "wrote 14 bytes to app.js"
    assert await tools.write_file("notes.txt", "def f(:\n") == "wrote 8 bytes to notes.txt"


def test_what_the_model_is_shown_of_an_error() -> None:
    error = syntax_error("x.py", "if True:\n        y = (1 +\n")
    assert error is not None
    assert described(error).startswith("SyntaxError at line 2: '(' was never closed\n")
    assert described(error).endswith("\n    y = (1 +\n        ^")
    # A NUL byte, or nesting the compiler gives up on: said, not raised.
    nul = syntax_error("x.py", "x = 1\x00\n")
    assert nul is not None and "null" in described(nul).lower()
    assert syntax_error("x.py", "x = " + "(" * 300 + ")" * 300 + "\n") is not None
    assert syntax_error("x.py", "x = 1\n") is None
