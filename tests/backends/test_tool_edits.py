"""The embedded agent's tools that change files, ``write_file`` and ``edit_file``, on real
files."""

from __future__ import annotations

from pathlib import Path

import pytest
from tool_worktree import make_outside, make_worktree

from blitz.backends.tools import AgentTools, ToolError, ToolLimits


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    return make_worktree(tmp_path, make_outside(tmp_path))


@pytest.fixture
def tools(worktree: Path) -> AgentTools:
    return AgentTools(worktree)


# -- write_file and edit_file ------------------------------------------------------------------


async def test_write_file_creates_parents_and_reports_bytes(
    tools: AgentTools, worktree: Path
) -> None:
    assert await tools.write_file("new/deep/mod.py", "x = 'é'\n") == (
        "wrote 9 bytes to new/deep/mod.py"
    )
    assert (worktree / "new" / "deep" / "mod.py").read_text() == "x = 'é'\n"
    assert await tools.write_file("README.md", "replaced") == "wrote 8 bytes to README.md"
    assert (worktree / "README.md").read_text() == "replaced"
    # A link that stays inside writes its target.
    await tools.write_file("shortcut/util.py", "VALUE = 1\n")
    assert (worktree / "src" / "pkg" / "util.py").read_text() == "VALUE = 1\n"


async def test_writing_what_a_file_already_holds_says_nothing_changed(
    tools: AgentTools, worktree: Path
) -> None:
    assert await tools.write_file("hello.py", "x = 1\n") == "wrote 6 bytes to hello.py"
    again = await tools.write_file("hello.py", "x = 1\n")
    assert again.startswith("hello.py already has exactly this content; nothing changed")
    assert "call finish" in again
    assert await tools.write_file("hello.py", "x = 2\n") == "wrote 6 bytes to hello.py"
    assert (worktree / "hello.py").read_text() == "x = 2\n"


async def test_append_to_file_keeps_what_the_file_holds(tools: AgentTools, worktree: Path) -> None:
    (worktree / "textutil.py").write_text(
        'def shout(text):\n    """Capitals."""\n    return text.upper()'
    )
    result = await tools.append_to_file(
        "textutil.py", "def slugify(text):\n    return text.lower()\n"
    )
    assert result == "appended 2 line(s) to textutil.py; it now has 7 lines"
    assert (worktree / "textutil.py").read_text() == (
        'def shout(text):\n    """Capitals."""\n    return text.upper()\n\n\n'
        "def slugify(text):\n    return text.lower()\n"
    )
    # Appending what the file already has changes nothing, and says so.
    again = await tools.append_to_file("textutil.py", "def slugify(text):\n    return text.lower()")
    assert again == (
        "textutil.py already has this text (from line 6); nothing appended (call finish if the"
        " task is done)"
    )
    # Only whole lines count: "x = 1" is not in a file holding "x = 10".
    (worktree / "consts.py").write_text("x = 10\n")
    assert (await tools.append_to_file("consts.py", "x = 1")).startswith("appended 1 line(s)")
    assert (worktree / "consts.py").read_text() == "x = 10\nx = 1\n"
    # Decorated code is set apart too; a file ending in a blank line gets none added.
    (worktree / "t.py").write_text("import pytest\n\n")
    await tools.append_to_file("t.py", "@pytest.mark.slow\ndef test_x():\n    pass")
    assert (worktree / "t.py").read_text() == (
        "import pytest\n\n@pytest.mark.slow\ndef test_x():\n    pass\n"
    )
    # Lines that start nothing new, and files that are not Python, get no blank lines.
    (worktree / ".gitignore").write_text("build/")
    await tools.append_to_file(".gitignore", "dist/")
    assert (worktree / ".gitignore").read_text() == "build/\ndist/\n"
    (worktree / "lib.ts").write_text("export const a = 1;\n")
    await tools.append_to_file("lib.ts", "export function f() {}\n")
    assert (worktree / "lib.ts").read_text() == "export const a = 1;\n\nexport function f() {}\n"
    # A missing file is made, directories too; nothing to add and binaries are refused.
    made = await tools.append_to_file("pkg/new.py", "x = 1\n")
    assert made == "created pkg/new.py with 1 line(s)"
    assert (worktree / "pkg" / "new.py").read_text() == "x = 1\n"
    with pytest.raises(ToolError, match="text is empty"):
        await tools.append_to_file("pkg/new.py", "\n  \n")
    (worktree / "blob.bin").write_bytes(b"\x00\x01")
    with pytest.raises(ToolError, match="binary file"):
        await tools.append_to_file("blob.bin", "x")
    with pytest.raises(ToolError, match="outside"):
        await tools.append_to_file("../escape.py", "x = 1")


async def test_a_python_definition_appended_again_replaces_the_one_the_file_had(
    tools: AgentTools, worktree: Path
) -> None:
    # Qwen2.5-Coder-1.5B appended test_slugify again, one assert longer, each turn (session 19):
    # Python keeps the last definition, and the earlier ones stayed behind as dead code.
    (worktree / "test_t.py").write_text(
        "import pytest\nfrom t import slugify, shout\n\n\n@pytest.mark.slow\n"
        "def test_slugify():\n    assert slugify('A') == 'a'\n\n\n"
        "def test_shout():\n    assert shout('a') == 'A'\n"
    )
    grown = (
        "def test_slugify():\n    assert slugify('A') == 'a'\n    assert slugify('a b') == 'a-b'"
    )
    result = await tools.append_to_file("test_t.py", grown)
    assert result == (
        "appended 3 line(s) to test_t.py; it now has 11 lines; it replaces the same names'"
        " definitions, taken out: test_slugify (lines 5-9)"
    )
    assert (worktree / "test_t.py").read_text() == (
        "import pytest\nfrom t import slugify, shout\n\n\n"
        "def test_shout():\n    assert shout('a') == 'A'\n\n\n" + grown + "\n"
    )
    # @overload definitions are meant to come several times; other files are not Python's.
    overloads = "@overload\ndef f(x: int) -> int: ...\n"
    (worktree / "o.py").write_text(overloads)
    await tools.append_to_file("o.py", "@overload\ndef f(x: str) -> str: ...")
    assert (worktree / "o.py").read_text().count("def f(") == 2
    (worktree / "lib.js").write_text("function f() {}\n")
    await tools.append_to_file("lib.js", "function f() { return 1; }")
    assert (worktree / "lib.js").read_text().count("function f(") == 2


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(  # the bench's draft: `import re` above slugify, appended under shout()
            "def shout(text):\n    return text.upper()\n",
            "import re\n\n\ndef shout(text):\n    return text.upper()\n\n\n"
            "def slugify(text):\n    return re.sub('[^a-z0-9]+', '-', text)\n",
            id="no-imports",
        ),
        pytest.param(
            '"""Text helpers."""\n\nimport os\n\nX = os.sep\n',
            '"""Text helpers."""\n\nimport os\nimport re\n\n\nX = os.sep\n\n\n'
            "def slugify(text):\n    return re.sub('[^a-z0-9]+', '-', text)\n",
            id="after-the-imports",
        ),
        pytest.param(
            '"""Text helpers."""\n\n\ndef shout(text):\n    return text.upper()\n',
            '"""Text helpers."""\n\nimport re\n\n\ndef shout(text):\n    return text.upper()\n'
            "\n\ndef slugify(text):\n    return re.sub('[^a-z0-9]+', '-', text)\n",
            id="after-the-docstring",
        ),
        pytest.param(  # code above an import: not a header to add to
            "import sys\nsys.path.insert(0, 'src')\nimport lib\n",
            "import sys\nsys.path.insert(0, 'src')\nimport lib\nimport re\n\n"
            "def slugify(text):\n    return re.sub('[^a-z0-9]+', '-', text)\n",
            id="guarded",
        ),
    ],
)
async def test_the_imports_an_append_starts_with_go_to_the_files_imports(
    tools: AgentTools, worktree: Path, before: str, after: str
) -> None:
    (worktree / "t.py").write_text(before)
    said = await tools.append_to_file(
        "t.py", "import re\n\ndef slugify(text):\n    return re.sub('[^a-z0-9]+', '-', text)"
    )
    assert (worktree / "t.py").read_text() == after
    if "sys.path" not in before:
        assert said.endswith("1 import line(s) of it went to the file's imports at the top")
        # The same again is held, though its import is no longer above its code.
        again = await tools.append_to_file(
            "t.py", "import re\n\ndef slugify(text):\n    return re.sub('[^a-z0-9]+', '-', text)"
        )
        assert again.startswith("t.py already has this text (from line")
        assert (worktree / "t.py").read_text() == after
    # Imports alone stay where the append puts them; a __future__ import too, which the
    # compiler then refuses, and so is the append.
    (worktree / "u.py").write_text("X = 1\n")
    await tools.append_to_file("u.py", "import re")
    with pytest.raises(ToolError, match="from __future__ imports must occur at the beginning"):
        await tools.append_to_file("u.py", "from __future__ import annotations\n\nY = 2")
    assert (worktree / "u.py").read_text() == "X = 1\nimport re\n"


async def test_an_import_the_python_file_has_is_not_appended_again(
    tools: AgentTools, worktree: Path
) -> None:
    # Qwen2.5-Coder-1.5B appended the same test with its imports each turn (session 20): the
    # test replaced its own, and the imports piled up at the end of the file.
    (worktree / "test_t.py").write_text(
        "from t import shout\nimport pytest\n\n\ndef test_shout():\n    assert shout('a') == 'A'\n"
    )
    again = (
        "from t import shout\nimport pytest\nimport re\n\ndef test_shout():\n"
        "    assert shout('') == ''"
    )
    await tools.append_to_file("test_t.py", again)
    await tools.append_to_file("test_t.py", again)
    assert (worktree / "test_t.py").read_text() == (
        "from t import shout\nimport pytest\nimport re\n\n\ndef test_shout():\n"
        "    assert shout('') == ''\n"
    )
    # Imports alone, all held (in another order, one of them on several lines): nothing is
    # appended, and the model is told so.
    (worktree / "test_u.py").write_text(
        "import pytest\nfrom t import (\n    shout,\n    slugify,\n)\n\n\ndef test_a():\n    pass\n"
    )
    said = await tools.append_to_file("test_u.py", "from t import slugify, shout\nimport pytest\n")
    assert said == "test_u.py already has these imports; nothing appended"
    # An import that brings a new name stays whole; an aliased one is another name.
    await tools.append_to_file(
        "test_u.py", "from t import shout, title\nimport pytest as pt\n\ndef test_b():\n    pass"
    )
    assert (worktree / "test_u.py").read_text() == (
        "import pytest\nfrom t import (\n    shout,\n    slugify,\n)\nfrom t import shout, title\n"
        "import pytest as pt\n\n\ndef test_a():\n    pass\n\n\ndef test_b():\n    pass\n"
    )
    # Text that does not parse: its one-line imports are still read (the append is refused as
    # it breaks the file, and made when the same is asked again).
    with pytest.raises(ToolError, match="would not be valid Python"):
        await tools.append_to_file("test_u.py", "import pytest\ndef test_c(:\n")
    await tools.append_to_file("test_u.py", "import pytest\ndef test_c(:\n")
    assert (worktree / "test_u.py").read_text().count("import pytest\n") == 1
    # A form feed is no line break to Python: the lines dropped are the imports'.
    await tools.append_to_file("test_u.py", "\x0c\nimport pytest\n\ndef test_d():\n    pass")
    assert (worktree / "test_u.py").read_text().endswith("\ndef test_d():\n    pass\n")
    assert (worktree / "test_u.py").read_text().count("import pytest\n") == 1
    # Other files keep what they are given.
    (worktree / "notes.txt").write_text("import re\n")
    await tools.append_to_file("notes.txt", "import os\nimport re")
    assert (worktree / "notes.txt").read_text() == "import re\nimport os\nimport re\n"


async def test_python_code_indented_as_a_whole_is_written_without_that_indentation(
    tools: AgentTools, worktree: Path
) -> None:
    # What Qwen2.5-Coder-1.5B wrote (session 15): a test file's code indented inside the JSON
    # string; Python refused the file (IndentationError) and the gates failed.
    written = await tools.write_file(
        "test_textutil.py",
        "\n      from textutil import shout\n\n      def test_shout():\n"
        '          assert shout("hi") == "HI"\n    ',
    )
    assert written.endswith(
        "(the code's lines were all indented: written at the top level, without that indentation)"
    )
    text = 'from textutil import shout\n\ndef test_shout():\n    assert shout("hi") == "HI"\n'
    assert (worktree / "test_textutil.py").read_text() == text
    appended = await tools.append_to_file(
        "test_textutil.py", "\n    def test_more():\n        assert shout('a') == 'A'\n"
    )
    assert appended.startswith("appended 2 line(s) to test_textutil.py; it now has 8 lines (the")
    assert (worktree / "test_textutil.py").read_text() == (
        text + "\n\ndef test_more():\n    assert shout('a') == 'A'\n"
    )
    # A method added to the class the file ends with stays indented; so does what would not
    # compile either way, and what is not Python.
    (worktree / "box.py").write_text("class Box:\n    x = 1\n")
    await tools.append_to_file("box.py", "    def size(self):\n        return 1")
    assert (worktree / "box.py").read_text().endswith("\n    def size(self):\n        return 1\n")
    # (Files broken already, so not guarded: syntax_guard.)
    (worktree / "broken.py").write_text("(\n")
    (worktree / "deep.py").write_text("(\n")
    broken = "    def f(:\n        pass\n"
    assert "indented" not in await tools.write_file("broken.py", broken)
    assert (worktree / "broken.py").read_text() == broken
    # Code the compiler gives up on (a MemoryError here) is written as it came.
    deep = "    x = " + "-" * 200_000 + "1\n"
    assert "indented" not in await tools.write_file("deep.py", deep)
    assert (worktree / "deep.py").read_text() == deep
    assert "indented" not in await tools.write_file("notes.md", "    quoted\n")
    assert (worktree / "notes.md").read_text() == "    quoted\n"


async def test_a_rewrite_that_drops_definitions_says_which(
    tools: AgentTools, worktree: Path
) -> None:
    # What Qwen2.5-Coder-1.5B did in bench/local_model.py, told to add slugify() to a file
    # holding shout(): it wrote slugify() alone, and the repository's own test failed.
    old = "import re\n\n\ndef shout(text):\n    return text.upper()\n\n\nclass Box:\n    pass\n"
    (worktree / "textutil.py").write_text(old)
    result = await tools.write_file("textutil.py", "def slugify(text):\n    return text\n")
    assert result.startswith("wrote 35 bytes to textutil.py; the file no longer has these")
    assert "`def shout(text):`, `class Box:`, and has new ones: `def slugify(text):`." in result
    # ... and gives back their code, for append_to_file to put back.
    assert result.endswith(
        "If you meant to keep them, put them back by calling append_to_file with this text:\n"
        "```\ndef shout(text):\n    return text.upper()\n\n\nclass Box:\n    pass\n```"
    )
    assert "import re" not in result  # only definitions are named
    restored = await tools.append_to_file(
        "textutil.py", "def shout(text):\n    return text.upper()"
    )
    assert restored == "appended 2 line(s) to textutil.py; it now has 6 lines"
    assert (worktree / "textutil.py").read_text() == (
        "def slugify(text):\n    return text\n\n\ndef shout(text):\n    return text.upper()\n"
    )
    (worktree / "textutil.py").write_text(old)
    # Told to rename compute_total, it renamed it in shop.py alone (bench/local_model.py).
    (worktree / "shop.py").write_text("def compute_total(prices):\n    return sum(prices)\n")
    renamed = await tools.write_file(
        "shop.py",
        "def sum_prices(prices):\n    return  sum(prices)\n\n\ndef tax(p):\n    return 0\n",
    )
    # The same body under a new name is a rename: no offer to put the old one back (the model
    # put it back, run A of session 15).
    assert renamed == (
        "wrote 75 bytes to shop.py; you renamed `def compute_total(prices):` to"
        " `def sum_prices(prices):`: change every other file that uses the old name too (search"
        " for it)"
    )
    # A rename beside a replacement says both.
    (worktree / "shop.py").write_text(
        "def compute_total(prices):\n    return sum(prices)\n\n\ndef vat(p):\n    return 1\n"
    )
    both = await tools.write_file("shop.py", "def sum_prices(prices):\n    return sum(prices)\n")
    assert "you renamed `def compute_total(prices):` to `def sum_prices(prices):`" in both
    assert both.endswith(
        "; the file no longer has these definitions it had: `def vat(p):`. If you meant to keep"
        " them, put them back by calling append_to_file with this text:\n```\ndef vat(p):\n"
        "    return 1\n```"
    )
    # Written whole, with the change, or a rewrite of other lines: nothing to say.
    whole = old + "\n\ndef slugify(text):\n    return text\n"
    assert (
        await tools.write_file("textutil.py", whole) == f"wrote {len(whole)} bytes to textutil.py"
    )
    edited = whole.replace("return text.upper()", "return text.upper() + '!'")
    assert (
        await tools.write_file("textutil.py", edited) == f"wrote {len(edited)} bytes to textutil.py"
    )
    many, nl = "".join(f"export function f{n}() {{}}\n" for n in range(5)), "\n"
    (worktree / "lib.ts").write_text(many)
    assert (await tools.write_file("lib.ts", "")).endswith(
        "`export function f2() {}` and 2 more. If you meant to keep them, put them back by"
        f" calling append_to_file with this text:\n```\n{many.rstrip().replace(nl, nl * 3)}\n```"
    )


async def test_write_file_errors(worktree: Path) -> None:
    tools = AgentTools(worktree, limits=ToolLimits(write_max_bytes=10))
    with pytest.raises(ToolError, match="over the limit of 10"):
        await tools.write_file("big.txt", "x" * 11)
    with pytest.raises(ToolError, match="is a directory"):
        await tools.write_file("src", "x")
    with pytest.raises(ToolError, match=r"directory of 'README\.md/x'"):
        await tools.write_file("README.md/x", "x")
    assert not (worktree / "big.txt").exists()


async def test_edit_file_replaces_the_one_match(tools: AgentTools, worktree: Path) -> None:
    result = await tools.edit_file("src/app.py", "return 'hello'", "return 'bye'\n    # done")
    assert result == "edited src/app.py: replaced 1 line(s) at line 2 with 2 line(s)"
    assert (worktree / "src" / "app.py").read_text() == (
        "def main():\n    return 'bye'\n    # done\n"
    )


async def test_edit_file_keeps_line_endings_and_bytes_that_are_not_utf8(
    tools: AgentTools, worktree: Path
) -> None:
    (worktree / "legacy.txt").write_bytes(b"caf\xe9\r\nfoo\r\n")
    await tools.edit_file("legacy.txt", "foo", "bar")
    assert (worktree / "legacy.txt").read_bytes() == b"caf\xe9\r\nbar\r\n"


async def test_edit_file_without_a_match_quotes_the_closest_lines(
    tools: AgentTools, worktree: Path
) -> None:
    (worktree / "calc.py").write_text(
        "import math\n\n\ndef area(radius):\n    return math.pi * radius ** 2\n\n\nX = 1\n"
    )
    with pytest.raises(ToolError) as caught:
        await tools.edit_file("calc.py", "def area(r):\n    return math.pi * r ** 2", "pass")
    message = str(caught.value)
    assert message.startswith("old text not found in 'calc.py'.")
    assert "closest text is at lines 4-5" in message
    assert "   4| def area(radius):\n   5|     return math.pi * radius ** 2" in message
    assert "Copy the exact current text" in message
    assert "import math" not in message
    assert (worktree / "calc.py").read_text().count("radius") == 2  # unchanged


async def test_edit_file_without_a_match_points_out_whitespace(
    tools: AgentTools, worktree: Path
) -> None:
    with pytest.raises(ToolError, match="different whitespace or indentation") as caught:
        await tools.edit_file("src/app.py", "def main():\n\treturn 'hello'", "x")
    assert "   1| def main():" in str(caught.value)


async def test_edit_file_with_several_matches_says_how_many_and_where(
    tools: AgentTools, worktree: Path
) -> None:
    (worktree / "dup.py").write_text("x = 1\ny = 2\nx = 1\n")
    with pytest.raises(ToolError) as caught:
        await tools.edit_file("dup.py", "x = 1", "x = 3")
    assert str(caught.value) == (
        "old text matches 2 times in 'dup.py' (at lines 1, 3); include more of the surrounding"
        " lines in old so that it matches exactly once"
    )
    assert await tools.edit_file("dup.py", "x = 1\ny", "x = 3\ny") == (
        "edited dup.py: replaced 2 line(s) at line 1 with 2 line(s)"
    )
    assert (worktree / "dup.py").read_text() == "x = 3\ny = 2\nx = 1\n"


async def test_edit_file_refuses_empty_old_missing_files_and_binaries(
    tools: AgentTools, worktree: Path
) -> None:
    with pytest.raises(ToolError, match=r"old must not be empty; .* use write_file"):
        await tools.edit_file("src/app.py", "", "x")
    with pytest.raises(ToolError, match="does not exist"):
        await tools.edit_file("missing.py", "a", "b")
    (worktree / "blob.bin").write_bytes(b"a\x00b")
    with pytest.raises(ToolError, match="binary"):
        await tools.edit_file("blob.bin", "a", "b")
    (worktree / "empty.py").write_text("")
    with pytest.raises(ToolError, match="is empty; use write_file"):
        await tools.edit_file("empty.py", "a", "b")
