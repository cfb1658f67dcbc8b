"""The embedded agent's tools, on real files and real subprocesses."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from engine_helpers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from timeouts import long_enough

from blitz.backends.tools import (
    SEARCH_MAX_FILE_BYTES,
    TOOL_DESCRIPTIONS,
    AgentTools,
    StuckDetector,
    ToolError,
    ToolLimits,
)

SECRET = "SECRET-OUTSIDE-CONTENT"
GIT_SECRET = "SECRET-GIT-CONTENT"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the worktree holding a file the agent must never see or change."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_text(SECRET + "\n")
    return directory


@pytest.fixture
def worktree(tmp_path: Path, outside: Path) -> Path:
    """A worktree with some files, a .git directory and symbolic links leading out of it."""
    root = tmp_path / "wt"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 'hello'\n")
    (root / "src" / "pkg" / "util.py").write_text("import os\n\nVALUE = 42\n")
    (root / "README.md").write_text("# demo\nhello world\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text(f"[core]\n\tsecret = {GIT_SECRET}\n")
    (root / "out").symlink_to(outside, target_is_directory=True)  # a directory outside
    (root / "leak.txt").symlink_to(outside / "secret.txt")  # a file outside
    (root / "dangling.txt").symlink_to(outside / "new.txt")  # a file outside, not there yet
    (root / "shortcut").symlink_to("src/pkg", target_is_directory=True)  # stays inside
    return root


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


# -- run_command -------------------------------------------------------------------------------


async def test_run_command_reports_exit_code_and_output(tools: AgentTools) -> None:
    assert await tools.run_command("echo hi; echo oops >&2") == "exit code 0\nhi\noops\n"
    assert await tools.run_command("exit 3") == "exit code 3\n(no output)"
    assert await tools.run_command("pwd") == f"exit code 0\n{tools.root}\n"
    assert await tools.run_command("cat") == "exit code 0\n(no output)"  # stdin is closed
    with pytest.raises(ToolError, match="empty"):
        await tools.run_command("  ")
    with pytest.raises(ToolError, match="positive"):
        await tools.run_command("true", timeout=0)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def test_run_command_timeout_kills_the_whole_process_group(
    worktree: Path,
) -> None:
    async def run(limit: float) -> str:
        tools = AgentTools(worktree, limits=ToolLimits(command_timeout=limit))
        # The asked-for timeout is capped at the limit (the command itself would take 60 s).
        command = "sleep 60 & echo $! > child.pid; echo started; sleep 60"
        return await tools.run_command(command, timeout=100)

    # The timeout must fire after the command started its child: a limit too short for this
    # machine's load is tried again, twice as long.
    result, limit = await long_enough(run, lambda said: "started" in said, first=0.5)

    assert result == (
        f"timed out after {limit:g}s (the command and its children were stopped)\nstarted\n"
    )
    child = int((worktree / "child.pid").read_text())
    await wait_until(lambda: not alive(child))


async def test_run_command_keeps_the_tail_of_a_flood(worktree: Path) -> None:
    tools = AgentTools(worktree, limits=ToolLimits(output_cap=1000))
    result = await tools.run_command(
        "i=0; while [ $i -lt 5000 ]; do echo line $i; i=$((i+1)); done"
    )
    assert result.startswith("exit code 0\n[... output truncated ...]\n")
    assert result.endswith("line 4999\n")
    assert len(result) < 1100


async def test_run_command_environment_has_no_secrets(
    worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-do-not-leak")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_do_not_leak")
    monkeypatch.setenv("BLITZ_HARMLESS", "visible")
    tools = AgentTools(worktree)
    result = await tools.run_command("env; echo key=$ANTHROPIC_API_KEY token=$GITHUB_TOKEN")
    assert "do-not-leak" not in result
    assert "do_not_leak" not in result
    assert "key= token=" in result
    assert "BLITZ_HARMLESS=visible" in result  # the rest of the environment is passed on


async def test_run_command_uses_the_given_environment(worktree: Path) -> None:
    tools = AgentTools(worktree, env={"PATH": os.environ["PATH"], "ONLY": "this"})
    assert await tools.run_command("echo $ONLY") == "exit code 0\nthis\n"


# -- StuckDetector -----------------------------------------------------------------------------


def test_stuck_after_the_same_call_and_result_three_times_in_a_row() -> None:
    stuck = StuckDetector()
    assert not stuck.record("read_file", {"path": "a", "offset": 0}, "same")
    assert not stuck.record("read_file", {"offset": 0, "path": "a"}, "same")  # key order
    assert stuck.record("read_file", {"path": "a", "offset": 0}, "same")
    assert stuck.record("read_file", {"path": "a", "offset": 0}, "same")  # still stuck


def test_any_different_call_or_result_breaks_the_streak() -> None:
    stuck = StuckDetector(repeats=2)
    call = ("run_command", {"command": "pytest"})
    assert not stuck.record(*call, "1 failed")
    assert not stuck.record("read_file", {"path": "a"}, "x")  # interleaved
    assert not stuck.record(*call, "1 failed")
    assert not stuck.record(*call, "2 failed")  # same call, new result: progress
    assert not stuck.record("run_command", {"command": "pytest -x"}, "2 failed")  # new args
    assert stuck.record("run_command", {"command": "pytest -x"}, "2 failed")
    stuck.reset()
    assert not stuck.record("run_command", {"command": "pytest -x"}, "2 failed")


def test_stuck_detector_bounds() -> None:
    assert StuckDetector(repeats=1).record("list_dir", {}, "")
    with pytest.raises(ValueError):
        StuckDetector(repeats=0)


# -- descriptions ------------------------------------------------------------------------------


def test_every_tool_has_a_one_sentence_description() -> None:
    tools = {
        name
        for name in vars(AgentTools)
        if not name.startswith("_") and asyncio.iscoroutinefunction(getattr(AgentTools, name))
    }
    assert set(TOOL_DESCRIPTIONS) == tools
    for text in TOOL_DESCRIPTIONS.values():
        assert text.endswith(".")
        assert ". " not in text
