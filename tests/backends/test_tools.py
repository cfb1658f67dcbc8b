"""The embedded agent's tools, on real files and real subprocesses."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tool_worktree import GIT_SECRET, SECRET, make_outside, make_worktree

from blitz.backends.tools import (
    SEARCH_MAX_FILE_BYTES,
    AgentTools,
    ToolError,
    ToolLimits,
)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    return make_outside(tmp_path)


@pytest.fixture
def worktree(tmp_path: Path, outside: Path) -> Path:
    return make_worktree(tmp_path, outside)


@pytest.fixture
def tools(worktree: Path) -> AgentTools:
    return AgentTools(worktree)


def outside_unchanged(outside: Path) -> bool:
    return sorted(p.name for p in outside.iterdir()) == ["secret.txt"] and (
        outside / "secret.txt"
    ).read_text() == (SECRET + "\n")


# -- resolve -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/etc/passwd", "absolute"),
        ("../outside/secret.txt", "outside the worktree"),
        ("..", "outside the worktree"),
        ("src/../../outside/secret.txt", "outside the worktree"),
        ("a/../../x", "outside the worktree"),
        ("out/secret.txt", "symbolic link"),
        ("out", "symbolic link"),
        ("leak.txt", "symbolic link"),
        ("dangling.txt", "symbolic link"),
        ("out/../outside/secret.txt", "symbolic link"),  # lexically inside
        (".git/config", ".git"),
        (".git", ".git"),
        ("src/../.git/config", ".git"),
        ("nul\x00byte", "NUL"),
    ],
)
def test_resolve_refuses_escapes_with_an_actionable_message(
    tools: AgentTools, path: str, says: str
) -> None:
    with pytest.raises(ToolError, match=says) as caught:
        tools.resolve(path)
    assert repr(path) in str(caught.value) or "NUL" in says


def test_resolve_accepts_paths_inside_including_links_that_stay_inside(
    tools: AgentTools, worktree: Path
) -> None:
    root = Path(os.path.realpath(worktree))
    assert tools.resolve("src/app.py") == root / "src" / "app.py"
    assert tools.resolve("./src/../README.md") == root / "README.md"
    assert tools.resolve("") == root
    assert tools.resolve(".") == root
    assert tools.resolve("new/dir/file.txt") == root / "new" / "dir" / "file.txt"
    assert tools.resolve("shortcut/util.py") == root / "src" / "pkg" / "util.py"


def test_a_symlink_to_git_metadata_is_refused(tools: AgentTools, worktree: Path) -> None:
    (worktree / "gitdir").symlink_to(".git", target_is_directory=True)
    with pytest.raises(ToolError, match=r"\.git"):
        tools.resolve("gitdir/config")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[AgentTools, Path]:
    """A worktree full of links: out of it, into it, to its parent, to itself, to .git."""
    base = tmp_path_factory.mktemp("sandbox")
    (base / "outside").mkdir()
    (base / "outside" / "a").mkdir()
    root = base / "wt"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "f").write_text("a file, not a directory")
    (root / "out").symlink_to(base / "outside", target_is_directory=True)
    (root / "rel_out").symlink_to("../outside", target_is_directory=True)
    (root / "a" / "up").symlink_to("../..", target_is_directory=True)
    (root / "in").symlink_to("a/b", target_is_directory=True)
    (root / "loop").symlink_to("loop")
    (root / "dotgit").symlink_to(".git", target_is_directory=True)
    (root / "self").symlink_to(root, target_is_directory=True)
    return AgentTools(root), base


SEGMENTS = st.sampled_from(
    [
        "..",
        ".",
        "",
        "a",
        "b",
        "f",
        "x",
        "out",
        "rel_out",
        "up",
        "in",
        "loop",
        "dotgit",
        "self",
        ".git",
    ]
)


@settings(max_examples=400, deadline=None)
@given(segments=st.lists(SEGMENTS, max_size=8), absolute=st.booleans())
def test_resolve_never_returns_a_path_outside_the_worktree(
    sandbox: tuple[AgentTools, Path], segments: list[str], absolute: bool
) -> None:
    tools, _ = sandbox
    path = ("/" if absolute else "") + "/".join(segments)
    try:
        resolved = tools.resolve(path)
    except ToolError:
        resolved = None
    if resolved is not None:
        assert not absolute
        assert resolved.is_relative_to(tools.root)
        assert ".git" not in resolved.relative_to(tools.root).parts
        assert Path(os.path.realpath(resolved)) == resolved  # no link left to lead elsewhere
    if "loop" in segments:
        return  # os.path.realpath gives up on loops and is no oracle for them
    # Where the kernel would get by this path, worked out independently.
    reached = Path(os.path.realpath(os.path.join(tools.root, path)))
    reached_inside = reached.is_relative_to(tools.root) and ".git" not in (
        reached.relative_to(tools.root).parts
    )
    if resolved is not None:
        assert resolved == reached
    elif not absolute and not os.path.normpath(path or ".").startswith(".."):
        # Refused without a lexical '..' escape: only because the kernel would leave the tree.
        assert not reached_inside


def test_a_link_loop_cannot_hide_a_link_that_leads_out(tools: AgentTools, worktree: Path) -> None:
    # os.path.realpath stops resolving at a loop and returns the rest unresolved: here
    # '<worktree>/out/secret.txt', which the kernel would follow out of the worktree.
    (worktree / "loop").symlink_to("loop")
    with pytest.raises(ToolError, match="too many symbolic links"):
        tools.resolve("loop/../out/secret.txt")


# -- read_file ---------------------------------------------------------------------------------


async def test_read_file_numbers_lines(tools: AgentTools) -> None:
    assert await tools.read_file("src/app.py") == "   1| def main():\n   2|     return 'hello'"


async def test_read_file_offset_and_limit(tools: AgentTools, worktree: Path) -> None:
    (worktree / "many.txt").write_text("".join(f"line {n}\n" for n in range(1, 51)))
    text = await tools.read_file("many.txt", offset=10, limit=5)
    lines = text.splitlines()
    assert lines[:5] == [f"  {n}| line {n}" for n in range(11, 16)]
    assert lines[5] == "[showing lines 11-15 of 50; call read_file with offset=15 to read more]"
    assert (await tools.read_file("many.txt", offset=45)).splitlines()[-1] == "  50| line 50"
    assert "past the end" in await tools.read_file("many.txt", offset=50)


async def test_read_file_truncates_a_large_file_with_a_note_and_pages_through_it(
    worktree: Path,
) -> None:
    tools = AgentTools(worktree, limits=ToolLimits(read_max_chars=1000))
    (worktree / "big.txt").write_text("".join(f"row {n}\n" for n in range(1, 501)))
    first = await tools.read_file("big.txt")
    assert len(first) < 1200
    assert first.startswith("   1| row 1\n")
    assert "of 500; call read_file with offset=" in first.splitlines()[-1]
    # Following the notes reads every line exactly once.
    seen: list[str] = []
    offset = 0
    for _ in range(100):
        page = await tools.read_file("big.txt", offset=offset)
        body = [line for line in page.splitlines() if not line.startswith("[")]
        seen += [line.split("| ", 1)[1] for line in body]
        if "offset=" not in page:
            break
        offset = int(page.rsplit("offset=", 1)[1].split()[0])
    assert seen == [f"row {n}" for n in range(1, 501)]


async def test_read_file_cuts_a_line_longer_than_the_budget(worktree: Path) -> None:
    tools = AgentTools(worktree, limits=ToolLimits(read_max_chars=500))
    (worktree / "min.js").write_text("x" * 100_000 + "\nsecond\n")
    text = await tools.read_file("min.js")
    assert text.startswith("   1| xxx")
    assert "line 1 is longer than 500 characters and was cut" in text
    assert "offset=1" in text
    assert len(text) < 1000


async def test_read_file_refuses_binary_missing_and_directories(
    tools: AgentTools, worktree: Path
) -> None:
    (worktree / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ToolError, match="binary"):
        await tools.read_file("logo.png")
    with pytest.raises(ToolError, match="does not exist; use list_dir or search"):
        await tools.read_file("nope.py")
    with pytest.raises(ToolError, match="is a directory; use list_dir"):
        await tools.read_file("src")
    assert await tools.read_file("shortcut/util.py") == (
        "   1| import os\n   2| \n   3| VALUE = 42"
    )
    (worktree / "empty.txt").write_text("")
    assert await tools.read_file("empty.txt") == "(empty file)"


async def test_read_file_refuses_a_fifo_instead_of_hanging(
    tools: AgentTools, worktree: Path
) -> None:
    os.mkfifo(worktree / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        await asyncio.wait_for(tools.read_file("pipe"), 5)


# -- list_dir ----------------------------------------------------------------------------------


async def test_list_dir_is_sorted_marks_directories_and_skips_git(tools: AgentTools) -> None:
    assert (await tools.list_dir()).splitlines() == [
        "README.md",
        "dangling.txt -> (outside the worktree; not accessible)",
        "leak.txt -> (outside the worktree; not accessible)",
        "out -> (outside the worktree; not accessible)",
        "shortcut -> src/pkg/",
        "src/",
    ]
    assert (await tools.list_dir("src", depth=2)).splitlines() == [
        "app.py",
        "pkg/",
        "pkg/util.py",
    ]


async def test_list_dir_caps_entries_with_a_note(worktree: Path) -> None:
    tools = AgentTools(worktree, limits=ToolLimits(list_max_entries=3))
    for n in range(10):
        (worktree / "src" / f"f{n}.txt").write_text("")
    lines = (await tools.list_dir("src")).splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("[stopped at 3 entries; list a subdirectory")


async def test_list_dir_does_not_expand_dependency_directories(
    tools: AgentTools, worktree: Path
) -> None:
    (worktree / "node_modules" / "left-pad").mkdir(parents=True)
    listing = await tools.list_dir(depth=3)
    assert "node_modules/ (not expanded)" in listing
    assert "left-pad" not in listing
    assert await tools.list_dir("node_modules") == "left-pad/"


async def test_list_dir_errors(tools: AgentTools) -> None:
    with pytest.raises(ToolError, match="is a file"):
        await tools.list_dir("README.md")
    with pytest.raises(ToolError, match="does not exist"):
        await tools.list_dir("nowhere")
    with pytest.raises(ToolError, match="depth"):
        await tools.list_dir(depth=0)


# -- search ------------------------------------------------------------------------------------


async def test_search_literal_lines_as_file_line_text(tools: AgentTools) -> None:
    assert (await tools.search("hello")).splitlines() == [
        "README.md:2: hello world",
        "src/app.py:2: return 'hello'",
    ]
    assert await tools.search("(") == "src/app.py:1: def main():"  # literal, not a regex


async def test_search_regex_glob_and_path(tools: AgentTools, worktree: Path) -> None:
    (worktree / "src" / "pkg" / "notes.txt").write_text("VALUE = 1\n")
    assert await tools.search(r"^[A-Z]+ = \d+$", regex=True, glob="*.py") == (
        "src/pkg/util.py:3: VALUE = 42"
    )
    assert (await tools.search("VALUE", path="src/pkg")).splitlines() == [
        "src/pkg/notes.txt:1: VALUE = 1",
        "src/pkg/util.py:3: VALUE = 42",
    ]
    assert await tools.search("VALUE", glob="pkg/*.{py,md}", path="src") == (
        "src/pkg/util.py:3: VALUE = 42"
    )
    assert await tools.search("VALUE", glob="src/**/*.py") == "src/pkg/util.py:3: VALUE = 42"
    assert await tools.search("VALUE", path="src/pkg/util.py") == "src/pkg/util.py:3: VALUE = 42"
    assert await tools.search("VALUE", glob="*.rs") == (
        "no matches for 'VALUE' in 0 files under '.' matching '*.rs'"
    )


async def test_search_invalid_regex_is_a_tool_error(tools: AgentTools) -> None:
    with pytest.raises(ToolError, match=r"invalid regular expression '\(unclosed'.*regex=false"):
        await tools.search("(unclosed", regex=True)


async def test_search_with_an_empty_pattern_lists_files(tools: AgentTools) -> None:
    assert (await tools.search("", glob="*.py")).splitlines() == [
        "src/app.py",
        "src/pkg/util.py",
    ]
    assert await tools.search("", glob="*.go") == "no files matching '*.go' under '.'"


async def test_search_skips_binary_large_and_dependency_files(
    tools: AgentTools, worktree: Path
) -> None:
    (worktree / "blob.bin").write_bytes(b"needle\x00\x01")
    (worktree / "huge.txt").write_text("needle\n" + "x" * SEARCH_MAX_FILE_BYTES)
    (worktree / "node_modules").mkdir()
    (worktree / "node_modules" / "dep.js").write_text("needle\n")
    (worktree / "found.txt").write_text("a needle\n")
    assert (await tools.search("needle")).splitlines() == [
        "found.txt:1: a needle",
        "[skipped 1 binary files and 1 files over 1 MB]",
    ]
    # Searching inside a dependency directory on purpose works.
    assert await tools.search("needle", path="node_modules") == "node_modules/dep.js:1: needle"


async def test_search_caps_matches_with_a_note(worktree: Path) -> None:
    tools = AgentTools(worktree, limits=ToolLimits(search_max_matches=5))
    (worktree / "many.txt").write_text("match\n" * 50)
    lines = (await tools.search("match")).splitlines()
    assert lines[:5] == [f"many.txt:{n}: match" for n in range(1, 6)]
    assert lines[5].startswith("[stopped at 5 matches; narrow the pattern")
    assert len(lines) == 6


# -- escapes, tool by tool ---------------------------------------------------------------------

EscapeCall = Callable[[AgentTools], Awaitable[str]]

ESCAPES: dict[str, EscapeCall] = {
    "read absolute": lambda t: t.read_file(str(t.root.parent / "outside" / "secret.txt")),
    "read ..": lambda t: t.read_file("../outside/secret.txt"),
    "read a/../..": lambda t: t.read_file("src/../../outside/secret.txt"),
    "read file link": lambda t: t.read_file("leak.txt"),
    "read through dir link": lambda t: t.read_file("out/secret.txt"),
    "read .git": lambda t: t.read_file(".git/config"),
    "write absolute": lambda t: t.write_file(str(t.root.parent / "outside" / "new.txt"), "x"),
    "write ..": lambda t: t.write_file("../outside/new.txt", "x"),
    "write file link": lambda t: t.write_file("leak.txt", "overwritten"),
    "write dangling link": lambda t: t.write_file("dangling.txt", "created"),
    "write through dir link": lambda t: t.write_file("out/new.txt", "x"),
    "write .git": lambda t: t.write_file(".git/config", "x"),
    "edit ..": lambda t: t.edit_file("../outside/secret.txt", SECRET, "x"),
    "edit file link": lambda t: t.edit_file("leak.txt", SECRET, "x"),
    "edit through dir link": lambda t: t.edit_file("out/secret.txt", SECRET, "x"),
    "edit .git": lambda t: t.edit_file(".git/config", GIT_SECRET, "x"),
    "list ..": lambda t: t.list_dir(".."),
    "list dir link": lambda t: t.list_dir("out"),
    "list .git": lambda t: t.list_dir(".git"),
    "search ..": lambda t: t.search("SECRET", path=".."),
    "search dir link": lambda t: t.search("SECRET", path="out"),
    "search file link": lambda t: t.search("SECRET", path="leak.txt"),
    "search .git": lambda t: t.search("SECRET", path=".git"),
}


@pytest.mark.parametrize("call", ESCAPES.values(), ids=ESCAPES.keys())
async def test_every_file_tool_refuses_every_escape(
    tools: AgentTools, outside: Path, worktree: Path, call: EscapeCall
) -> None:
    with pytest.raises(ToolError, match=r"absolute|outside the worktree|\.git"):
        await call(tools)
    assert outside_unchanged(outside)
    assert GIT_SECRET in (worktree / ".git" / "config").read_text()


async def test_walking_tools_do_not_follow_links_out(tools: AgentTools) -> None:
    assert await tools.search("SECRET") == "no matches for 'SECRET' in 3 files under '.'"
    listed = await tools.search("", glob="**/*")
    assert "secret" not in listed
    assert ".git" not in listed
    deep = await tools.list_dir(depth=5)
    assert "secret" not in deep
    assert ".git" not in deep
