"""An edit whose old text is not where the call says is made where it is meant: in the named
file with its quotes the other way, or in the one other file of the task that has it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tool_worktree import make_outside, make_worktree

from blitz.backends.edit_where import edit_where_meant
from blitz.backends.tools import AgentTools, ToolError

MODULE = "def slugify(text):\n    return text.lower()\n"
TEST = (
    "from textutil import slugify\n\n\ndef test_slugify():\n"
    '    assert slugify("This is a test!123") == "this-is-a-test123"\n'
)
FILES = ("textutil.py", "test_textutil.py")


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = make_worktree(tmp_path, make_outside(tmp_path))
    (root / "textutil.py").write_text(MODULE)
    (root / "test_textutil.py").write_text(TEST)
    return root


@pytest.fixture
def tools(worktree: Path) -> AgentTools:
    return AgentTools(worktree)


async def test_an_edit_of_the_wrong_file_in_the_wrong_quotes_is_made_where_it_is_meant(
    tools: AgentTools, worktree: Path
) -> None:
    # What Qwen2.5-Coder-1.5B called in bench run U, shown its draft's test failing.
    result, edited = await edit_where_meant(
        tools,
        "textutil.py",
        "assert slugify('This is a test!123') == 'this-is-a-test123'",
        "assert slugify('This is a test!123') == 'this-is-a-test-123'",
        FILES,
    )

    assert edited == "test_textutil.py"
    assert result == (
        "the old text is not in textutil.py but in test_textutil.py: edited test_textutil.py:"
        " replaced 1 line(s) at line 5 with 1 line(s) (the old text's quotes as the file has"
        " them)"
    )
    assert (worktree / "textutil.py").read_text() == MODULE
    assert "== 'this-is-a-test-123'" in (worktree / "test_textutil.py").read_text()


async def test_quotes_the_other_way_in_the_named_file_and_exact_text_elsewhere(
    tools: AgentTools, worktree: Path
) -> None:
    result, edited = await edit_where_meant(
        tools, "test_textutil.py", "slugify('This is a test!123')", "slugify('x')", FILES
    )
    assert edited == "test_textutil.py" and result.endswith("as the file has them)")
    assert "slugify('x') ==" in (worktree / "test_textutil.py").read_text()

    result, edited = await edit_where_meant(
        tools, "test_textutil.py", "return text.lower()", "return text.upper()", FILES
    )
    assert edited == "textutil.py" and result.startswith("the old text is not in test_textutil")
    assert not result.endswith("as the file has them)")


async def test_text_in_no_file_or_in_more_than_one_fails_as_before(
    tools: AgentTools, worktree: Path
) -> None:
    with pytest.raises(ToolError, match=r"old text not found in 'textutil\.py'"):
        await edit_where_meant(tools, "textutil.py", "return text.title()", "x", FILES)
    # In two of the other files, or twice in one: no one place is meant.
    (worktree / "notes.py").write_text("slugify = None\n")
    (worktree / "other.py").write_text("def shout(text):\n    return text.lower()\n")
    both = (*FILES, "other.py", "nowhere.py")
    with pytest.raises(ToolError, match=r"old text not found in 'notes\.py'"):
        await edit_where_meant(tools, "notes.py", "return text.lower()", "x", both)
    with pytest.raises(ToolError, match=r"old text not found in 'notes\.py'"):
        await edit_where_meant(tools, "notes.py", "slugify(", "x", FILES)
    # Another of the tools' errors is not looked past.
    with pytest.raises(ToolError, match="does not exist"):
        await edit_where_meant(tools, "missing.py", "return text.lower()", "x", FILES)
    assert (worktree / "textutil.py").read_text() == MODULE
    assert (worktree / "test_textutil.py").read_text() == TEST
