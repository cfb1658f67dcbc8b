"""The embedded agent's tools that are not about files: ``run_command`` on real subprocesses,
the stuck detector, and the tools' descriptions."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from engine_helpers import wait_until
from timeouts import long_enough

from blitz.backends.embedded_session import TOOL_DESCRIPTIONS
from blitz.backends.stuck import StuckDetector
from blitz.backends.tools import AgentTools, ToolError, ToolLimits


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    root.mkdir()
    (root / "README.md").write_text("# demo\n")
    return root


@pytest.fixture
def tools(worktree: Path) -> AgentTools:
    return AgentTools(worktree)


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


def test_an_append_made_again_with_its_text_grown_is_a_circle_whatever_its_result() -> None:
    stuck = StuckDetector(repeats=3)
    text = "def test_slugify():\n    assert slugify('a') == 'a'"
    assert not stuck.record("append_to_file", {"path": "t.py", "text": text}, "appended 2")
    text += "\n    assert slugify('b') == 'b'"
    assert not stuck.record("append_to_file", {"path": "t.py", "text": text}, "appended 3")
    text += "\n    assert slugify('c') == 'c'"
    # Grown, it may be a test made better: one call more than the same call again needs.
    assert not stuck.record("append_to_file", {"path": "t.py", "text": text}, "appended 4")
    text += "\n    assert slugify('d') == 'd'"
    assert stuck.record("append_to_file", {"path": "t.py", "text": text}, "appended 5")
    assert stuck.grew
    # The same append again, its result new each time (the file growing): a circle too.
    stuck.reset()
    for lines in (11, 14):
        assert not stuck.record("append_to_file", {"path": "t.py", "text": text}, f"{lines}")
    assert stuck.record("append_to_file", {"path": "t.py", "text": text}, "17 lines")
    # Another file, other text, or another tool growing its argument is no circle.
    stuck.reset()
    assert not stuck.record("append_to_file", {"path": "t.py", "text": "x = 1"}, "ok")
    assert not stuck.record("append_to_file", {"path": "u.py", "text": "x = 1\ny = 2"}, "ok")
    assert not stuck.record("append_to_file", {"path": "u.py", "text": "z = 3"}, "ok")
    assert not stuck.record("run_command", {"command": "pytest"}, "1 failed")
    assert not stuck.record("run_command", {"command": "pytest -x"}, "1 failed")
    assert not stuck.record("run_command", {"command": "pytest -x -q"}, "1 failed")
    assert not stuck.grew


def test_an_edit_made_again_with_its_new_text_grown_is_a_circle() -> None:
    # Bench run X: the 1.5B replaced one assert with itself and one more, each turn.
    stuck = StuckDetector(repeats=2)
    old = "assert mean([1, 2]) == 1.5"
    grown = [old + "".join(f"\nassert mean([{n}]) == {n}" for n in range(k)) for k in (1, 2, 3)]
    assert not stuck.record("edit_file", {"path": "t.py", "old": old, "new": grown[0]}, "2 lines")
    assert not stuck.record("edit_file", {"path": "t.py", "old": old, "new": grown[1]}, "3 lines")
    assert stuck.record("edit_file", {"path": "t.py", "old": old, "new": grown[2]}, "4 lines")
    assert stuck.reason() == (
        "stuck: 3 edit_file calls in a row, each after the first adding again what the one before"
        " it added (or more)"
    )
    # Another old text, or another file, is another edit.
    stuck.reset()
    assert not stuck.record("edit_file", {"path": "t.py", "old": "a", "new": "a\nb"}, "ok")
    assert not stuck.record("edit_file", {"path": "t.py", "old": "c", "new": "a\nb\nc"}, "ok")
    assert not stuck.record("edit_file", {"path": "u.py", "old": "c", "new": "a\nb\nc\nd"}, "ok")


def test_a_round_of_calls_made_again_with_the_same_results_is_a_circle() -> None:
    # Qwen2.5-Coder-1.5B wrote the same two files in turn until its time ran out: each call
    # followed another, so the streak of one call never passed one.
    stuck = StuckDetector(repeats=3)
    write_a = ("write_file", {"path": "a.py", "content": "x = 1"}, "nothing changed")
    write_b = ("write_file", {"path": "b.py", "content": "y = 2"}, "nothing changed")
    for _ in range(2):
        assert not stuck.record(*write_a)
        assert not stuck.record(*write_b)
    assert not stuck.record(*write_a)
    assert stuck.record(*write_b)  # the third round
    assert stuck.reason() == (
        "stuck: the same 2 calls (write_file, write_file) went round 3 times, each round with"
        " the same results"
    )
    # A round of four (bench run T: a file written, what that dropped put back, the same for the
    # test file), made twice.
    twice = StuckDetector(repeats=2)
    four = [
        ("write_file", {"path": "a.py", "content": "x = 1"}, "wrote 5 bytes; dropped f"),
        ("append_to_file", {"path": "a.py", "text": "def f(): pass"}, "appended 1 line(s)"),
        ("write_file", {"path": "t.py", "content": "y = 2"}, "wrote 5 bytes; dropped t"),
        ("append_to_file", {"path": "t.py", "text": "def t(): pass"}, "appended 1 line(s)"),
    ]
    assert not any([twice.record(*one) for one in four + four[:3]])
    assert twice.record(*four[3])
    assert twice.reason().startswith("stuck: the same 4 calls (write_file, append_to_file,")
    # A round of three, one of its results new in the middle: progress, counted afresh.
    stuck.reset()
    edit = ("edit_file", {"path": "a.py", "old": "1", "new": "2"}, "replaced 1 line")
    test = ("run_command", {"command": "pytest"}, "1 failed")
    read = ("read_file", {"path": "a.py"}, "x = 2")
    rounds = [edit, test, read, edit, ("run_command", {"command": "pytest"}, "2 failed"), read]
    assert not any([stuck.record(*one) for one in rounds])
    assert not any([stuck.record(*one) for one in (edit, test, read, edit, test, read, edit)])
    assert stuck.record(*test)  # read, edit, test: three rounds since the new result
    assert stuck.reason().startswith("stuck: the same 3 calls (read_file, edit_file, run_command)")


def test_the_reason_names_the_tool_and_the_kind_of_circle() -> None:
    stuck = StuckDetector(repeats=2)
    stuck.record("read_file", {"path": "a"}, "x")
    assert stuck.record("read_file", {"path": "a"}, "x")
    assert stuck.reason() == "stuck: the same read_file call returned the same result 2 times"
    stuck.reset()
    stuck.record("append_to_file", {"path": "t.py", "text": "a = 1"}, "appended 1")
    assert not stuck.record("append_to_file", {"path": "t.py", "text": "a = 1\nb = 2"}, "2")
    assert stuck.record("append_to_file", {"path": "t.py", "text": "a = 1\nb = 2"}, "3")
    assert stuck.reason() == (
        "stuck: 3 append_to_file calls in a row, each after the first adding again what the one"
        " before it added (or more)"
    )
    # The same append again is a circle at ``repeats``.
    stuck.reset()
    stuck.record("append_to_file", {"path": "t.py", "text": "a = 1"}, "appended 1")
    assert stuck.record("append_to_file", {"path": "t.py", "text": "a = 1"}, "appended 1 more")
    assert stuck.reason().startswith("stuck: 2 append_to_file calls in a row")


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
    tools.remove("execute")  # what run_command runs, and the finish's gates: not a tool itself
    assert set(TOOL_DESCRIPTIONS) == tools
    for text in TOOL_DESCRIPTIONS.values():
        assert text.endswith(".")
        assert ". " not in text
