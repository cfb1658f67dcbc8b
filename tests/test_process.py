"""blitz.process.stream: live lines, process-group kills, bounded memory (real subprocesses)."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from engine_helpers import sleeping_processes, wait_until
from timeouts import long_enough

from blitz import process


class Lines:
    """An ``on_line`` callback that records what it was given."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


async def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def wait_for_file(path: Path, within: float = 10.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


async def test_lines_arrive_while_the_command_still_runs(tmp_path: Path) -> None:
    # The command prints a line, then waits for a file that only the on_line callback creates:
    # if lines were delivered only at exit, it would wait until its timeout and fail (no shorter
    # deadline to race on a loaded machine).
    script = (
        "import pathlib, time\n"
        "print('ready', flush=True)\n"
        "while not pathlib.Path('go').exists():\n"
        "    time.sleep(0.01)\n"
        "print('done')\n"
    )
    seen: list[str] = []

    async def on_line(line: str) -> None:
        seen.append(line)
        if line == "ready":
            (tmp_path / "go").touch()

    done = await process.stream(
        [sys.executable, "-c", script], cwd=tmp_path, timeout=30, on_line=on_line
    )
    assert done.exit_code == 0, done.output
    assert seen == ["ready", "done"]


async def test_stderr_goes_to_the_output_not_to_on_line(tmp_path: Path) -> None:
    lines = Lines()
    done = await process.stream(
        "echo out; echo err >&2; printf 'a\\r\\nno newline'; exit 3",
        cwd=tmp_path,
        timeout=10,
        on_line=lines,
    )
    assert done.exit_code == 3
    assert lines.lines == ["out", "a", "no newline"]
    assert "err" in done.output and "out" in done.output


async def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    lines = Lines()
    await process.stream(
        [sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'caf\\xff\\n')"],
        cwd=tmp_path,
        timeout=10,
        on_line=lines,
    )
    assert lines.lines == ["caf\ufffd"]


async def test_stdin_is_passed(tmp_path: Path) -> None:
    lines = Lines()
    done = await process.stream(["cat"], cwd=tmp_path, timeout=10, on_line=lines, stdin=b"x\ny\n")
    assert done.ok
    assert lines.lines == ["x", "y"]


async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"

    async def run(timeout: float) -> tuple[process.Completed, list[str]]:
        lines = Lines()
        done = await process.stream(
            f"sleep 300 & echo $! > {pid_file}; echo started; sleep 300",
            cwd=tmp_path,
            timeout=timeout,
            on_line=lines,
        )
        return done, lines.lines

    # The timeout must fire after the shell started its child: a timeout too short for this
    # machine's load is tried again, twice as long.
    (done, lines), _ = await long_enough(run, lambda ran: ran[1] == ["started"], first=1.0)
    assert done.timed_out
    assert done.exit_code is None
    assert lines == ["started"]
    assert await gone(int(pid_file.read_text()))


async def test_cancellation_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    task = asyncio.ensure_future(
        process.stream(
            f"sleep 300 & echo $! > {pid_file}; sleep 300",
            cwd=tmp_path,
            timeout=60,
            on_line=Lines(),
        )
    )
    pid = int(await wait_for_file(pid_file))
    assert alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(pid)


async def test_a_failing_on_line_stops_the_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"

    async def on_line(line: str) -> None:
        raise RuntimeError("callback broke")

    with pytest.raises(RuntimeError, match="callback broke"):
        await process.stream(
            f"echo $$ > {pid_file}; echo hello; sleep 300",
            cwd=tmp_path,
            timeout=60,
            on_line=on_line,
        )
    assert await gone(int(pid_file.read_text()))


async def test_a_background_child_holding_the_pipe_does_not_hang_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "background.pid"
    lines = Lines()
    done = await process.stream(
        f"sleep 300 & echo $! > {pid_file}; echo hi",
        cwd=tmp_path,
        timeout=30,
        on_line=lines,
    )
    assert done.exit_code == 0
    assert lines.lines == ["hi"]
    assert done.duration < 10
    assert await gone(int(pid_file.read_text()))


async def test_a_huge_line_is_capped_and_memory_stays_bounded(tmp_path: Path) -> None:
    size = 64 * 1024 * 1024
    script = (
        "import sys\n"
        "chunk = b'x' * (1024 * 1024)\n"
        f"for _ in range({size} // len(chunk)): sys.stdout.buffer.write(chunk)\n"
        "sys.stdout.buffer.write(b'\\nafter\\n')\n"
    )
    lines = Lines()
    tracemalloc.start()
    try:
        done = await process.stream(
            [sys.executable, "-c", script], cwd=tmp_path, timeout=60, on_line=lines
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done.ok
    assert len(lines.lines) == 2
    first, second = lines.lines
    assert first.startswith("x" * process.LINE_CAP)
    assert f"[... {size - process.LINE_CAP} bytes of this line dropped ...]" in first
    assert len(first) < process.LINE_CAP + 100
    assert second == "after"
    assert len(done.output) <= process.DEFAULT_CAP
    assert done.dropped > size - process.DEFAULT_CAP
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak} bytes"


async def test_a_command_cancelled_while_it_starts_is_stopped_with_what_holds_its_pipes(
    tmp_path: Path,
) -> None:
    # Cancelled while asyncio still connects the pipes, asyncio itself would wait for the
    # command to exit and for every process holding its output pipe: for ever, here.
    marker = f"{600 + secrets.randbelow(1000)}.{secrets.randbelow(10**6)}"
    for _ in range(3):
        running = asyncio.ensure_future(
            process.run(f"sleep {marker} & exec sleep 600", cwd=tmp_path, timeout=60)
        )
        await asyncio.sleep(0)  # forked; the pipes are not connected yet
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(running, 20)
    await wait_until(lambda: not sleeping_processes(marker), 5)


async def test_a_child_that_left_the_session_does_not_hold_the_command_open(
    tmp_path: Path,
) -> None:
    marker = f"{600 + secrets.randbelow(1000)}.{secrets.randbelow(10**6)}"
    started = time.monotonic()

    done = await process.run(f"setsid sleep {marker} & echo done", cwd=tmp_path, timeout=30)

    assert done.ok and not done.timed_out and "done" in done.output
    assert time.monotonic() - started < 10
    await wait_until(lambda: not sleeping_processes(marker), 5)


async def test_stdout_can_go_to_a_file_and_the_output_keeps_stderr(tmp_path: Path) -> None:
    with (tmp_path / "out").open("w+b") as out:
        done = await process.run(
            ["sh", "-c", "echo to-file; echo to-pipe >&2"],
            cwd=tmp_path,
            timeout=30,
            stdout=out.fileno(),
        )
        out.seek(0)
        assert out.read() == b"to-file\n"
    assert done.ok and done.output == "to-pipe\n"
